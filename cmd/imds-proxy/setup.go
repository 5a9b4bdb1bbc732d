package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"

	"github.com/imds-proxy/imds-proxy/internal/hostnet"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// setupFlags are the flags of `imds-proxy setup`.
type setupFlags struct {
	opts          hostnet.Options
	apply, remove bool
}

func runSetup(args []string, stdout, stderr io.Writer) error {
	s, err := parseSetupFlags(args, stdout)
	switch {
	case errors.Is(err, errHelpShown):
		return nil
	case err != nil:
		return err
	case s.remove:
		return hostnet.Remove(hostnet.Exec{}, stdout)
	case s.apply:
		return hostnet.Apply(s.opts, hostnet.Exec{}, stdout)
	}
	return hostnet.Print(s.opts, stdout)
}

// setupValues are setup's flags that are read before they become
// hostnet.Options.
type setupValues struct {
	mode      string
	ipv6      bool
	cidrs, to []string
	port      int
	ecsTo     string
	podTo     []string // --pod-identity-to
}

// setupUsage is what setup's usage says besides its flags.
const setupUsage = `Forms:
  imds-proxy setup --mode address [--interface imds0] [--ipv6=false] [--ecs] [--pod-identity] [--apply]
  imds-proxy setup --mode dnat --to IP:PORT [--to [IPv6]:PORT] [--ecs-to IP:PORT] [--pod-identity-to IP:PORT]... [--bridge IF]... [--cidr CIDR]... [--host] [--apply]
  imds-proxy setup --mode docker-desktop [--container-port 8081]
  imds-proxy setup --remove

Prints the commands; --apply runs those not yet in effect, --remove undoes
everything setup added (and nothing else). Both need root.`

// setupFlagSet defines setup's flags into s and v.
func setupFlagSet(s *setupFlags, v *setupValues) *flag.FlagSet {
	fs := flag.NewFlagSet("imds-proxy setup", flag.ContinueOnError)
	fs.Usage = func() { usageOf(fs, setupUsage) }
	fs.StringVar(&v.mode, "mode", "", "`mode`: address (169.254.169.254 on an interface of this host, for a proxy listening there), dnat (redirect tcp 169.254.169.254:80 to --to), or docker-desktop (print the container credentials recipe)")
	fs.BoolVar(&s.apply, "apply", false, "run the commands that are not yet in effect")
	fs.BoolVar(&s.remove, "remove", false, "delete every rule, address and interface setup added, whatever the mode (no other flag needed)")
	fs.StringVar(&s.opts.Interface, "interface", "imds0", "address mode: `interface` that holds the addresses; created as a dummy interface if absent (an existing one such as lo is used as it is)")
	fs.BoolVar(&v.ipv6, "ipv6", true, "address mode: also add fd00:ec2::254/128")
	fs.Var(listFlag{&s.opts.Bridges}, "bridge", "dnat mode: redirect packets arriving on this `interface` (docker0, br-1a2b3c4d5e6f, br-+ for every br-*); repeatable")
	fs.Var(listFlag{&v.cidrs}, "cidr", "dnat mode: redirect packets from this source `block` (172.30.0.0/16, fd00:30::/64); repeatable")
	fs.Var(listFlag{&v.to}, "to", "dnat mode: the proxy's listen `address` (172.17.0.1:8080; [fd00:17::1]:8080 for IPv6 clients); one per family")
	fs.BoolVar(&s.opts.ECS, "ecs", false, "address mode: also add 169.254.170.2/32 and 169.254.170.23/32, the container credentials endpoints (server.ecs_listen: 169.254.170.2:80)")
	fs.StringVar(&v.ecsTo, "ecs-to", "", "dnat mode: the proxy's server.ecs_listen `address` (172.17.0.1:8082): also redirect tcp to 169.254.170.2:80 and 169.254.170.23:80 there")
	fs.BoolVar(&s.opts.PodIdentity, "pod-identity", false, "address mode: also add 169.254.170.23/32 and (with --ipv6) fd00:ec2::23/128, the EKS Pod Identity endpoint (server.pod_identity_listen: 169.254.170.23:80, [fd00:ec2::23]:80)")
	fs.Var(listFlag{&v.podTo}, "pod-identity-to", "dnat mode: the proxy's server.pod_identity_listen `address` (172.17.0.1:8083; [fd00:17::1]:8083 for IPv6 pods): also redirect tcp to 169.254.170.23:80 (and [fd00:ec2::23]:80) there; one per family")
	fs.BoolVar(&s.opts.Host, "host", false, "dnat mode: also redirect this host's own processes (OUTPUT chain)")
	fs.IntVar(&v.port, "container-port", 8081, "docker-desktop mode: `port` of the container credentials endpoint in the printed recipe")
	return fs
}

