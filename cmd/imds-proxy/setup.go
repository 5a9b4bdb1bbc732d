package main

// `imds-proxy setup`: the host networking that brings clients' packets for
// 169.254.169.254:80 to the proxy. Everything it adds carries a mark, so
// that --remove takes away exactly that and nothing else:
//   - iptables rules: `-m comment --comment imds-proxy`;
//   - addresses: metric setupAddrMetric (IPv6 addresses have no labels,
//     and an address's metric only orders its own prefix route);
//   - an interface it created: the alias (ifalias) "imds-proxy".
// Commands run through exec, never a shell, and each is printed first.

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// The IMDS endpoint addresses, as clients dial them.
var (
	imdsAddr4 = netip.MustParseAddr("169.254.169.254")
	imdsAddr6 = netip.MustParseAddr("fd00:ec2::254")
)

const (
	setupTag        = "imds-proxy" // iptables comment and interface alias
	setupAddrMetric = 3778         // 0xec2: marks the addresses setup added
	setupIface      = "imds0"      // address mode's default interface
)

// setupOptions are the flags of `imds-proxy setup`.
type setupOptions struct {
	mode   string // address, dnat or docker-desktop
	apply  bool
	remove bool

	iface string // address: where the IMDS addresses go
	ipv6  bool   // address: fd00:ec2::254/128 too

	bridges []string         // dnat: interfaces whose packets are redirected
	cidrs   []netip.Prefix   // dnat: source blocks whose packets are redirected
	to      []netip.AddrPort // dnat: the proxy, at most one per family
	host    bool             // dnat: the host's own processes too (OUTPUT)

	containerPort int // docker-desktop: port of the container credentials endpoint
}

// hostCommand is one ip or iptables invocation.
type hostCommand []string

func (c hostCommand) String() string {
	q := make([]string, len(c))
	for i, a := range c {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./\[\]-]+$`)

// shellQuote makes the printed lines a script a user can paste.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// hostRunner runs commands on the host; tests substitute a fake.
type hostRunner interface {
	// output runs a query and returns its standard output.
	output(c hostCommand) ([]byte, error)
	// run makes a change; the error carries the command's stderr.
	run(c hostCommand) error
	// has reports whether a command is installed.
	has(name string) bool
}

type execRunner struct{}

func (execRunner) output(c hostCommand) ([]byte, error) {
	out, err := exec.Command(c[0], c[1:]...).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && len(exit.Stderr) > 0 {
		err = fmt.Errorf("%s: %w: %s", c, err, strings.TrimSpace(string(exit.Stderr)))
	}
	return out, err
}

func (execRunner) run(c hostCommand) error {
	out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", c, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (execRunner) has(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

func runSetup(args []string, stdout, stderr io.Writer) error {
	o, err := parseSetupFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	return setup(o, execRunner{}, stdout)
}

func parseSetupFlags(args []string, stderr io.Writer) (*setupOptions, error) {
	o := &setupOptions{}
	fs := flag.NewFlagSet("imds-proxy setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage:
  imds-proxy setup --mode address [--interface imds0] [--ipv6=false] [--apply]
  imds-proxy setup --mode dnat --to IP:PORT [--to [IPv6]:PORT] [--bridge IF]... [--cidr CIDR]... [--host] [--apply]
  imds-proxy setup --mode docker-desktop [--container-port 8081]
  imds-proxy setup --remove

Prints the commands; --apply runs those not yet in effect, --remove undoes
everything setup added (and nothing else). Both need root.

Flags:
`)
		fs.PrintDefaults()
	}
	var bridges, cidrs, to []string
	fs.StringVar(&o.mode, "mode", "", "`mode`: address (169.254.169.254 on an interface of this host, for a proxy listening there), dnat (redirect tcp 169.254.169.254:80 to --to), or docker-desktop (print the container credentials recipe)")
	fs.BoolVar(&o.apply, "apply", false, "run the commands that are not yet in effect")
	fs.BoolVar(&o.remove, "remove", false, "delete every rule, address and interface setup added, whatever the mode (no other flag needed)")
	fs.StringVar(&o.iface, "interface", setupIface, "address mode: `interface` that holds the addresses; created as a dummy interface if absent (an existing one such as lo is used as it is)")
	fs.BoolVar(&o.ipv6, "ipv6", true, "address mode: also add fd00:ec2::254/128")
	fs.Var(listFlag{&bridges}, "bridge", "dnat mode: redirect packets arriving on this `interface` (docker0, br-1a2b3c4d5e6f, br-+ for every br-*); repeatable")
	fs.Var(listFlag{&cidrs}, "cidr", "dnat mode: redirect packets from this source `block` (172.30.0.0/16, fd00:30::/64); repeatable")
	fs.Var(listFlag{&to}, "to", "dnat mode: the proxy's listen `address` (172.17.0.1:8080; [fd00:17::1]:8080 for IPv6 clients); one per family")
	fs.BoolVar(&o.host, "host", false, "dnat mode: also redirect this host's own processes (OUTPUT chain)")
	fs.IntVar(&o.containerPort, "container-port", 8081, "docker-desktop mode: `port` of the container credentials endpoint in the printed recipe")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("setup: unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.bridges = bridges
	var errs []string
	for _, b := range bridges {
		if !ifaceName.MatchString(b) {
			errs = append(errs, fmt.Sprintf("--bridge %q is not an interface name", b))
		}
	}
	var more []string
	o.cidrs, more = parseCIDRs(cidrs)
	errs = append(errs, more...)
	o.to, more = parseTargets(to)
	errs = append(errs, more...)
	if len(errs) == 0 {
		errs = o.check(set)
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return o, nil
}

func parseCIDRs(cidrs []string) ([]netip.Prefix, []string) {
	var ps []netip.Prefix
	var errs []string
	for _, c := range cidrs {
		// The same reading as a tenant's sources: the blocks name them.
		p, err := tenants.ParseSource(c)
		if err != nil {
			errs = append(errs, fmt.Sprintf("--cidr: %v", err))
			continue
		}
		ps = append(ps, p)
	}
	return ps, errs
}

func parseTargets(to []string) ([]netip.AddrPort, []string) {
	var aps []netip.AddrPort
	var errs []string
	for _, s := range to {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("--to %q: want IP:port, such as 172.17.0.1:8080 or [fd00:17::1]:8080", s))
			continue
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		for _, prev := range aps {
			if prev.Addr().Is4() == ap.Addr().Is4() {
				errs = append(errs, fmt.Sprintf("--to %s and %s: give at most one address per IP version", prev, ap))
			}
		}
		aps = append(aps, ap)
	}
	return aps, errs
}

