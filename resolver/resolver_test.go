package resolver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/tenants"
)

func tenant(name string, sources ...string) *tenants.Tenant {
	t := &tenants.Tenant{Name: name}
	for _, s := range sources {
		p, err := tenants.ParseSource(s)
		if err != nil {
			panic(err)
		}
		t.Sources = append(t.Sources, p)
	}
	return t
}

func TestLookup(t *testing.T) {
	all := []*tenants.Tenant{
		tenant("wide", "10.0.0.0/8"),
		tenant("subnet", "10.1.0.0/16"),
		tenant("host", "10.1.2.3"),
		tenant("v6", "fd00:30::/64"),
		tenant("v6host", "fd00:30::10"),
		tenant("loop", "127.0.0.2", "::1"),
	}
	snap := New(all, nil)
	tests := []struct {
		name, addr, want string
	}{
		{"most specific host wins", "10.1.2.3", "host"},
		{"subnet beats the /8", "10.1.9.9", "subnet"},
		{"falls back to the /8", "10.200.0.1", "wide"},
		{"ipv6 host", "fd00:30::10", "v6host"},
		{"ipv6 prefix", "fd00:30::11", "v6"},
		{"ipv4-mapped ipv6 is unmapped", "::ffff:10.1.2.3", "host"},
		{"mapped loopback", "::ffff:127.0.0.2", "loop"},
		{"ipv6 loopback", "::1", "loop"},
		{"zone is ignored", "fd00:30::10%eth0", "v6host"},
		{"unknown v4", "192.168.1.1", ""},
		{"unknown v6", "2001:db8::1", ""},
		{"v4 never matches a v6 prefix", "0.0.0.1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, ok := snap.Lookup(netip.MustParseAddr(tc.addr))
			switch {
			case tc.want == "" && ok:
				t.Fatalf("Lookup(%s) = %s, want no tenant", tc.addr, got.Name)
			case tc.want != "" && !ok:
				t.Fatalf("Lookup(%s): no tenant, want %s", tc.addr, tc.want)
			case ok && got.Name != tc.want:
				t.Fatalf("Lookup(%s) = %s, want %s", tc.addr, got.Name, tc.want)
			}
		})
	}
}

func TestLookupReturnsMatchedPrefix(t *testing.T) {
	snap := New([]*tenants.Tenant{tenant("a", "10.1.0.0/16")}, nil)
	_, p, ok := snap.Lookup(netip.MustParseAddr("10.1.7.7"))
	if !ok || p != netip.MustParsePrefix("10.1.0.0/16") {
		t.Fatalf("prefix = %v, %v; want 10.1.0.0/16", p, ok)
	}
}

func TestClient(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}
	snap := New(nil, trusted)
	tests := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"untrusted peer ignores XFF", "127.0.0.9", []string{"127.0.0.2"}, "127.0.0.9"},
		{"trusted peer without XFF is itself", "10.9.0.1", nil, "10.9.0.1"},
		{"trusted peer: right-most entry", "10.9.0.1", []string{"1.1.1.1, 127.0.0.2"}, "127.0.0.2"},
		{"trusted chain is skipped", "10.9.0.1", []string{"127.0.0.3, 10.9.0.7"}, "127.0.0.3"},
		{"several header lines", "10.9.0.1", []string{"6.6.6.6", "127.0.0.4"}, "127.0.0.4"},
		{"spoofed left entries are ignored", "10.9.0.1", []string{"127.0.0.2, 127.0.0.5"}, "127.0.0.5"},
		{"malformed hop names nobody", "10.9.0.1", []string{"127.0.0.2, bogus"}, "invalid IP"},
		{"mapped peer is unmapped", "::ffff:10.9.0.1", []string{"127.0.0.2"}, "127.0.0.2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := snap.Client(netip.MustParseAddr(tc.peer), tc.xff)
			if got.String() != tc.want {
				t.Fatalf("Client(%s, %q) = %s, want %s", tc.peer, tc.xff, got, tc.want)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	all := []*tenants.Tenant{
		tenant("wide", "10.0.0.0/8", "fd00::/16"),
		tenant("subnet", "10.1.0.0/16", "10.1.2.0/24"),
		tenant("host", "10.1.2.3"),
		tenant("v6host", "fd00:30::10"),
		tenant("everything", "0.0.0.0/0"),
	}
	snap := New(all, nil)
	tests := []struct {
		name, addr string
		want       []string // "tenant source", longest first
	}{
		{"every containing source, longest first", "10.1.2.3",
			[]string{"host 10.1.2.3/32", "subnet 10.1.2.0/24", "subnet 10.1.0.0/16", "wide 10.0.0.0/8", "everything 0.0.0.0/0"}},
		{"a tenant's own wider source is listed too", "10.1.2.9",
			[]string{"subnet 10.1.2.0/24", "subnet 10.1.0.0/16", "wide 10.0.0.0/8", "everything 0.0.0.0/0"}},
		{"only the default route", "192.0.2.1", []string{"everything 0.0.0.0/0"}},
		{"ipv4-mapped is unmapped", "::ffff:10.200.0.1", []string{"wide 10.0.0.0/8", "everything 0.0.0.0/0"}},
		{"ipv6 host and its block", "fd00:30::10%eth0", []string{"v6host fd00:30::10/128", "wide fd00::/16"}},
		{"no ipv6 source contains it", "2001:db8::1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := netip.MustParseAddr(tc.addr)
			var got []string
			for _, m := range snap.Candidates(a) {
				got = append(got, m.Tenant.Name+" "+m.Source.String())
			}
			if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Fatalf("Candidates(%s) = %q, want %q", tc.addr, got, tc.want)
			}
			// The first candidate is, by definition, what Lookup serves.
			lt, lp, ok := snap.Lookup(a)
			if c := snap.Candidates(a); ok != (len(c) > 0) || ok && (c[0].Tenant != lt || c[0].Source != lp) {
				t.Fatalf("Lookup(%s) = %v %v %v, but Candidates begins %v", tc.addr, lt, lp, ok, c)
			}
		})
	}
}

// TestTenantAddressNeverTrusted: an address served as a tenant is that
// tenant's client, not a proxy, even inside trusted_proxies (as a Docker
// container's address, added at run time, can be): otherwise its
// X-Forwarded-For would choose any tenant.
func TestTenantAddressNeverTrusted(t *testing.T) {
	snap := New([]*tenants.Tenant{tenant("victim", "10.0.0.1"), tenant("container", "172.30.0.5")},
		[]netip.Prefix{netip.MustParsePrefix("172.30.0.0/24")})
	tests := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"a tenant inside trusted_proxies names a victim", "172.30.0.5", []string{"10.0.0.1"}, "172.30.0.5"},
		{"a real proxy is still believed", "172.30.0.200", []string{"10.0.0.1"}, "10.0.0.1"},
		{"a tenant hop ends the trusted chain", "172.30.0.200", []string{"10.0.0.1, 172.30.0.5"}, "172.30.0.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := snap.Client(netip.MustParseAddr(tc.peer), tc.xff); got.String() != tc.want {
				t.Fatalf("Client(%s, %q) = %s, want %s", tc.peer, tc.xff, got, tc.want)
			}
		})
	}
	if snap.Trusted(netip.MustParseAddr("172.30.0.5")) || snap.Trusted(netip.MustParseAddr("::ffff:172.30.0.5")) {
		t.Error("Trusted(172.30.0.5) = true for a tenant's source")
	}
	if !snap.Trusted(netip.MustParseAddr("172.30.0.200")) {
		t.Error("Trusted(172.30.0.200) = false for a proxy that is no tenant")
	}
}
