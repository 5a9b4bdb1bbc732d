package handlers_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// TestIPv6Blocks: an interface with IPv6 addresses serves its subnet's and
// VPC's IPv6 blocks, whether configured, derived from the addresses, or
// copied from a live instance.
func TestIPv6Blocks(t *testing.T) {
	const config = `tenants:
  - name: derived
    sources: ["127.0.0.2"]
    instance: {mac_address: "0e:00:00:00:00:02", ipv6: ["2600:1f18:4a3:6902:85d3:1e34:a1b2:c3d4"]}
  - name: configured
    sources: ["127.0.0.3"]
    instance:
      mac_address: "0e:00:00:00:00:03"
      ipv6: ["2600:1f18:4a3:6902::10"]
      subnet_ipv6_cidr_blocks: ["2600:1f18:4a3:6902::/64"]
      vpc_ipv6_cidr_blocks: ["2600:1f18:4a3:6900::/56", "2a05:d018:1::/56"]
  - name: web
    sources: ["127.0.0.4"]
    credentials: {profile: dev}
    instance:
      mirror: {instance_id: i-0123456789abcdef0, region: eu-west-1}
`
	srv, _ := newServer(t, config, handlers.Options{})
	copied := parseConfig(t, config).Tenants[2].WithMirror(&tenants.Mirrored{
		IMDS: tenants.IMDSOptions{Enabled: true, HopLimit: 1},
		Instance: tenants.Instance{ID: "i-0123456789abcdef0", Region: "eu-west-1", Interfaces: []tenants.Interface{{
			MAC: "0a:00:00:00:00:01", IPv6s: []netip.Addr{netip.MustParseAddr("2a05:d018:7:4201::5")},
			SubnetIPv6CIDRs: []netip.Prefix{netip.MustParsePrefix("2a05:d018:7:4201::/64")},
			VPCIPv6CIDRs:    []netip.Prefix{netip.MustParsePrefix("2a05:d018:7:4200::/56")},
		}}},
	})
	if !srv.Publish("web", copied) {
		t.Fatal("Publish failed")
	}
	tests := []struct{ src, mac, subnet, vpc string }{
		{"127.0.0.2:1", "0e:00:00:00:00:02", "2600:1f18:4a3:6902::/64", "2600:1f18:4a3:6900::/56"},
		{"127.0.0.3:1", "0e:00:00:00:00:03", "2600:1f18:4a3:6902::/64", "2600:1f18:4a3:6900::/56\n2a05:d018:1::/56"},
		{"127.0.0.4:1", "0a:00:00:00:00:01", "2a05:d018:7:4201::/64", "2a05:d018:7:4200::/56"},
	}
	for _, tc := range tests {
		base := "/latest/meta-data/network/interfaces/macs/" + tc.mac + "/"
		for path, want := range map[string]string{
			base + "subnet-ipv6-cidr-blocks": tc.subnet,
			base + "vpc-ipv6-cidr-blocks":    tc.vpc,
		} {
			if w := serve(srv, http.MethodGet, path, tc.src); w.Code != http.StatusOK || w.Body.String() != want {
				t.Errorf("%s from %s: %d %q, want %q", path, tc.src, w.Code, w.Body, want)
			}
		}
		listing := serve(srv, http.MethodGet, base, tc.src).Body.String()
		for _, name := range []string{"ipv6s", "subnet-ipv6-cidr-blocks", "vpc-ipv6-cidr-blocks"} {
			if !contains(listing, name) {
				t.Errorf("%s from %s does not list %s:\n%s", base, tc.src, name, listing)
			}
		}
	}
}
