package hostnet

import (
	"net/netip"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func targets(ss ...string) []netip.AddrPort {
	var aps []netip.AddrPort
	for _, s := range ss {
		aps = append(aps, netip.MustParseAddrPort(s))
	}
	return aps
}

// dnatTail is the end of every rule Plan writes, up to the target.
const dnatTail = "-p tcp -m tcp --dport 80 -m comment --comment imds-proxy -j DNAT --to-destination "

// checkPlan validates opts and compares the commands Plan makes of them
// with want.
func checkPlan(t *testing.T, opts Options, want []string) {
	t.Helper()
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := joinCommands(Plan(opts)), strings.Join(want, "\n"); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlanDNAT(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want []string
	}{
		{
			name: "bridges",
			opts: Options{Bridges: []string{"docker0", "br-+"}, To: targets("172.17.0.1:8080")},
			want: []string{
				"iptables -w -t nat -I PREROUTING -i docker0 -d 169.254.169.254/32 " + dnatTail + "172.17.0.1:8080",
				"iptables -w -t nat -I PREROUTING -i br-+ -d 169.254.169.254/32 " + dnatTail + "172.17.0.1:8080",
			},
		},
		{
			name: "cidrs of both families, host processes too",
			opts: Options{CIDRs: prefixes("172.30.0.0/16", "fd00:30::/64"), To: targets("[fd00:30::1]:8080", "172.30.0.1:8080"), Host: true},
			want: []string{
				"iptables -w -t nat -I PREROUTING -s 172.30.0.0/16 -d 169.254.169.254/32 " + dnatTail + "172.30.0.1:8080",
				"iptables -w -t nat -I OUTPUT -d 169.254.169.254/32 " + dnatTail + "172.30.0.1:8080",
				"ip6tables -w -t nat -I PREROUTING -s fd00:30::/64 -d fd00:ec2::254/128 " + dnatTail + "[fd00:30::1]:8080",
				"ip6tables -w -t nat -I OUTPUT -d fd00:ec2::254/128 " + dnatTail + "[fd00:30::1]:8080",
			},
		},
		{
			// How --cidr 172.30.0.10 arrives (cmd's TestSetupFlagsToOptions).
			name: "a single address as cidr",
			opts: Options{CIDRs: prefixes("172.30.0.10/32"), To: targets("172.30.0.1:8080")},
			want: []string{"iptables -w -t nat -I PREROUTING -s 172.30.0.10/32 -d 169.254.169.254/32 " + dnatTail + "172.30.0.1:8080"},
		},
		{
			name: "host only, to loopback",
			opts: Options{Host: true, To: targets("127.0.0.1:8080")},
			want: []string{"iptables -w -t nat -I OUTPUT -d 169.254.169.254/32 " + dnatTail + "127.0.0.1:8080"},
		},
		{
			name: "an IPv4-mapped target is IPv4's",
			opts: Options{Host: true, To: targets("[::ffff:127.0.0.1]:8080")},
			want: []string{"iptables -w -t nat -I OUTPUT -d 169.254.169.254/32 " + dnatTail + "127.0.0.1:8080"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Mode = DNAT
			checkPlan(t, tc.opts, tc.want)
		})
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

func TestPlanRemoveRules(t *testing.T) {
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

func TestPlanRemoveSplitsIptablesLines(t *testing.T) {
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