// setupModeFlags are the flags each mode takes, besides --mode and --apply.
var setupModeFlags = map[string][]string{
	"address":        {"interface", "ipv6"},
	"dnat":           {"bridge", "cidr", "to", "host"},
	"docker-desktop": {"container-port"},
}

// check validates the flags given (set) together.
func (o *setupOptions) check(set map[string]bool) []string {
	var errs []string
	if o.remove {
		for _, name := range slices.Sorted(maps.Keys(set)) {
			if name != "remove" && name != "apply" {
				errs = append(errs, fmt.Sprintf("--remove undoes everything setup added and takes no other flag (got --%s)", name))
			}
		}
		return errs
	}
	own, ok := setupModeFlags[o.mode]
	switch {
	case o.mode == "":
		return []string{"setup: --mode is required (address, dnat or docker-desktop), or --remove"}
	case !ok:
		return []string{fmt.Sprintf("--mode %q: use address, dnat or docker-desktop", o.mode)}
	}
	for _, m := range slices.Sorted(maps.Keys(setupModeFlags)) {
		for _, n := range setupModeFlags[m] {
			if m != o.mode && set[n] && !slices.Contains(own, n) {
				errs = append(errs, fmt.Sprintf("--%s belongs to --mode %s, not %s", n, m, o.mode))
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	switch o.mode {
	case "address":
		if !ifaceName.MatchString(o.iface) || strings.HasSuffix(o.iface, "+") {
			errs = append(errs, fmt.Sprintf("--interface %q is not an interface name", o.iface))
		}
	case "dnat":
		errs = o.checkDNAT()
	case "docker-desktop":
		if o.apply {
			errs = append(errs, "--mode docker-desktop changes nothing on this host: there is nothing to --apply")
		}
		if o.containerPort < 1 || o.containerPort > 65535 {
			errs = append(errs, fmt.Sprintf("--container-port %d: want 1-65535", o.containerPort))
		}
	}
	return errs
}

// ifaceName: what Linux and iptables accept, at most 15 bytes; a trailing
// + is an iptables wildcard.
var ifaceName = regexp.MustCompile(`^(?:[A-Za-z0-9_.@:-]{1,15}|[A-Za-z0-9_.@:-]{0,14}\+)$`)

func (o *setupOptions) checkDNAT() []string {
	var errs []string
	if len(o.to) == 0 {
		errs = append(errs, "--mode dnat: --to is required (the proxy's listen address, such as 172.17.0.1:8080)")
	}
	if len(o.bridges) == 0 && len(o.cidrs) == 0 && !o.host {
		errs = append(errs, "--mode dnat: say whose packets to redirect: --bridge, --cidr or --host")
	}
	for _, to := range o.to {
		// Linux drops packets from other interfaces that are DNATed to
		// 127.0.0.0/8 or ::1 unless route_localnet is set: bind the
		// proxy to the bridge's address instead.
		if to.Addr().IsLoopback() && (len(o.bridges) > 0 || len(o.cidrs) > 0) {
			errs = append(errs, fmt.Sprintf("--to %s: packets from bridges cannot be redirected to loopback; listen on the bridge's own address (ip -br addr show docker0)", to))
		}
		if to.Port() == 0 {
			errs = append(errs, fmt.Sprintf("--to %s: port 0", to))
		}
	}
	for _, c := range o.cidrs {
		if o.target(c.Addr().Is4()) == nil {
			errs = append(errs, fmt.Sprintf("--cidr %s: no --to address of its IP version", c))
		}
	}
	return errs
}

// target is the --to address of one IP version, if any.
func (o *setupOptions) target(v4 bool) *netip.AddrPort {
	for i := range o.to {
		if o.to[i].Addr().Is4() == v4 {
			return &o.to[i]
		}
	}
	return nil
}

func setup(o *setupOptions, r hostRunner, w io.Writer) error {
	switch {
	case o.remove:
		return removeSetup(r, w)
	case o.mode == "docker-desktop":
		return printDockerDesktop(o, w)
	case o.mode == "address":
		return setupAddresses(o, r, w)
	default:
		return setupDNAT(o, r, w)
	}
}

// Address mode.

// ipLink is the part of `ip -d -j addr show` that setup reads. Without -d
// (details), ip leaves out the alias.
type ipLink struct {
	Name     string   `json:"ifname"`
	Alias    string   `json:"ifalias"`
	Flags    []string `json:"flags"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Metric    int    `json:"metric"`
	} `json:"addr_info"`
}

var ipAddrShow = hostCommand{"ip", "-d", "-j", "addr", "show"}

func parseIPAddr(out []byte) ([]ipLink, error) {
	var links []ipLink
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("ip -d -j addr show: %w", err)
	}
	return links, nil
}

func (o *setupOptions) imdsPrefixes() []netip.Prefix {
	ps := []netip.Prefix{netip.PrefixFrom(imdsAddr4, 32)}
	if o.ipv6 {
		ps = append(ps, netip.PrefixFrom(imdsAddr6, 128))
	}
	return ps
}

// addressPlan is what address mode runs given the host's links (nil when
// unknown: everything is planned). present lists what is already there.
func addressPlan(o *setupOptions, links []ipLink, known bool) (todo, present []hostCommand) {
	var link *ipLink
	for i := range links {
		if links[i].Name == o.iface {
			link = &links[i]
		}
	}
	dev := []string{"dev", o.iface}
	create := []hostCommand{
		append(hostCommand{"ip", "link", "add"}, o.iface, "type", "dummy"),
		append(hostCommand{"ip", "link", "set"}, append(dev, "alias", setupTag)...),
		append(hostCommand{"ip", "link", "set"}, append(dev, "up")...),
	}
	exists := link != nil
	if !known {
		exists = ifaceExists(o.iface)
	}
	switch {
	case !exists:
		todo = append(todo, create...)
	case link != nil && link.Alias == setupTag && !slices.Contains(link.Flags, "UP"):
		todo = append(todo, create[2])
	}
	for _, p := range o.imdsPrefixes() {
		c := hostCommand{"ip", "addr", "add", p.String(), "dev", o.iface, "metric", strconv.Itoa(setupAddrMetric)}
		if link != nil && link.has(p) {
			present = append(present, c)
		} else {
			todo = append(todo, c)
		}
	}
	return todo, present
}

func (l *ipLink) has(p netip.Prefix) bool {
	for _, a := range l.AddrInfo {
		if ad, err := netip.ParseAddr(a.Local); err == nil && ad == p.Addr() && a.PrefixLen == p.Bits() {
			return true
		}
	}
	return false
}

func ifaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func setupAddresses(o *setupOptions, r hostRunner, w io.Writer) error {
	if !o.apply {
		todo, _ := addressPlan(o, nil, false)
		fmt.Fprintf(w, "# address mode: %s on %s, for a proxy listening on 169.254.169.254:80%s.\n",
			joinAnd(o.imdsPrefixes()), o.iface, map[bool]string{true: " and [fd00:ec2::254]:80"}[o.ipv6])
		fmt.Fprintln(w, "# Run with --apply to perform what is not yet in effect; --remove undoes it.")
		printCommands(w, todo)
		return nil
	}
	out, err := r.output(ipAddrShow)
	if err != nil {
		return err
	}
	links, err := parseIPAddr(out)
	if err != nil {
		return err
	}
	todo, present := addressPlan(o, links, true)
	if len(todo) == 0 || todo[0][2] != "add" {
		fmt.Fprintf(w, "# interface %s exists: used as it is\n", o.iface)
	}
	for _, c := range present {
		fmt.Fprintf(w, "# in effect: %s\n", c)
	}
	for _, c := range todo {
		fmt.Fprintln(w, c)
		if err := r.run(c); err != nil {
			if c[1] == "link" && c[2] == "add" {
				return fmt.Errorf("%w\n(no dummy interfaces on this kernel? `modprobe dummy`, or use --interface lo)", err)
			}
			return err
		}
	}
	if len(todo) == 0 {
		fmt.Fprintln(w, "# nothing to do")
	}
	return nil
}

// joinAnd lists values as "a and b".
func joinAnd[T fmt.Stringer](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, " and ")
}

func printCommands(w io.Writer, cs []hostCommand) {
	for _, c := range cs {
		fmt.Fprintln(w, c)
	}
}

// DNAT mode.

// iptablesRule is one rule of the nat table: bin is iptables or ip6tables.
type iptablesRule struct {
	bin, chain string
	spec       []string
}

func (r iptablesRule) command(op string) hostCommand {
	return append(hostCommand{r.bin, "-w", "-t", "nat", op, r.chain}, r.spec...)
}

// dnatRules are the rules of dnat mode, IPv4 first.
func dnatRules(o *setupOptions) []iptablesRule {
	var rules []iptablesRule
	for _, v4 := range []bool{true, false} {
		to := o.target(v4)
		if to == nil {
			continue
		}
		bin, dst := "iptables", netip.PrefixFrom(imdsAddr4, 32)
		if !v4 {
			bin, dst = "ip6tables", netip.PrefixFrom(imdsAddr6, 128)
		}
		rule := func(chain string, match ...string) iptablesRule {
			spec := append(match, "-d", dst.String(), "-p", "tcp", "-m", "tcp", "--dport", "80",
				"-m", "comment", "--comment", setupTag, "-j", "DNAT", "--to-destination", to.String())
			return iptablesRule{bin: bin, chain: chain, spec: spec}
		}
		for _, b := range o.bridges {
			rules = append(rules, rule("PREROUTING", "-i", b))
		}
		for _, c := range o.cidrs {
			if c.Addr().Is4() == v4 {
				rules = append(rules, rule("PREROUTING", "-s", c.String()))
			}
		}
		if o.host {
			rules = append(rules, rule("OUTPUT"))
		}
	}
	return rules
}

func setupDNAT(o *setupOptions, r hostRunner, w io.Writer) error {
	rules := dnatRules(o)
	if !o.apply {
		fmt.Fprintf(w, "# dnat mode: tcp to 169.254.169.254:80 goes to %s.\n", joinAnd(o.to))
		fmt.Fprintln(w, "# Run with --apply to add the rules not yet present; --remove deletes them.")
		for _, rule := range rules {
			fmt.Fprintln(w, rule.command("-I"))
		}
		return nil
	}
	n := 0
	for _, rule := range rules {
		// -C exits 1 when the rule is absent, and also when the chain or
		// table is: either way, insert it.
		if _, err := r.output(rule.command("-C")); err == nil {
			fmt.Fprintf(w, "# in effect: %s\n", rule.command("-I"))
			continue
		}
		c := rule.command("-I")
		fmt.Fprintln(w, c)
		if err := r.run(c); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		fmt.Fprintln(w, "# nothing to do")
	}
	return nil
}

// Removal.

func removeSetup(r hostRunner, w io.Writer) error {
	var cmds []hostCommand
	for _, bin := range []string{"iptables", "ip6tables"} {
		if !r.has(bin) {
			continue
		}
		out, err := r.output(hostCommand{bin, "-w", "-t", "nat", "-S"})
		if err != nil {
			// No nat table for this family (IPv6 disabled, say): nothing
			// of ours can be in it.
			fmt.Fprintf(w, "# skipped: %v\n", err)
			continue
		}
		rules, err := taggedRules(bin, out)
		if err != nil {
			return err
		}
		for _, rule := range rules {
			cmds = append(cmds, rule.command("-D"))
		}
	}
	out, err := r.output(ipAddrShow)
	if err != nil {
		return err
	}
	links, err := parseIPAddr(out)
	if err != nil {
		return err
	}
	cmds = append(cmds, addressRemoval(links)...)
	for _, c := range cmds {
		fmt.Fprintln(w, c)
		if err := r.run(c); err != nil {
			return err
		}
	}
	if len(cmds) == 0 {
		fmt.Fprintln(w, "# nothing to remove")
	}
	return nil
}

// taggedRules reads `iptables -t nat -S` and returns the rules that carry
// setup's comment, as they were printed (so -D matches them exactly).
func taggedRules(bin string, out []byte) ([]iptablesRule, error) {
	var rules []iptablesRule
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, setupTag) {
			continue
		}
		words, err := splitIptablesLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s -S: %w", bin, err)
		}
		if !hasComment(words, setupTag) || len(words) < 2 {
			continue
		}
		rules = append(rules, iptablesRule{bin: bin, chain: words[1], spec: words[2:]})
	}
	return rules, sc.Err()
}

func hasComment(words []string, tag string) bool {
	for i := 0; i+1 < len(words); i++ {
		if words[i] == "--comment" && words[i+1] == tag {
			return true
		}
	}
	return false
}

// splitIptablesLine splits a line of `iptables -S` into arguments: words
// separated by spaces, where a double-quoted word may hold spaces and
// backslash-escaped quotes and backslashes (iptables quotes comments so).
func splitIptablesLine(line string) ([]string, error) {
	var words []string
	var b strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			b.WriteByte(line[i])
		case c == '"':
			quoted, inWord = !quoted, true
		case c == ' ' && !quoted:
			if inWord {
				words = append(words, b.String())
				b.Reset()
			}
			inWord = false
		default:
			b.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if inWord {
		words = append(words, b.String())
	}
	return words, nil
}

// addressRemoval deletes the interfaces setup created (their addresses go
// with them) and the addresses it added to other interfaces.
func addressRemoval(links []ipLink) []hostCommand {
	var cmds []hostCommand
	for _, l := range links {
		if l.Alias == setupTag {
			cmds = append(cmds, hostCommand{"ip", "link", "del", "dev", l.Name})
			continue
		}
		for _, a := range l.AddrInfo {
			ad, err := netip.ParseAddr(a.Local)
			if err != nil || a.Metric != setupAddrMetric || (ad != imdsAddr4 && ad != imdsAddr6) {
				continue
			}
			p := netip.PrefixFrom(ad, a.PrefixLen)
			cmds = append(cmds, hostCommand{"ip", "addr", "del", p.String(), "dev", l.Name})
		}
	}
	return cmds
}

// Docker Desktop.

func printDockerDesktop(o *setupOptions, w io.Writer) error {
	_, err := fmt.Fprintf(w, dockerDesktopRecipe, o.containerPort)
	return err
}

const dockerDesktopRecipe = `# Docker Desktop (macOS, Windows): containers run in a VM, and no rule on this
# host can redirect their packets for 169.254.169.254. Nothing is applied.
#
# One role for every container: point the SDKs at the proxy's IMDS listener.
#   docker run -e AWS_EC2_METADATA_SERVICE_ENDPOINT=http://host.docker.internal:8080/ IMAGE
# All containers then arrive from the same address (see the access log's src),
# so they are one tenant.
#
# A role per container: the container credentials endpoint, where a token
# chooses the tenant.
# 1. In the proxy's configuration:
#      server:
#        container_listen: "127.0.0.1:%[1]d"   # 0.0.0.0:%[1]d where host.docker.internal does not reach loopback
#      tenants:
#        - name: web
#          sources: ["192.0.2.10"]   # unique per tenant; any_source lets the token alone choose
#          container_credentials: {token_file: ./web.token, any_source: true}
#          credentials: {profile: dev, role_arn: "arn:aws:iam::111122223333:role/web"}
# 2. In each container:
#      AWS_CONTAINER_CREDENTIALS_FULL_URI=http://host.docker.internal:%[1]d/credentials
#      AWS_CONTAINER_AUTHORIZATION_TOKEN=<the tenant's token>   (or ..._TOKEN_FILE)
#    The SDKs accept a plain-http URI only for loopback, 169.254.170.2,
#    169.254.170.23 and fd00:ec2::23: where they refuse host.docker.internal,
#    forward a loopback port to it inside the container's network, e.g. a
#    sidecar with --network container:APP running
#      socat TCP-LISTEN:%[1]d,bind=127.0.0.1,fork,reuseaddr TCP:host.docker.internal:%[1]d
#    and use AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:%[1]d/credentials.
`
