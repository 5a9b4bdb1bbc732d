//go:build netns || dockere2e || kube

package main

// The shared dev host, end to end, as root (`make e2e`): network namespaces
// stand in for containers on a Linux bridge, `imds-proxy setup --apply`
// routes 169.254.169.254 to the proxy, and inside each namespace the
// unmodified AWS CLI v2, boto3 and curl — with no IMDS endpoint variable —
// must each get their own tenant's instance and role, with moto as STS.
// Then `setup --remove` must leave the host's rules and addresses as they
// were. Only loopback and the test's own namespaces carry traffic: the
// namespaces have no default route, only routes to the IMDS addresses.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/internal/hostnet"
)

// netnsBudget bounds the whole test: every command runs under it.
const netnsBudget = 110 * time.Second

// The test network: benchmarking addresses (RFC 2544) and a ULA prefix,
// which no real network of the host should use.
const (
	netnsBridge   = "imdse2e0"
	netnsHost4    = "198.18.0.1"
	netnsHost6    = "fd00:18::1"
	netnsAccount  = "123456789012"
	netnsProxyPrt = "8080"
	netnsKeyID    = "AKIANETNSSTATICKEY01"
	netnsSecret   = "netns-static-secret/0123456789abcdefghijklm"
)

// netnsGuest is one namespace, a "container".
type netnsGuest struct {
	ns, veth     string
	addr4, addr6 string
	tenant       string // "" for a source no tenant lists
	instanceID   string
	role         string
}

var netnsGuests = []netnsGuest{
	{"imds-e2e-web", "imdse2ev1", "198.18.0.11", "fd00:18::11", "web", "i-0e2e0000000000011", "netns-web"},
	{"imds-e2e-worker", "imdse2ev2", "198.18.0.12", "fd00:18::12", "worker", "i-0e2e0000000000012", "netns-worker"},
	{"imds-e2e-stranger", "imdse2ev3", "198.18.0.13", "fd00:18::13", "", "", ""},
}

// netnsEnv is one test run: its deadline and the tools it found.
type netnsEnv struct {
	ctx    context.Context
	python string // absolute path of a python3 with boto3
	moto   string // moto's URL as the namespaces reach it
}

func TestNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		need(t, "root (network namespaces, a bridge, iptables)", errors.New("not root"))
	}
	for _, tool := range []string{"ip", "iptables", "iptables-save", "ip6tables-save", "curl", "/usr/bin/aws", "ec2-metadata"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("netns: %s is required: %v", tool, err)
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), netnsBudget)
	t.Cleanup(cancel)
	e := &netnsEnv{ctx: ctx, python: boto3Python(t)}

	netnsTopology(t, e)
	m := motoStart(t)
	e.moto = netnsRelay(t, netnsHost4, m.url)
	t.Logf("topology and moto up in %s; python %s", time.Since(start).Round(time.Millisecond), e.python)

	if snap := netnsSnapshot(t, e); strings.Contains(snap, "--comment "+hostnet.Tag) || strings.Contains(snap, "metric "+strconv.Itoa(hostnet.AddrMetric)) {
		t.Fatalf("netns: the host already has rules or addresses of imds-proxy setup; run `imds-proxy setup --remove` first:\n%s", snap)
	}
	iface := "imds0"
	if !netnsHasDummy(t, e) {
		// Some kernels (this CI's among them) are built without dummy
		// interfaces: the address on lo is delivered locally just the same.
		iface = "lo"
		t.Logf("this kernel has no dummy interfaces: address mode uses --interface lo")
	}
	modes := []struct {
		name   string
		setup  []string
		listen []string
	}{
		{
			// The host owns 169.254.169.254: packets the namespaces route
			// to it over the bridge are delivered locally, no DNAT.
			name:   "address",
			setup:  []string{"--mode", "address", "--interface", iface},
			listen: []string{"169.254.169.254:80", "[fd00:ec2::254]:80"},
		},
		{
			name: "dnat",
			setup: []string{"--mode", "dnat", "--bridge", netnsBridge,
				"--to", netnsHost4 + ":" + netnsProxyPrt, "--to", "[" + netnsHost6 + "]:" + netnsProxyPrt},
			listen: []string{netnsHost4 + ":" + netnsProxyPrt, "[" + netnsHost6 + "]:" + netnsProxyPrt},
		},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			begin := time.Now()
			before := netnsSnapshot(t, e)
			t.Cleanup(func() { netnsSetup(t, e, "--remove") }) // on failure too; idempotent
			netnsSetup(t, e, append(mode.setup, "--apply")...)
			applied := netnsSnapshot(t, e)
			if applied == before {
				t.Errorf("setup --apply changed neither rules nor addresses")
			}
			netnsSetup(t, e, append(mode.setup, "--apply")...) // idempotent
			if again := netnsSnapshot(t, e); again != applied {
				t.Errorf("a second setup --apply changed the host:\n%s", netnsDiff(applied, again))
			}

			p := netnsStartProxy(t, m.url, mode.listen)
			t.Run("clients", func(t *testing.T) {
				for _, g := range netnsGuests {
					t.Run(g.ns, func(t *testing.T) {
						t.Parallel()
						netnsCheckGuest(t, e, g)
					})
				}
			})
			p.stop(t)

			netnsSetup(t, e, "--remove")
			if after := netnsSnapshot(t, e); after != before {
				t.Errorf("setup --remove did not restore the host:\n%s", netnsDiff(before, after))
			}
			t.Logf("mode %s: %s", mode.name, time.Since(begin).Round(time.Millisecond))
		})
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// netnsCheckGuest runs the clients inside g's namespace.
func netnsCheckGuest(t *testing.T, e *netnsEnv, g netnsGuest) {
	wantARN := fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", netnsAccount, g.role, g.instanceID)

	for _, url := range []string{"http://169.254.169.254/latest/meta-data/instance-id", "http://[fd00:ec2::254]/latest/meta-data/instance-id"} {
		begin := time.Now()
		out, err := netnsExec(e, g.ns, nil, "curl", "-sg", "--max-time", "5", "-w", "\n%{http_code}", url)
		if err != nil {
			t.Errorf("curl %s: %v\n%s", url, err, out)
			continue
		}
		body, status := "", lastLine(out)
		if i := strings.LastIndexByte(out, '\n'); i >= 0 {
			body = out[:i]
		}
		if g.tenant == "" {
			if status != "403" {
				t.Errorf("curl %s from %s: status %s, want 403", url, g.ns, status)
			}
			t.Logf("curl %s: %s (no tenant)", url, status)
			continue
		}
		if status != "200" || body != g.instanceID {
			t.Errorf("curl %s from %s: %s %q, want 200 %q", url, g.ns, status, body, g.instanceID)
		}
		t.Logf("curl %s: %s %s in %s", url, status, body, time.Since(begin).Round(time.Millisecond))
	}

	// Amazon's ec2-metadata (amazon-ec2-utils), unmodified: it asks
	// 169.254.169.254 for every field, through paths with doubled slashes.
	if g.tenant != "" {
		out, err := netnsExec(e, g.ns, nil, "ec2-metadata", "--all")
		if err != nil || !strings.Contains(out, "instance-id: "+g.instanceID+"\n") || !strings.Contains(out, "reservation-id: r-") {
			t.Errorf("ec2-metadata --all in %s = %v:\n%s\nwant its instance id and a reservation id", g.ns, err, out)
		}
		// What every tenant has must print a value; what it lacks (a
		// public address, a kernel id) prints "not available", as on an
		// instance without them.
		for _, field := range []string{"ami-id", "ami-launch-index", "instance-id", "instance-type", "local-hostname",
			"local-ipv4", "placement", "reservation-id", "security-groups"} {
			if !regexp.MustCompile(`(?m)^`+field+`: \S`).MatchString(out) || strings.Contains(out, field+": not available") {
				t.Errorf("ec2-metadata --all in %s: no value for %s:\n%s", g.ns, field, out)
			}
		}
		t.Logf("ec2-metadata --all in %s:\n%s", g.ns, out)
	}

	home := t.TempDir()
	// Nothing points the clients at IMDS: only STS is moto, and HOME is
	// empty. The AWS CLI 2.9 in Debian predates AWS_ENDPOINT_URL, hence
	// --endpoint-url as well.
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + home, "AWS_DEFAULT_REGION=us-east-1", "AWS_ENDPOINT_URL=" + e.moto}

	begin := time.Now()
	out, err := netnsExec(e, g.ns, env, "/usr/bin/aws", "sts", "get-caller-identity", "--endpoint-url", e.moto, "--output", "json")
	if g.tenant == "" {
		if err == nil || !strings.Contains(out, "Unable to locate credentials") {
			t.Errorf("aws sts get-caller-identity from %s = %v, %q; want \"Unable to locate credentials\"", g.ns, err, out)
		}
		t.Logf("aws cli: %q (no tenant) in %s", strings.TrimSpace(out), time.Since(begin).Round(time.Millisecond))
	} else {
		var id struct{ Arn, Account string }
		if err != nil || json.Unmarshal([]byte(out), &id) != nil || id.Arn != wantARN {
			t.Errorf("aws sts get-caller-identity from %s = %v, %q; want Arn %s", g.ns, err, out, wantARN)
		}
		t.Logf("aws cli: %s in %s", id.Arn, time.Since(begin).Round(time.Millisecond))
	}

	begin = time.Now()
	const script = `import boto3, json
s = boto3.Session()
c = s.get_credentials()
if c is None:
    print(json.dumps({"method": None}))
else:
    arn = s.client("sts").get_caller_identity()["Arn"]
    print(json.dumps({"method": c.method, "arn": arn}))
`
	out, err = netnsExec(e, g.ns, env, e.python, "-c", script)
	var got struct {
		Method *string
		ARN    string `json:"arn"`
	}
	if err != nil || json.Unmarshal([]byte(lastLine(out)), &got) != nil {
		t.Errorf("boto3 in %s: %v\n%s", g.ns, err, out)
		return
	}
	switch {
	case g.tenant == "" && got.Method != nil:
		t.Errorf("boto3 in %s found credentials (%s, %s), want none", g.ns, *got.Method, got.ARN)
	case g.tenant != "" && (got.Method == nil || *got.Method != "iam-role" || got.ARN != wantARN):
		t.Errorf("boto3 in %s = %s; want iam-role credentials of %s", g.ns, out, wantARN)
	case g.tenant != "":
		t.Logf("boto3: %s (%s) in %s", got.ARN, *got.Method, time.Since(begin).Round(time.Millisecond))
	default:
		t.Logf("boto3: no credentials (no tenant) in %s", time.Since(begin).Round(time.Millisecond))
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// netnsStartProxy runs the proxy with two tenants, each assuming its own
// role with the static keys of the profile "moto".
func netnsStartProxy(t *testing.T, motoURL string, listen []string) *e2eProcess {
	var b strings.Builder
	b.WriteString("server:\n  listen: [")
	for i, l := range listen {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", l)
	}
	b.WriteString("]\n  admin_listen: \"127.0.0.1:0\"\ndefaults:\n  credentials: {profile: moto}\ntenants:\n")
	for _, g := range netnsGuests {
		if g.tenant == "" {
			continue
		}
		fmt.Fprintf(&b, "  - name: %s\n    sources: [%q, %q]\n    instance: {instance_id: %s}\n", g.tenant, g.addr4, g.addr6, g.instanceID)
		fmt.Fprintf(&b, "    credentials: {role_arn: \"arn:aws:iam::%s:role/%s\"}\n", netnsAccount, g.role)
	}
	config := filepath.Join(t.TempDir(), "imds-proxy.yaml")
	if err := os.WriteFile(config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := fmt.Sprintf("[moto]\naws_access_key_id = %s\naws_secret_access_key = %s\n", netnsKeyID, netnsSecret)
	env := motoEnv(t, t.TempDir(), motoURL, "[profile moto]\nregion = us-east-1\n", creds)
	return e2eStart(t, env, "--config", config)
}

// netnsSetup runs `imds-proxy setup` and logs what it printed.
func netnsSetup(t *testing.T, e *netnsEnv, args ...string) {
	t.Helper()
	out, err := exec.CommandContext(e.ctx, e2eBinary(t), append([]string{"setup"}, args...)...).CombinedOutput()
	t.Logf("imds-proxy setup %s:\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("imds-proxy setup %s: %v", strings.Join(args, " "), err)
	}
}

// netnsTopology builds the bridge and a namespace per guest, each with a
// veth on the bridge, its own addresses and routes to the IMDS addresses
// only. Everything is deleted when the test ends.
func netnsTopology(t *testing.T, e *netnsEnv) {
	// Deleting a namespace deletes its veth pair. A fresh context: the
	// test's own may have run out. Leftovers of a killed run go first.
	clean := func() {
		for _, g := range netnsGuests {
			_ = exec.Command("ip", "netns", "del", g.ns).Run()
		}
		_ = exec.Command("ip", "link", "del", netnsBridge).Run()
	}
	clean()
	for _, a := range []string{netnsHost4 + "/24", netnsHost6 + "/64"} {
		if out := netnsMust(t, e, "ip", "-o", "addr", "show", "to", a); strings.TrimSpace(out) != "" {
			need(t, "the network "+a+" free on this host", fmt.Errorf("in use: %s", out))
		}
	}
	t.Cleanup(clean)
	netnsMust(t, e, "ip", "link", "add", netnsBridge, "type", "bridge")
	netnsMust(t, e, "ip", "addr", "add", netnsHost4+"/24", "dev", netnsBridge)
	netnsMust(t, e, "ip", "addr", "add", netnsHost6+"/64", "dev", netnsBridge, "nodad")
	netnsMust(t, e, "ip", "link", "set", netnsBridge, "up")
	for _, g := range netnsGuests {
		netnsMust(t, e, "ip", "netns", "add", g.ns)
		netnsMust(t, e, "ip", "link", "add", g.veth, "type", "veth", "peer", "name", "eth0", "netns", g.ns)
		netnsMust(t, e, "ip", "link", "set", g.veth, "master", netnsBridge, "up")
		in := func(args ...string) { netnsMust(t, e, append([]string{"ip", "netns", "exec", g.ns}, args...)...) }
		in("ip", "link", "set", "lo", "up")
		in("ip", "addr", "add", g.addr4+"/24", "dev", "eth0")
		in("ip", "addr", "add", g.addr6+"/64", "dev", "eth0", "nodad")
		in("ip", "link", "set", "eth0", "up")
		in("ip", "route", "add", "169.254.169.254/32", "via", netnsHost4)
		in("ip", "-6", "route", "add", "fd00:ec2::254/128", "via", netnsHost6)
	}
	// The link-local addresses finish duplicate address detection about a
	// second after the links come up; wait, so that the snapshots do not
	// differ by that.
	deadline := time.Now().Add(5 * time.Second)
	for strings.Contains(netnsMust(t, e, "ip", "addr", "show"), "tentative") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
}

// netnsHasDummy reports whether this kernel makes dummy interfaces, trying
// one in a scratch namespace.
func netnsHasDummy(t *testing.T, e *netnsEnv) bool {
	const ns = "imds-e2e-probe"
	netnsMust(t, e, "ip", "netns", "add", ns)
	defer func() { _ = exec.Command("ip", "netns", "del", ns).Run() }()
	_, err := netnsExec(e, ns, nil, "ip", "link", "add", "probe0", "type", "dummy")
	return err == nil
}

// netnsRelay forwards a port of host, the bridge's address, to moto on
// loopback, so that the namespaces (or containers) can reach it.
func netnsRelay(t *testing.T, host, motoURL string) string {
	target := strings.TrimPrefix(motoURL, "http://")
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				u, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				_ = u.SetDeadline(time.Now().Add(30 * time.Second))
				done := make(chan struct{})
				go func() { _, _ = io.Copy(u, c); _ = u.(*net.TCPConn).CloseWrite(); close(done) }()
				_, _ = io.Copy(c, u)
				<-done
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

// netnsExec runs a command in namespace ns (the host's when ns is empty)
// with exactly env, and returns its combined output.
func netnsExec(e *netnsEnv, ns string, env []string, args ...string) (string, error) {
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = env
	if env == nil {
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return string(out), err
}

func netnsMust(t *testing.T, e *netnsEnv, args ...string) string {
	t.Helper()
	out, err := netnsExec(e, "", nil, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// netnsSnapshot is what setup may change on the host: its iptables and
// ip6tables rules and its addresses, with what changes by itself (packet
// counters, timestamps, address lifetimes) left out.
func netnsSnapshot(t *testing.T, e *netnsEnv) string {
	var b strings.Builder
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		b.WriteString("== " + save + "\n" + netnsRules(netnsMust(t, e, save)))
	}
	b.WriteString("== ip addr\n")
	for _, line := range strings.Split(netnsMust(t, e, "ip", "addr", "show"), "\n") {
		if strings.Contains(line, "valid_lft") {
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

var saveCounters = regexp.MustCompile(`\[\d+:\d+\]`)

// netnsRules normalises iptables-save output. A table holding nothing but
// its built-in chains with policy ACCEPT is left out: iptables-nft creates
// a table on its first rule and iptables cannot delete it, but such a
// table does nothing — it equals no table at all.
func netnsRules(save string) string {
	var out, table strings.Builder
	empty := true
	for _, line := range strings.Split(save, "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			table.Reset()
			empty = true
			table.WriteString(line + "\n")
		case line == "COMMIT":
			if !empty {
				out.WriteString(table.String() + "COMMIT\n")
			}
		default:
			line = saveCounters.ReplaceAllString(line, "")
			builtinAccept := strings.HasPrefix(line, ":") && strings.HasSuffix(strings.TrimSpace(line), " ACCEPT")
			if !builtinAccept {
				empty = false
			}
			table.WriteString(line + "\n")
		}
	}
	return out.String()
}

// netnsDiff lists the lines only one of two snapshots has.
func netnsDiff(a, b string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	ca, cb := count(a), count(b)
	var d []string
	for l, n := range ca {
		if cb[l] < n {
			d = append(d, "- "+l)
		}
	}
	for l, n := range cb {
		if ca[l] < n {
			d = append(d, "+ "+l)
		}
	}
	if len(d) == 0 {
		return "(same lines, different order)"
	}
	return strings.Join(d, "\n")
}
