package hostnet

import (
	"regexp"
	"strings"
	"testing"
)

func TestSetupValidate(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want string // substring of the error; "" for none
	}{
		{"address, defaults", Options{Mode: Address}, ""},
		{"address on lo", Options{Mode: Address, Interface: "lo"}, ""},
		{"docker-desktop", Options{Mode: DockerDesktop}, ""},
		{"dnat", Options{Mode: DNAT, Bridges: []string{"br-+"}, CIDRs: prefixes("fd00:30::/64"), To: targets("[fd00:30::1]:8080", "172.17.0.1:8080")}, ""},
		{"no mode", Options{}, `--mode ""`},
		{"unknown mode", Options{Mode: "nft"}, `--mode "nft"`},
		{"wildcard interface", Options{Mode: Address, Interface: "imds+"}, "not an interface name"},
		{"long interface", Options{Mode: Address, Interface: "imds0123456789ab"}, "not an interface name"},
		{"dnat without --to", Options{Mode: DNAT, Bridges: []string{"docker0"}}, "--to is required"},
		{"dnat without whom", Options{Mode: DNAT, To: targets("172.17.0.1:8080")}, "--bridge, --cidr or --host"},
		{"dnat to loopback from a bridge", Options{Mode: DNAT, Bridges: []string{"docker0"}, To: targets("127.0.0.1:8080")}, "cannot be redirected to loopback"},
		{"two IPv4 targets", Options{Mode: DNAT, Host: true, To: targets("172.17.0.1:8080", "172.18.0.1:8080")}, "at most one address per IP version"},
		{"two IPv4 targets, one mapped", Options{Mode: DNAT, Host: true, To: targets("172.17.0.1:8080", "[::ffff:172.18.0.1]:8080")}, "at most one address per IP version"},
		{"port 0", Options{Mode: DNAT, Host: true, To: targets("172.17.0.1:0")}, "port 0"},
		{"IPv6 cidr without IPv6 target", Options{Mode: DNAT, CIDRs: prefixes("fd00:30::/64"), To: targets("172.30.0.1:8080")}, "no --to address of its IP version"},
		{"bad bridge name", Options{Mode: DNAT, Bridges: []string{"a b"}, To: targets("172.17.0.1:8080")}, "not an interface name"},
		{"long bridge name", Options{Mode: DNAT, Bridges: []string{"br-0123456789abcdef"}, To: targets("172.17.0.1:8080")}, "not an interface name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestSetupValidInterface holds ValidInterface to the rule as a regular
// expression states it.
func TestSetupValidInterface(t *testing.T) {
	rule := regexp.MustCompile(`^(?:[A-Za-z0-9_.@:-]{1,15}|[A-Za-z0-9_.@:-]{0,14}\+)$`)
	for _, name := range []string{
		"", "+", "++", "lo", "docker0", "br-+", "br-+x", "a b", "imds0", "eth0.100", "veth@if3", "é0",
		"br-0123456789ab", "br-0123456789abc", "br-0123456789a+", "br-0123456789ab+", "a/b", "a\tb",
	} {
		if got, want := ValidInterface(name), rule.MatchString(name); got != want {
			t.Errorf("ValidInterface(%q) = %v, want %v", name, got, want)
		}
	}
}
