package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/cache"
	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// mirrors keeps every mirrored tenant's copy of its live instance fresh:
// one cache entry per tenant, refreshed every instance.mirror.refresh and
// never expiring, each success published to the server as the tenant's
// view. Until a tenant's first success it is served as configured (its
// static values only) and is not ready.
type mirrors struct {
	cache *cache.Cache[*tenants.Mirrored]
	load  awssource.EC2Loader
	log   zerolog.Logger

	mu        sync.Mutex // serialises publishing: refreshes and reloads
	publish   func(name string, t *tenants.Tenant) bool
	tenants   map[string]*tenants.Tenant // configured mirrored tenants by name
	published map[string]*tenants.Tenant // what each was last published as
	entries   atomic.Pointer[map[string]*cache.Entry[*tenants.Mirrored]]
}

// newMirrors returns the mirrors of no tenant yet.
func newMirrors(ctx context.Context, load awssource.EC2Loader, log zerolog.Logger, opts cache.Options) *mirrors {
	m := &mirrors{load: load, log: log,
		tenants: map[string]*tenants.Tenant{}, published: map[string]*tenants.Tenant{}}
	m.cache = cache.New[*tenants.Mirrored](ctx, opts)
	empty := map[string]*cache.Entry[*tenants.Mirrored]{}
	m.entries.Store(&empty)
	return m
}

// Load makes the mirrored tenants of cfg current: new ones start copying
// at once, unchanged ones keep their copy (published again, since the
// server has just been loaded with the configured tenant), removed ones
// stop. Call it after the server's Load; publish (the server's Publish) is
// called with each refreshed copy, from the refreshers' goroutines.
func (m *mirrors) Load(cfg *tenants.Config, publish func(name string, t *tenants.Tenant) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.publish = publish
	entries := map[string]*cache.Entry[*tenants.Mirrored]{}
	keep := map[string]bool{}
	m.tenants = map[string]*tenants.Tenant{}
	m.published = map[string]*tenants.Tenant{}
	for _, t := range cfg.Tenants {
		if t.Mirror == nil {
			continue
		}
		// The key holds the tenant's name: each tenant has its own copy and
		// its own readiness, even when two mirror the same instance.
		key := fmt.Sprintf("%s tenant=%q", t.Mirror.Key(), t.Name)
		m.tenants[t.Name] = t
		src := &awssource.Mirror{Spec: t.Mirror, Load: m.load}
		name := t.Name
		e := m.cache.EntryWith(key, cache.Policy{Every: t.Mirror.Refresh}, func(ctx context.Context) (*tenants.Mirrored, time.Time, error) {
			return m.refresh(ctx, name, src)
		})
		entries[t.Name] = e
		keep[key] = true
		if snap, ok := e.Peek(); ok {
			m.publishLocked(t.Name, snap)
		}
	}
	m.entries.Store(&entries)
	m.cache.Retain(keep)
}

// View is what to serve for a tenant as a configuration is loaded: its last
// copy, if it mirrors an instance that was copied (handlers.Options.View).
// It takes no lock: handlers call it while holding theirs, and a refresh
// publishing into handlers holds m.mu.
func (m *mirrors) View(t *tenants.Tenant) *tenants.Tenant {
	if t.Mirror == nil {
		return nil
	}
	if e := (*m.entries.Load())[t.Name]; e != nil {
		if snap, ok := e.Peek(); ok {
			return t.WithMirror(snap)
		}
	}
	return nil
}

// refresh copies the instance once, publishes the copy and logs the
// outcome with what to do about a failure.
func (m *mirrors) refresh(ctx context.Context, name string, src *awssource.Mirror) (*tenants.Mirrored, time.Time, error) {
	start := time.Now()
	snap, err := src.Retrieve(ctx)
	if err != nil {
		m.logFailure(name, src.Spec, err)
		return nil, time.Time{}, err
	}
	m.mu.Lock()
	m.publishLocked(name, snap)
	m.mu.Unlock()
	for _, w := range snap.Warnings {
		m.log.Warn().Str("tenant", name).Str("instance", snap.Instance.ID).Msg(w)
	}
	m.log.Info().Str("tenant", name).Str("instance", snap.Instance.ID).Str("state", snap.State).
		Dur("took", time.Since(start)).Time("next_refresh", time.Now().Add(src.Spec.Refresh)).Msg("instance mirrored")
	return snap, time.Time{}, nil
}

// publishLocked serves the copy as the tenant, unless nothing changed.
func (m *mirrors) publishLocked(name string, snap *tenants.Mirrored) {
	t := m.tenants[name]
	if t == nil {
		return // removed by a reload meanwhile
	}
	view := t.WithMirror(snap)
	if reflect.DeepEqual(m.published[name], view) {
		return
	}
	if m.publish(name, view) {
		m.published[name] = view
	}
}

func (m *mirrors) logFailure(name string, spec *tenants.MirrorSpec, err error) {
	e := m.log.Warn().Str("tenant", name).Str("mirror", spec.Target())
	if _, ok := m.copyOf(name); ok {
		e = e.Str("serving", "the last good copy")
	} else {
		e = e.Str("serving", "static values only; unknown values answer 404; the tenant is not ready")
	}
	var me *tenants.UpstreamError
	if errors.As(err, &me) {
		e = e.Str("code", me.Code)
		if me.Err != nil {
			e = e.Str("cause", tenants.Redact(me.Err.Error()))
		}
		e.Msg(me.Message)
		return
	}
	e.Str("error", tenants.Redact(err.Error())).Msg("mirror refresh failed")
}

func (m *mirrors) copyOf(name string) (*tenants.Mirrored, bool) {
	if e := (*m.entries.Load())[name]; e != nil {
		return e.Peek()
	}
	return nil, false
}

// State is a mirrored tenant's mirror for /readyz and /status: mirrored
// (at least once), the instance, the last successful refresh and the
// latest error (what to do about it). nil when the tenant mirrors nothing.
func (m *mirrors) State(t *tenants.Tenant) *handlers.MirrorState {
	e := (*m.entries.Load())[t.Name]
	if e == nil {
		return nil
	}
	st := e.Status()
	ms := &handlers.MirrorState{Mirrored: st.Valid, Refreshed: st.Refreshed, Instance: t.Mirror.Target()}
	if c, ok := e.Peek(); ok {
		ms.Instance = c.Instance.ID
	}
	if st.LastError != nil {
		var me *tenants.UpstreamError
		if errors.As(st.LastError, &me) {
			ms.LastError = me.Code + ": " + me.Message
		} else {
			ms.LastError = tenants.Redact(st.LastError.Error()) // not from awssource: redact here
		}
	}
	return ms
}
