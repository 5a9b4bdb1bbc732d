package cache

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// Plan is what a tenant needs from a Store: the key of its entry (tenants
// with equal keys share one), how that entry refreshes, and how it
// fetches. Policy and Fetch are used only when the entry is made: an
// existing entry keeps its own.
type Plan[V any] struct {
	Key    string
	Policy Policy
	Fetch  Fetcher[V]
}

// Store holds the entries of a set of tenants, found by tenant name: a
// tenant's pointer changes at every reload and every container event, its
// name does not. Entries live exactly as long as a tenant of the latest
// Load uses them.
type Store[V any] struct {
	cache *Cache[V]
	plan  func(*tenants.Tenant) (Plan[V], bool)
	// cur is swapped whole by Load, under cache.mu: requests read it with
	// one atomic load and no lock.
	cur atomic.Pointer[storeView[V]]
}

// storeView is the tenants of one Load and their entries.
type storeView[V any] struct {
	byName map[string]binding[V]
	byKey  map[string][]string // the names of the tenants that use each entry
}

type binding[V any] struct {
	tenant *tenants.Tenant
	entry  *Entry[V]
}

// NewStore returns a store of no tenant yet whose refreshers stop when ctx
// ends. plan says what a tenant needs; false: nothing (a tenant without a
// role has no credentials).
func NewStore[V any](ctx context.Context, opts Options, plan func(*tenants.Tenant) (Plan[V], bool)) *Store[V] {
	s := &Store[V]{plan: plan}
	if onFetch := opts.OnFetch; onFetch != nil {
		opts.OnFetch = func(ev Event) {
			ev.Tenants = s.cur.Load().byKey[ev.Key]
			onFetch(ev)
		}
	}
	s.cache = New[V](ctx, opts)
	s.cur.Store(&storeView[V]{})
	return s
}

// Load makes ts the store's tenants. A key no entry has yet gets one, which
// starts fetching at once (the prefetch, which does not wait); an existing
// key keeps its entry and its value; an entry that no tenant of ts uses is
// stopped now, a fetch in flight included.
func (s *Store[V]) Load(ts []*tenants.Tenant) {
	c := s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	type planned struct {
		t *tenants.Tenant
		p Plan[V]
	}
	var plans []planned
	for _, t := range ts {
		if p, ok := s.plan(t); ok {
			plans = append(plans, planned{t, p})
		}
	}
	// Sized to the tenants with a plan, not to all: most of a large
	// configuration mirrors nothing, and many have no role.
	next := &storeView[V]{byName: make(map[string]binding[V], len(plans)), byKey: map[string][]string{}}
	var starts []func()
	for _, pt := range plans {
		t, p := pt.t, pt.p
		e, start := c.entryLocked(p.Key, p.Policy, p.Fetch)
		if start != nil {
			starts = append(starts, start)
		}
		next.byName[t.Name] = binding[V]{tenant: t, entry: e}
		next.byKey[p.Key] = append(next.byKey[p.Key], t.Name)
	}
	s.cur.Store(next)
	c.retainLocked(func(key string) bool { return next.byKey[key] != nil })
	// Started once the view names their tenants, so that the first fetch's
	// event says whom it concerns.
	for _, start := range starts {
		start()
	}
}

// Entry returns the entry of the named tenant of the latest Load, nil if it
// has none. It takes no lock: it is on every request's path.
func (s *Store[V]) Entry(tenant string) *Entry[V] {
	return s.cur.Load().byName[tenant].entry
}

// Len is the number of entries, which tenants may share.
func (s *Store[V]) Len() int { return s.cache.Len() }

// Refresh has the entries of the tenants match accepts fetch now
// (Entry.Refresh), each once however many of its tenants match, and
// returns the names of every tenant of those entries.
func (s *Store[V]) Refresh(match func(*tenants.Tenant) bool) []string {
	view := s.cur.Load()
	var names []string
	done := map[*Entry[V]]bool{}
	for _, b := range view.byName {
		if done[b.entry] || !match(b.tenant) {
			continue
		}
		done[b.entry] = true
		b.entry.Refresh()
		names = append(names, view.byKey[b.entry.key]...)
	}
	slices.Sort(names)
	return names
}
