package tenants_test

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// TestParseIPv6Blocks: an interface with IPv6 addresses has the subnet and
// VPC IPv6 blocks that hold them, configured or derived as EC2 assigns
// them (a /64 subnet in a /56 VPC).
func TestParseIPv6Blocks(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	tests := []struct {
		name        string
		lines       []string
		subnet, vpc []netip.Prefix
	}{
		{"no IPv6: none", nil, nil, nil},
		{"derived from the first address", []string{"instance: {ipv6: [\"2600:1f18:4a3:6902:85d3:1e34:a1b2:c3d4\", \"2600:1f18:4a3:6902::99\"]}"},
			pfx("2600:1f18:4a3:6902::/64"), pfx("2600:1f18:4a3:6900::/56")},
		{"subnet given, VPC derived", []string{"instance: {ipv6: [\"2600:1f18:4a3:6902::10\"], subnet_ipv6_cidr_blocks: [\"2600:1f18:4a3:6902::/64\"]}"},
			pfx("2600:1f18:4a3:6902::/64"), pfx("2600:1f18:4a3:6900::/56")},
		{"both given", []string{"instance:", "  ipv6: [\"2600:1f18:4a3:6902::10\"]",
			"  subnet_ipv6_cidr_blocks: [\"2600:1f18:4a3:6902::/64\", \"2600:1f18:4a3:6903::/64\"]",
			"  vpc_ipv6_cidr_blocks: [\"2600:1f18:4a3:6900::/56\", \"2a05:d018:1::/56\"]"},
			pfx("2600:1f18:4a3:6902::/64", "2600:1f18:4a3:6903::/64"), pfx("2600:1f18:4a3:6900::/56", "2a05:d018:1::/56")},
		{"subnet without addresses", []string{"instance: {subnet_ipv6_cidr_blocks: [\"2600:1f18:4a3:6902::/64\"]}"},
			pfx("2600:1f18:4a3:6902::/64"), pfx("2600:1f18:4a3:6900::/56")},
		{"a large subnet is its own VPC block", []string{"instance: {subnet_ipv6_cidr_blocks: [\"2600:1f18:4a3::/48\"]}"},
			pfx("2600:1f18:4a3::/48"), pfx("2600:1f18:4a3::/48")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := parseOne(t, tenantConfig("", tt.lines...)).Instance.Primary()
			if !reflect.DeepEqual(p.SubnetIPv6CIDRs, tt.subnet) || !reflect.DeepEqual(p.VPCIPv6CIDRs, tt.vpc) {
				t.Errorf("subnet %v, VPC %v; want %v, %v", p.SubnetIPv6CIDRs, p.VPCIPv6CIDRs, tt.subnet, tt.vpc)
			}
		})
	}
}

func TestParseIPv6BlockErrors(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []string
	}{
		{"not IPv6", []string{"instance: {subnet_ipv6_cidr_blocks: [10.0.0.0/24]}"},
			[]string{`c.yaml:4: tenants[0].instance.subnet_ipv6_cidr_blocks[0]: "10.0.0.0/24" is not an IPv6 CIDR block such as 2600:1f18:1:100::/64`}},
		{"host bits", []string{"instance: {vpc_ipv6_cidr_blocks: [\"2600:1f18:4a3:6902::/56\"]}"},
			[]string{`c.yaml:4: tenants[0].instance.vpc_ipv6_cidr_blocks[0]: "2600:1f18:4a3:6902::/56" has host bits set; did you mean 2600:1f18:4a3:6900::/56?`}},
		{"too long", []string{"instance: {subnet_ipv6_cidr_blocks: [\"2600:1f18:4a3:6902::/80\"]}"},
			[]string{`c.yaml:4: tenants[0].instance.subnet_ipv6_cidr_blocks[0]: "2600:1f18:4a3:6902::/80": EC2 allows /44 to /64 here`}},
		{"address outside the subnet", []string{"instance: {ipv6: [\"2600:1f18:4a3:6999::1\"], subnet_ipv6_cidr_blocks: [\"2600:1f18:4a3:6902::/64\"]}"},
			[]string{`c.yaml:4: tenants[0].instance.ipv6[0]: 2600:1f18:4a3:6999::1 is outside the subnet's IPv6 blocks 2600:1f18:4a3:6902::/64`}},
		{"subnet outside the VPC", []string{"instance: {subnet_ipv6_cidr_blocks: [\"2600:1f18:4a3:6902::/64\"], vpc_ipv6_cidr_blocks: [\"2a05:d018:1::/56\"]}"},
			[]string{`c.yaml:4: tenants[0].instance.subnet_ipv6_cidr_blocks[0]: 2600:1f18:4a3:6902::/64 is outside the VPC's IPv6 blocks 2a05:d018:1::/56`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErrors(t, "c.yaml", tenantConfig("", tt.lines...))
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestWithMirrorIPv6: a copy keeps its own IPv6 blocks; the tenant's own
// ipv6 addresses outside them bring blocks that hold them.
func TestWithMirrorIPv6(t *testing.T) {
	copied := &tenants.Mirrored{Instance: tenants.Instance{ID: "i-0123456789abcdef0", Interfaces: []tenants.Interface{{
		MAC: "0a:00:00:00:00:01", IPv6s: []netip.Addr{netip.MustParseAddr("2600:1f18:1:10::10")},
		SubnetIPv6CIDRs: []netip.Prefix{netip.MustParsePrefix("2600:1f18:1:10::/64")},
		VPCIPv6CIDRs:    []netip.Prefix{netip.MustParsePrefix("2600:1f18:1::/56")},
	}}}}
	const mirror = "instance: {mirror: {instance_id: i-0123456789abcdef0, region: eu-west-1}"
	tests := []struct {
		name, static      string
		subnet, vpc, addr string
	}{
		{"the copy's", "", "2600:1f18:1:10::/64", "2600:1f18:1::/56", "2600:1f18:1:10::10"},
		{"an address in the copy's subnet", `, ipv6: ["2600:1f18:1:10::99"]`, "2600:1f18:1:10::/64", "2600:1f18:1::/56", "2600:1f18:1:10::99"},
		{"an address elsewhere", `, ipv6: ["2a05:d018:7:4201::5"]`, "2a05:d018:7:4201::/64", "2a05:d018:7:4200::/56", "2a05:d018:7:4201::5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := parseOne(t, tenantConfig("", mirror+tt.static+"}"))
			p := tn.WithMirror(copied).Instance.Primary()
			if len(p.SubnetIPv6CIDRs) != 1 || p.SubnetIPv6CIDRs[0].String() != tt.subnet ||
				len(p.VPCIPv6CIDRs) != 1 || p.VPCIPv6CIDRs[0].String() != tt.vpc || p.IPv6s[0].String() != tt.addr {
				t.Errorf("ipv6s %v, subnet %v, VPC %v; want %s in %s in %s", p.IPv6s, p.SubnetIPv6CIDRs, p.VPCIPv6CIDRs, tt.addr, tt.subnet, tt.vpc)
			}
		})
	}
}
