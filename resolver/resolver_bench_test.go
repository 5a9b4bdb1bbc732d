package resolver

// Lookup must cost what it costs with one tenant whatever the number of
// tenants (DESIGN.md, Performance principles): compare tenants=1 with
// tenants=10000 in
//
//	go test -run='^$' -bench=Lookup -benchmem ./resolver/

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// benchAddr4 is the n-th address of 10.0.0.0/8, skipping 10.0.0.0.
func benchAddr4(n int) netip.Addr {
	n++
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

// benchHosts is n tenants of one /32 each in 10.0.0.0/8, and their
// addresses.
func benchHosts(n int) ([]*tenants.Tenant, []netip.Addr) {
	ts := make([]*tenants.Tenant, n)
	addrs := make([]netip.Addr, n)
	for i := range n {
		addrs[i] = benchAddr4(i)
		ts[i] = &tenants.Tenant{
			Name:    fmt.Sprintf("t%d", i),
			Sources: []netip.Prefix{netip.PrefixFrom(addrs[i], 32)},
		}
	}
	return ts, addrs
}

// benchMix is n tenants, a third each with a /16 (from 20.0.0.0/16 on), a
// /24 (from 100.0.0.0/24 on) and a /32 (in 10.0.0.0/8), none overlapping:
// a hit on a /16 first misses at /32 and /24. The addresses returned are
// one inside each tenant's source.
func benchMix(n int) ([]*tenants.Tenant, []netip.Addr) {
	ts := make([]*tenants.Tenant, n)
	addrs := make([]netip.Addr, n)
	for i := range n {
		k := i / 3
		var p netip.Prefix
		switch i % 3 {
		case 0:
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(20 + k>>8), byte(k), 0, 0}), 16)
		case 1:
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(100 + k>>16), byte(k >> 8), byte(k), 0}), 24)
		case 2:
			p = netip.PrefixFrom(benchAddr4(k), 32)
		}
		ts[i] = &tenants.Tenant{Name: fmt.Sprintf("t%d", i), Sources: []netip.Prefix{p}}
		addrs[i] = p.Addr()
		if p.Bits() < 32 {
			addrs[i] = addrs[i].Next() // a host inside, not the network address
		}
	}
	return ts, addrs
}

var benchSizes = []int{1, 100, 10_000}

// benchLookup builds a snapshot of ts and looks up addrs in turn, each of
// which must resolve to the tenant at the same index of want. Cycling
// through many addresses walks a large table the way many clients would,
// caches included.
func benchLookup(b *testing.B, ts []*tenants.Tenant, addrs []netip.Addr, want []*tenants.Tenant) {
	snap := New(ts, nil)
	for i, a := range addrs {
		if t, _, ok := snap.Lookup(a); !ok || t != want[i] {
			b.Fatalf("Lookup(%s) = %v, %v; want %s", a, t, ok, want[i].Name)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, ok := snap.Lookup(addrs[i]); !ok {
			b.Fatal("miss")
		}
		if i++; i == len(addrs) {
			i = 0
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			ts, addrs := benchHosts(n)
			benchLookup(b, ts, addrs, ts)
		})
	}
}

// BenchmarkLookupMix has /16, /24 and /32 sources: up to three probes.
func BenchmarkLookupMix(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			ts, addrs := benchMix(n)
			benchLookup(b, ts, addrs, ts)
		})
	}
}

// BenchmarkLookupMiss is an address no tenant lists: every prefix length
// in use is probed.
func BenchmarkLookupMiss(b *testing.B) {
	miss := netip.MustParseAddr("192.0.2.1")
	for _, shape := range []struct {
		name  string
		build func(int) ([]*tenants.Tenant, []netip.Addr)
	}{{"hosts", benchHosts}, {"mix", benchMix}} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/tenants=%d", shape.name, n), func(b *testing.B) {
				ts, _ := shape.build(n)
				snap := New(ts, nil)
				b.ReportAllocs()
				for b.Loop() {
					if _, _, ok := snap.Lookup(miss); ok {
						b.Fatal("hit")
					}
				}
			})
		}
	}
}

// BenchmarkLookupSameAddr asks for one address over and over: the table
// stays in cache, which leaves only the algorithm's cost (BenchmarkLookup's
// growth from 1 to 10,000 tenants is memory, not probes).
func BenchmarkLookupSameAddr(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			ts, addrs := benchHosts(n)
			benchLookup(b, ts, addrs[n-1:], ts[n-1:])
		})
	}
}