func parseSetupFlags(args []string, stdout io.Writer) (*setupFlags, error) {
	s := &setupFlags{}
	v := &setupValues{}
	fs := setupFlagSet(s, v)
	if err := parseArgs(fs, args, stdout); err != nil {
		return nil, err
	}
	cidrs, to, port, ipv6, mode := v.cidrs, v.to, &v.port, &v.ipv6, &v.mode
	if fs.NArg() > 0 {
		return nil, usagef("setup: unexpected argument %q", fs.Arg(0))
	}
	s.opts.Mode, s.opts.IPv4Only, s.opts.ContainerPort = hostnet.Mode(*mode), !*ipv6, uint16(*port)
	// Each value is checked as it is read, before the flags' combinations,
	// so that the first message is about the first thing to fix. Validate
	// checks these again, for other callers of hostnet.
	var errs []error
	for _, b := range s.opts.Bridges {
		if !hostnet.ValidInterface(b) {
			errs = append(errs, fmt.Errorf("--bridge %q is not an interface name", b))
		}
	}
	for _, c := range cidrs {
		// The same reading as a tenant's sources: the blocks name them.
		p, err := tenants.ParseSource(c)
		s.opts.CIDRs = append(s.opts.CIDRs, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("--cidr: %w", err))
		}
	}
	for _, t := range to {
		ap, err := netip.ParseAddrPort(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("--to %q: want IP:port, such as 172.17.0.1:8080 or [fd00:17::1]:8080", t))
			continue
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		for _, prev := range s.opts.To {
			if prev.Addr().Is4() == ap.Addr().Is4() {
				errs = append(errs, fmt.Errorf("--to %s and %s: give at most one address per IP version", prev, ap))
			}
		}
		s.opts.To = append(s.opts.To, ap)
	}
	if v.ecsTo != "" {
		ap, err := netip.ParseAddrPort(v.ecsTo)
		if err != nil {
			errs = append(errs, fmt.Errorf("--ecs-to %q: want IP:port, such as 172.17.0.1:8082", v.ecsTo))
		}
		s.opts.ECSTo = ap
	}
	for _, t := range v.podTo {
		ap, err := netip.ParseAddrPort(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("--pod-identity-to %q: want IP:port, such as 172.17.0.1:8083 or [fd00:17::1]:8083", t))
			continue
		}
		s.opts.PodIdentityTo = append(s.opts.PodIdentityTo, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	if len(errs) == 0 {
		errs = s.check(fs, *port)
	}
	if err := errors.Join(errs...); err != nil {
		return s, usageError{err}
	}
	return s, nil
}

// check validates the flags given together; hostnet validates the options.
func (s *setupFlags) check(fs *flag.FlagSet, port int) []error {
	var errs []error
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { // in lexical order
		set[f.Name] = true
		if s.remove && f.Name != "remove" && f.Name != "apply" {
			errs = append(errs, fmt.Errorf("--remove undoes everything setup added and takes no other flag (got --%s)", f.Name))
		}
	})
	// The flags each mode takes, besides --mode and --apply.
	modeFlags := map[hostnet.Mode][]string{
		hostnet.Address:       {"interface", "ipv6", "ecs", "pod-identity"},
		hostnet.DNAT:          {"bridge", "cidr", "to", "host", "ecs-to", "pod-identity-to"},
		hostnet.DockerDesktop: {"container-port"},
	}
	switch _, ok := modeFlags[s.opts.Mode]; {
	case s.remove:
		return errs
	case s.opts.Mode == "":
		return []error{errors.New("setup: --mode is required (address, dnat or docker-desktop), or --remove")}
	case !ok:
		return []error{fmt.Errorf("--mode %q: use address, dnat or docker-desktop", s.opts.Mode)}
	}
	for _, m := range slices.Sorted(maps.Keys(modeFlags)) {
		for _, name := range modeFlags[m] {
			if m != s.opts.Mode && set[name] {
				errs = append(errs, fmt.Errorf("--%s belongs to --mode %s, not %s", name, m, s.opts.Mode))
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if s.opts.Mode == hostnet.DockerDesktop && s.apply {
		errs = append(errs, errors.New("--mode docker-desktop changes nothing on this host: there is nothing to --apply"))
	}
	if port < 1 || port > 65535 { // hostnet.Options takes 0 for its default
		errs = append(errs, fmt.Errorf("--container-port %d: want 1-65535", port))
	}
	return append(errs, s.opts.Validate())
}
