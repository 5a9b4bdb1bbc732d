// Package resolver maps the source address of a connection to the tenant it
// is served as. A Snapshot is immutable: a reload builds a new one and swaps
// it in whole, so a lookup never sees half a configuration.
package resolver

import (
	"net/netip"
	"strings"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// Snapshot answers which tenant an address belongs to, by longest-prefix
// match. A lookup probes one hash map per distinct prefix length in use (at
// most 33 for IPv4, 129 for IPv6), so its cost does not grow with the number
// of tenants: 10,000 /32 sources cost one probe, as one does.
type Snapshot struct {
	v4, v6  table
	trusted []netip.Prefix
}

type table struct {
	lengths []int // prefix lengths present, longest first
	byLen   map[int]map[netip.Addr]*tenants.Tenant
}

// New builds a snapshot of the tenants' sources. trusted are the peers whose
// X-Forwarded-For header is believed; with none, headers never choose a
// tenant. An address served as a tenant is never trusted, whatever trusted
// says: tenants.Build refuses a trusted proxy that overlaps a static
// source, but containers' addresses join tenants at run time, and a client
// believed about X-Forwarded-For could be served as any tenant. Sources are
// assumed validated (tenants.Build rejects duplicates).
func New(ts []*tenants.Tenant, trusted []netip.Prefix) *Snapshot {
	s := &Snapshot{trusted: trusted}
	for _, t := range ts {
		for _, p := range t.Sources {
			tb := &s.v6
			if p.Addr().Is4() {
				tb = &s.v4
			}
			tb.add(p.Masked(), t)
		}
	}
	return s
}

func (tb *table) add(p netip.Prefix, t *tenants.Tenant) {
	if tb.byLen == nil {
		tb.byLen = map[int]map[netip.Addr]*tenants.Tenant{}
	}
	m := tb.byLen[p.Bits()]
	if m == nil {
		m = map[netip.Addr]*tenants.Tenant{}
		tb.byLen[p.Bits()] = m
		i := 0
		for i < len(tb.lengths) && tb.lengths[i] > p.Bits() {
			i++
		}
		tb.lengths = append(tb.lengths[:i], append([]int{p.Bits()}, tb.lengths[i:]...)...)
	}
	m[p.Addr()] = t
}

// Lookup returns the tenant whose most specific source contains a, and that
// source. IPv4-mapped IPv6 addresses are looked up as the IPv4 they map.
func (s *Snapshot) Lookup(a netip.Addr) (*tenants.Tenant, netip.Prefix, bool) {
	a = a.Unmap().WithZone("")
	tb := &s.v6
	if a.Is4() {
		tb = &s.v4
	}
	for _, bits := range tb.lengths {
		p, _ := a.Prefix(bits)
		if t, ok := tb.byLen[bits][p.Addr()]; ok {
			return t, p, true
		}
	}
	return nil, netip.Prefix{}, false
}

// Client returns the address a request is attributed to. It is the peer's
// own address unless the peer is a trusted proxy, in which case it is the
// right-most X-Forwarded-For entry that is not itself a trusted proxy: the
// first hop that no trusted party vouches for. Entries to its left were
// written by the client and could say anything.
func (s *Snapshot) Client(peer netip.Addr, xff []string) netip.Addr {
	peer = peer.Unmap().WithZone("")
	if !s.isTrusted(peer) || len(xff) == 0 {
		return peer
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				// A chain that cannot be read names nobody: attributing the
				// request to the proxy itself would serve its clients as
				// the proxy's tenant.
				return netip.Addr{}
			}
			client = a.Unmap().WithZone("")
			if !s.isTrusted(client) {
				return client
			}
		}
	}
	return client
}

// Trusted reports whether peer is a configured trusted proxy that is no
// tenant's source.
func (s *Snapshot) Trusted(peer netip.Addr) bool { return s.isTrusted(peer.Unmap().WithZone("")) }

func (s *Snapshot) isTrusted(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a) {
			// Checked only inside a trusted block, so a proxy-less
			// configuration pays nothing for it.
			_, _, tenant := s.Lookup(a)
			return !tenant
		}
	}
	return false
}

// Match is one tenant source that contains an address.
type Match struct {
	Tenant *tenants.Tenant
	Source netip.Prefix
}

// Candidates lists every tenant source that contains a, most specific
// first: the first is the one Lookup chooses, the others are shadowed by
// it. It serves explanations (imds-proxy explain), not requests, so it may
// allocate.
func (s *Snapshot) Candidates(a netip.Addr) []Match {
	a = a.Unmap().WithZone("")
	tb := &s.v6
	if a.Is4() {
		tb = &s.v4
	}
	var out []Match
	for _, bits := range tb.lengths {
		p, _ := a.Prefix(bits)
		if t, ok := tb.byLen[bits][p.Addr()]; ok {
			out = append(out, Match{Tenant: t, Source: p})
		}
	}
	return out
}
