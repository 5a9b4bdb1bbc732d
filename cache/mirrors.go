package cache

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// Mirrors keeps every mirrored tenant's copy of its live instance fresh:
// one entry per tenant, refreshed every instance.mirror.refresh and never
// expiring, each copy that changes what the tenant looks like published as
// its view. Until its first copy a tenant is served as configured (its
// static values only) and is not ready.
type Mirrors struct {
	store *Store[*tenants.Mirrored]
	log   zerolog.Logger

	// mu orders publishing — refreshers' and Load's — so that what stays
	// published is the latest copy under the latest configuration.
	// published, which only publishing touches, is what each tenant was
	// last published as.
	mu        sync.Mutex
	publish   func(name string, t *tenants.Tenant) bool
	published map[string]*tenants.Tenant
}

// NewMirrors returns the mirrors of no tenant yet; source makes the
// tenants.InstanceSource of a mirror spec. Every refresh is logged to log.
func NewMirrors(ctx context.Context, opts Options, log zerolog.Logger, source func(*tenants.MirrorSpec) tenants.InstanceSource) *Mirrors {
	m := &Mirrors{log: log, published: map[string]*tenants.Tenant{}}
	onFetch := opts.OnFetch
	opts.OnFetch = func(ev Event) {
		m.fetched(ev)
		if onFetch != nil {
			onFetch(ev)
		}
	}
	m.store = NewStore(ctx, opts, func(t *tenants.Tenant) (Plan[*tenants.Mirrored], bool) {
		if t.Mirror == nil {
			return Plan[*tenants.Mirrored]{}, false
		}
		src := source(t.Mirror)
		return Plan[*tenants.Mirrored]{Key: mirrorKey(t), Policy: Policy{Every: t.Mirror.Refresh},
			Fetch: func(ctx context.Context) (*tenants.Mirrored, time.Time, error) {
				c, err := src.Retrieve(ctx)
				if c != nil {
					// Kept until the next copy, by every mirrored tenant:
					// values alike across them are held once.
					c.Intern()
				}
				return c, time.Time{}, err
			}}, true
	})
	return m
}

// mirrorKey holds the tenant's name: each tenant has its own copy and its
// own readiness, even when two mirror the same instance.
func mirrorKey(t *tenants.Tenant) string {
	return fmt.Sprintf("%s tenant=%q", t.Mirror.Key(), t.Name)
}

// Load makes the mirrored tenants of ts current: new ones start copying at
// once, unchanged ones keep their copy, removed ones stop. Call it after
// the server has loaded ts; every copy is published again (the server has
// just been given the configured tenants), then each changed one, with
// publish (the server's Publish), from the refreshers' goroutines.
func (m *Mirrors) Load(ts []*tenants.Tenant, publish func(name string, t *tenants.Tenant) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.publish = publish
	m.store.Load(ts)
	m.published = map[string]*tenants.Tenant{}
	for name, b := range m.store.cur.Load().byName {
		m.publishLocked(name, b)
	}
}

// View is what to serve for a tenant as a configuration is loaded: its last
// copy under t's configuration, if t mirrors the instance that was copied
// (handlers.Options.View); nil otherwise. It takes no lock: the server calls
// it while holding its own, which publishing takes after m.mu.
func (m *Mirrors) View(t *tenants.Tenant) *tenants.Tenant {
	if t.Mirror == nil {
		return nil
	}
	e := m.store.Entry(t.Name)
	if e == nil || e.key != mirrorKey(t) {
		return nil // not mirrored yet, or a copy of what t no longer mirrors
	}
	if c, ok := e.Peek(); ok {
		return t.WithMirror(c)
	}
	return nil
}

// Entry is the named tenant's mirror entry, for readiness and status; nil
// when the tenant mirrors nothing.
func (m *Mirrors) Entry(tenant string) *Entry[*tenants.Mirrored] { return m.store.Entry(tenant) }

// fetched logs a refresh and publishes its copy. It runs on the entry's
// refresher once the copy is stored, so that a Load racing it publishes
// either the same copy or one this publishes over.
func (m *Mirrors) fetched(ev Event) {
	for _, name := range ev.Tenants { // one: the key holds the name
		m.mu.Lock()
		// The tenant as loaded now; an entry replaced meanwhile is no
		// longer the tenant's and reports nothing.
		if b := m.store.cur.Load().byName[name]; b.entry != nil && b.entry.key == ev.Key {
			m.logFetch(b, ev)
			if ev.Err == nil {
				m.publishLocked(name, b)
			}
		}
		m.mu.Unlock()
	}
}

// publishLocked serves the tenant's copy as the tenant, unless that is what
// it was last published as. m.mu must be held.
func (m *Mirrors) publishLocked(name string, b binding[*tenants.Mirrored]) {
	c, ok := b.entry.Peek()
	if !ok || c == nil || m.publish == nil {
		return
	}
	view := b.tenant.WithMirror(c)
	if reflect.DeepEqual(m.published[name], view) {
		return
	}
	if m.publish(name, view) {
		m.published[name] = view
	}
}

// logFetch reports a refresh, and for a failure what is served meanwhile
// and what to do about it.
func (m *Mirrors) logFetch(b binding[*tenants.Mirrored], ev Event) {
	name := b.tenant.Name
	c, mirrored := b.entry.Peek()
	if ev.Err == nil && c != nil {
		for _, w := range c.Warnings {
			m.log.Warn().Str("tenant", name).Str("instance", c.Instance.ID).Msg(w)
		}
		m.log.Info().Str("tenant", name).Str("instance", c.Instance.ID).Str("state", c.State).
			Dur("took_ms", ev.Took).Time("next_refresh", ev.Next).Msg("instance mirrored")
		return
	}
	if ev.Err == nil {
		return
	}
	e := m.log.Warn().Str("tenant", name).Str("mirror", b.tenant.Mirror.Target()).Int("failures", ev.Failure).Time("retry_at", ev.Next)
	if mirrored {
		e = e.Str("serving", "the last good copy")
	} else {
		e = e.Str("serving", "static values only; unknown values answer 404; the tenant is not ready")
	}
	logFailure(e, ev.Err, "mirror refresh failed")
}
