package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func mustSetupFlags(t *testing.T, args ...string) *setupOptions {
	t.Helper()
	o, err := parseSetupFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("parseSetupFlags(%q): %v", args, err)
	}
	return o
}

func TestSetupFlagErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // substring of the error
	}{
		{"no mode", nil, "--mode is required"},
		{"unknown mode", []string{"--mode", "nft"}, `--mode "nft"`},
		{"dnat without --to", []string{"--mode", "dnat", "--bridge", "docker0"}, "--to is required"},
		{"dnat without whom", []string{"--mode", "dnat", "--to", "172.17.0.1:8080"}, "--bridge, --cidr or --host"},
		{"dnat to loopback from a bridge", []string{"--mode", "dnat", "--bridge", "docker0", "--to", "127.0.0.1:8080"}, "cannot be redirected to loopback"},
		{"two IPv4 targets", []string{"--mode", "dnat", "--host", "--to", "172.17.0.1:8080,172.18.0.1:8080"}, "at most one address per IP version"},
		{"to without port", []string{"--mode", "dnat", "--host", "--to", "172.17.0.1"}, "want IP:port"},
		{"cidr with host bits", []string{"--mode", "dnat", "--cidr", "172.30.0.1/16", "--to", "172.30.0.1:8080"}, "did you mean 172.30.0.0/16"},
		{"IPv6 cidr without IPv6 target", []string{"--mode", "dnat", "--cidr", "fd00:30::/64", "--to", "172.30.0.1:8080"}, "no --to address of its IP version"},
		{"bad bridge name", []string{"--mode", "dnat", "--bridge", "a b", "--to", "172.17.0.1:8080"}, "not an interface name"},
		{"long bridge name", []string{"--mode", "dnat", "--bridge", "br-0123456789abcdef", "--to", "172.17.0.1:8080"}, "not an interface name"},
		{"flag of another mode", []string{"--mode", "address", "--bridge", "docker0"}, "--bridge belongs to --mode dnat"},
		{"remove with a mode", []string{"--remove", "--mode", "dnat"}, "takes no other flag"},
		{"remove with a mode flag", []string{"--remove", "--apply", "--interface", "lo"}, "takes no other flag"},
		{"docker-desktop apply", []string{"--mode", "docker-desktop", "--apply"}, "nothing to --apply"},
		{"wildcard interface", []string{"--mode", "address", "--interface", "imds+"}, "not an interface name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSetupFlags(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseSetupFlags(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestDNATCommands(t *testing.T) {
	const tail = "-p tcp -m tcp --dport 80 -m comment --comment imds-proxy -j DNAT --to-destination "
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "bridges",
			args: []string{"--bridge", "docker0", "--bridge", "br-+", "--to", "172.17.0.1:8080"},
			want: []string{
				"iptables -w -t nat -I PREROUTING -i docker0 -d 169.254.169.254/32 " + tail + "172.17.0.1:8080",
				"iptables -w -t nat -I PREROUTING -i br-+ -d 169.254.169.254/32 " + tail + "172.17.0.1:8080",
			},
		},
		{
			name: "cidrs of both families, host processes too",
			args: []string{"--cidr", "172.30.0.0/16,fd00:30::/64", "--to", "[fd00:30::1]:8080", "--to", "172.30.0.1:8080", "--host"},
			want: []string{
				"iptables -w -t nat -I PREROUTING -s 172.30.0.0/16 -d 169.254.169.254/32 " + tail + "172.30.0.1:8080",
				"iptables -w -t nat -I OUTPUT -d 169.254.169.254/32 " + tail + "172.30.0.1:8080",
				"ip6tables -w -t nat -I PREROUTING -s fd00:30::/64 -d fd00:ec2::254/128 " + tail + "[fd00:30::1]:8080",
				"ip6tables -w -t nat -I OUTPUT -d fd00:ec2::254/128 " + tail + "[fd00:30::1]:8080",
			},
		},
		{
			name: "a single address as cidr",
			args: []string{"--cidr", "172.30.0.10", "--to", "172.30.0.1:8080"},
			want: []string{"iptables -w -t nat -I PREROUTING -s 172.30.0.10/32 -d 169.254.169.254/32 " + tail + "172.30.0.1:8080"},
		},
		{
			name: "host only, to loopback",
			args: []string{"--host", "--to", "127.0.0.1:8080"},
			want: []string{"iptables -w -t nat -I OUTPUT -d 169.254.169.254/32 " + tail + "127.0.0.1:8080"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := mustSetupFlags(t, append([]string{"--mode", "dnat"}, tc.args...)...)
			var got []string
			for _, r := range dnatRules(o) {
				got = append(got, r.command("-I").String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// ipAddrJSON is `ip -d -j addr show` trimmed to what setup reads.
const ipAddrJSON = `[
 {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"addr_info":[
  {"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo"},
  {"family":"inet","local":"169.254.169.254","prefixlen":32,"scope":"global","label":"lo"},
  {"family":"inet6","local":"fd00:ec2::254","prefixlen":128,"metric":3778,"scope":"global"}]},
 {"ifindex":5,"ifname":"imds0","flags":["BROADCAST","NOARP","UP","LOWER_UP"],"ifalias":"imds-proxy","addr_info":[
  {"family":"inet","local":"169.254.169.254","prefixlen":32,"metric":3778,"scope":"global","label":"imds0"}]},
 {"ifindex":6,"ifname":"br0","flags":["BROADCAST","MULTICAST","UP"],"ifalias":"someone else's","addr_info":[
  {"family":"inet","local":"169.254.169.254","prefixlen":32,"metric":1,"scope":"global","label":"br0"},
  {"family":"inet","local":"198.18.0.1","prefixlen":24,"metric":3778,"scope":"global","label":"br0"}]},
 {"ifindex":7,"ifname":"down0","flags":["BROADCAST","NOARP"],"ifalias":"imds-proxy","addr_info":[]}
]`

func TestAddressPlan(t *testing.T) {
	links, err := parseIPAddr([]byte(ipAddrJSON))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name          string
		args          []string
		todo, present []string
	}{
		{
			name: "absent interface is created and tagged",
			args: []string{"--interface", "imds1"},
			todo: []string{
				"ip link add imds1 type dummy",
				"ip link set dev imds1 alias imds-proxy",
				"ip link set dev imds1 up",
				"ip addr add 169.254.169.254/32 dev imds1 metric 3778",
				"ip addr add fd00:ec2::254/128 dev imds1 metric 3778",
			},
		},
		{
			name:    "ours, with the IPv4 address",
			args:    []string{"--interface", "imds0"},
			todo:    []string{"ip addr add fd00:ec2::254/128 dev imds0 metric 3778"},
			present: []string{"ip addr add 169.254.169.254/32 dev imds0 metric 3778"},
		},
		{
			name:    "IPv4 only",
			args:    []string{"--interface", "imds0", "--ipv6=false"},
			present: []string{"ip addr add 169.254.169.254/32 dev imds0 metric 3778"},
		},
		{
			name: "existing interface: used as it is, addresses already there",
			args: []string{"--interface", "lo"},
			present: []string{
				"ip addr add 169.254.169.254/32 dev lo metric 3778",
				"ip addr add fd00:ec2::254/128 dev lo metric 3778",
			},
		},
		{
			name: "ours but down is brought up",
			args: []string{"--interface", "down0", "--ipv6=false"},
			todo: []string{
				"ip link set dev down0 up",
				"ip addr add 169.254.169.254/32 dev down0 metric 3778",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := mustSetupFlags(t, append([]string{"--mode", "address"}, tc.args...)...)
			todo, present := addressPlan(o, links, true)
			if got, want := joinCommands(todo), strings.Join(tc.todo, "\n"); got != want {
				t.Errorf("todo:\n%s\nwant:\n%s", got, want)
			}
			if got, want := joinCommands(present), strings.Join(tc.present, "\n"); got != want {
				t.Errorf("present:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func joinCommands(cs []hostCommand) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, "\n")
}

func TestAddressRemoval(t *testing.T) {
	links, err := parseIPAddr([]byte(ipAddrJSON))
	if err != nil {
		t.Fatal(err)
	}
	// lo's IPv4 alias has no mark (someone else's, e.g. `make run-linux`),
	// br0's marked address is not an IMDS address: both stay.
	want := strings.Join([]string{
		"ip addr del fd00:ec2::254/128 dev lo",
		"ip link del dev imds0",
		"ip link del dev down0",
	}, "\n")
	if got := joinCommands(addressRemoval(links)); got != want {
		t.Errorf("removal:\n%s\nwant:\n%s", got, want)
	}
}

// iptablesS is `iptables -t nat -S` on a Docker host after setup --apply,
// plus rules that merely look like ours.
const iptablesS = `-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-N DOCKER
-A PREROUTING -d 169.254.169.254/32 -i docker0 -p tcp -m tcp --dport 80 -m comment --comment imds-proxy -j DNAT --to-destination 172.17.0.1:8080
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A PREROUTING -d 169.254.169.254/32 -p tcp -m comment --comment "imds-proxy old" -j DNAT --to-destination 172.17.0.1:9999
-A PREROUTING -s 172.30.0.0/16 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m comment --comment "imds-proxy" -j DNAT --to-destination 172.30.0.1:8080
-A OUTPUT -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m comment --comment imds-proxy -j DNAT --to-destination 172.17.0.1:8080
-A OUTPUT -m comment --comment "say \"imds-proxy\"" -j ACCEPT
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
`

func TestTaggedRules(t *testing.T) {
	rules, err := taggedRules("iptables", []byte(iptablesS))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, r.command("-D").String())
	}
	want := []string{
		"iptables -w -t nat -D PREROUTING -d 169.254.169.254/32 -i docker0 -p tcp -m tcp --dport 80 -m comment --comment imds-proxy -j DNAT --to-destination 172.17.0.1:8080",
		"iptables -w -t nat -D PREROUTING -s 172.30.0.0/16 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m comment --comment imds-proxy -j DNAT --to-destination 172.30.0.1:8080",
		"iptables -w -t nat -D OUTPUT -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m comment --comment imds-proxy -j DNAT --to-destination 172.17.0.1:8080",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tagged rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSplitIptablesLine(t *testing.T) {
	cases := []struct {
		line string
		want []string
	}{
		{`-A X -j ACCEPT`, []string{"-A", "X", "-j", "ACCEPT"}},
		{`-A X  -m comment --comment "a b"`, []string{"-A", "X", "-m", "comment", "--comment", "a b"}},
		{`-A X --comment "say \"hi\" \\o/"`, []string{"-A", "X", "--comment", `say "hi" \o/`}},
		{`-A X --comment ""`, []string{"-A", "X", "--comment", ""}},
	}
	for _, tc := range cases {
		got, err := splitIptablesLine(tc.line)
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("splitIptablesLine(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	if _, err := splitIptablesLine(`-A X --comment "open`); err == nil {
		t.Error("an unterminated quote was accepted")
	}
}

// fakeHost answers queries from a table and records what runs.
type fakeHost struct {
	outputs map[string]string // command line -> stdout; absent: exit 1
	ran     []string
	failRun string // a command line whose run fails
}

func (f *fakeHost) output(c hostCommand) ([]byte, error) {
	out, ok := f.outputs[c.String()]
	if !ok {
		return nil, errors.New("exit status 1")
	}
	return []byte(out), nil
}

func (f *fakeHost) run(c hostCommand) error {
	f.ran = append(f.ran, c.String())
	if c.String() == f.failRun {
		return errors.New("exit status 2")
	}
	return nil
}

func (f *fakeHost) has(name string) bool { return name == "iptables" || name == "ip" }

func TestSetupApplyIsIdempotent(t *testing.T) {
	o := mustSetupFlags(t, "--mode", "dnat", "--bridge", "docker0,br-+", "--to", "172.17.0.1:8080", "--apply")
	present := dnatRules(o)[0].command("-C").String()
	f := &fakeHost{outputs: map[string]string{present: ""}}
	var out bytes.Buffer
	if err := setup(o, f, &out); err != nil {
		t.Fatal(err)
	}
	want := "iptables -w -t nat -I PREROUTING -i br-+ -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m comment --comment imds-proxy -j DNAT --to-destination 172.17.0.1:8080"
	if strings.Join(f.ran, "\n") != want {
		t.Errorf("ran:\n%s\nwant only:\n%s", strings.Join(f.ran, "\n"), want)
	}
	if !strings.Contains(out.String(), "# in effect: iptables -w -t nat -I PREROUTING -i docker0") || !strings.Contains(out.String(), want+"\n") {
		t.Errorf("output does not show what was skipped and what ran:\n%s", out.String())
	}
}

func TestSetupRemove(t *testing.T) {
	f := &fakeHost{outputs: map[string]string{
		"iptables -w -t nat -S": iptablesS,
		"ip -d -j addr show":    ipAddrJSON,
	}}
	var out bytes.Buffer
	if err := setup(mustSetupFlags(t, "--remove"), f, &out); err != nil {
		t.Fatal(err)
	}
	if len(f.ran) != 6 {
		t.Errorf("ran %d commands, want 3 rule and 3 address deletions:\n%s", len(f.ran), strings.Join(f.ran, "\n"))
	}
	if out.String() != strings.Join(f.ran, "\n")+"\n" {
		t.Errorf("output %q does not print each command before it runs", out.String())
	}

	f = &fakeHost{outputs: map[string]string{"iptables -w -t nat -S": "-P PREROUTING ACCEPT\n", "ip -d -j addr show": "[]"}}
	out.Reset()
	if err := setup(mustSetupFlags(t, "--remove"), f, &out); err != nil || len(f.ran) != 0 || !strings.Contains(out.String(), "nothing to remove") {
		t.Errorf("remove on a clean host: err %v, ran %q, output %q", err, f.ran, out.String())
	}
}

func TestSetupPrintsWithoutApplying(t *testing.T) {
	for _, args := range [][]string{
		{"--mode", "dnat", "--bridge", "docker0", "--to", "172.17.0.1:8080"},
		{"--mode", "address", "--interface", "imds-none0"},
		{"--mode", "docker-desktop", "--container-port", "9911"},
	} {
		f := &fakeHost{}
		var out bytes.Buffer
		if err := setup(mustSetupFlags(t, args...), f, &out); err != nil {
			t.Fatalf("setup %q: %v", args, err)
		}
		if len(f.ran) != 0 {
			t.Errorf("setup %q without --apply ran %q", args, f.ran)
		}
		want := map[string]string{
			"dnat":           "iptables -w -t nat -I PREROUTING -i docker0",
			"address":        "ip addr add 169.254.169.254/32 dev imds-none0 metric 3778",
			"docker-desktop": "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://host.docker.internal:9911/credentials",
		}[args[1]]
		if !strings.Contains(out.String(), want) {
			t.Errorf("setup %q printed:\n%s\nwant a line with %q", args, out.String(), want)
		}
	}
}

// TestRunSetup drives the subcommand through run, as main does: printing
// needs no root and changes nothing.
func TestRunSetup(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"setup", "--mode", "dnat", "--bridge", "docker0", "--to", "172.17.0.1:8080", "--host"},
		func(string) string { return "" }, &out, &errOut)
	if err != nil {
		t.Fatalf("run setup: %v (stderr %q)", err, errOut.String())
	}
	for _, want := range []string{
		"iptables -w -t nat -I PREROUTING -i docker0 -d 169.254.169.254/32",
		"iptables -w -t nat -I OUTPUT -d 169.254.169.254/32",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("setup printed:\n%s\nwant a line with %q", out.String(), want)
		}
	}
	if err := run(t.Context(), []string{"setup", "--mode", "dnat"}, func(string) string { return "" }, &out, &errOut); err == nil {
		t.Error("setup --mode dnat without --to succeeded")
	}
}
