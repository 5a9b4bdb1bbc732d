// Package cache keeps values that come from slow, fallible upstreams (role
// credentials from STS, instances from EC2) fresh ahead of need, so that no
// request ever waits on AWS once a value exists:
//
//   - one entry per key, shared by every tenant whose spec has that key;
//   - one refresher goroutine per entry: single flight by construction;
//   - refresh ahead of expiry while the current value keeps being served;
//   - on failure, the last good value stays (until it expires) and the
//     refresh is retried with jittered exponential backoff;
//   - a value past its expiry is never returned;
//   - or, for values that do not expire (a mirrored instance), a refresh
//     at a fixed interval, the last good value being served forever.
//
// A Store maps tenants, by name, to entries: a Load prefetches what new
// tenants need and stops at once what no tenant uses any more.
// NewCredentials and NewMirrors are the two stores imds-proxy runs.
//
// The registry of entries is a go-cache, whose eviction stops an entry's
// refresher; the values themselves are typed (Entry[V]), and a request
// reads one with a single atomic load.
package cache

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	gocache "github.com/patrickmn/go-cache"
)

// Clock is the time source; tests drive a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Fetcher obtains a fresh value and the time it stops being valid.
type Fetcher[V any] func(ctx context.Context) (V, time.Time, error)

// Event reports the outcome of one fetch, for logs and metrics.
type Event struct {
	Key string
	// Tenants names the tenants that use the entry, as of the latest
	// Store.Load; nil for an entry made by Cache.Entry.
	Tenants []string
	Err     error     // nil on success
	Expiry  time.Time // of the new value (success) or the value still served
	Next    time.Time // when the next fetch is planned
	Took    time.Duration
	Failure int // consecutive failures so far (0 on success)
}

// Options tune a Cache; every field has a working default.
type Options struct {
	// Clock is the time source. If nil, the system clock.
	Clock Clock
	// ColdWait is how long a Get with no valid value waits for a fetch in
	// flight. If 0, 500ms: SDKs give up on IMDS after about a second.
	ColdWait time.Duration
	// MinBackoff and MaxBackoff bound the retry delay after failures. If
	// 0, 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// FetchTimeout bounds one fetch. If 0, 30s.
	FetchTimeout time.Duration
	// OnFetch, if not nil, is called after every fetch, from the entry's
	// refresher goroutine.
	OnFetch func(Event)
	// Jitter returns a factor in [0.5, 1) applied to backoff delays. If
	// nil, math/rand.
	Jitter func() float64
}

// ErrNotReady is Get's error when no value exists yet and none arrived
// within ColdWait.
var ErrNotReady = errors.New("not fetched yet")

// Cache is a set of refresh-ahead entries holding values of type V.
type Cache[V any] struct {
	ctx  context.Context
	opts Options
	mu   sync.Mutex // serialises entry creation and removal
	reg  *gocache.Cache
}

// New returns a cache whose refreshers stop when ctx ends.
func New[V any](ctx context.Context, opts Options) *Cache[V] {
	reg := gocache.New(gocache.NoExpiration, 0)
	// Whatever removes an entry from the registry stops its refresher: an
	// entry nobody can reach must not keep calling AWS.
	reg.OnEvicted(func(_ string, v any) { v.(*Entry[V]).cancel() })
	return &Cache[V]{ctx: ctx, opts: opts.withDefaults(), reg: reg}
}

// withDefaults fills in every field left zero.
func (opts Options) withDefaults() Options {
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.ColdWait <= 0 {
		opts.ColdWait = 500 * time.Millisecond
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = 30 * time.Second
	}
	if opts.Jitter == nil {
		opts.Jitter = func() float64 { return 0.5 + rand.Float64()/2 }
	}
	return opts
}

// Policy says when an entry's value is refreshed and whether it expires.
type Policy struct {
	// RefreshBefore refreshes a value this long before the expiry its
	// fetch gave (credentials).
	RefreshBefore time.Duration
	// Every, if positive, refreshes at this fixed interval instead, and
	// values never expire: the fetcher's expiry is ignored and the last
	// good value is served for ever, however long the upstream fails
	// (mirrored instances). Retries after a failure back off up to Every
	// at most.
	Every time.Duration
}

// Entry returns the entry for key, creating it and starting its refresher
// (which fetches at once: the prefetch) when it does not exist yet. An
// existing entry keeps its value and its fetcher. Its values expire, and
// are refreshed refreshBefore ahead of that.
func (c *Cache[V]) Entry(key string, refreshBefore time.Duration, fetch Fetcher[V]) *Entry[V] {
	return c.EntryWith(key, Policy{RefreshBefore: refreshBefore}, fetch)
}

// EntryWith is Entry with any refresh policy.
func (c *Cache[V]) EntryWith(key string, p Policy, fetch Fetcher[V]) *Entry[V] {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, start := c.entryLocked(key, p, fetch)
	if start != nil {
		start()
	}
	return e
}

// entryLocked returns the entry for key and, if it was just made, the
// function that starts its refresher: a Store publishes which tenants use
// a new entry before its first fetch can report. c.mu must be held.
func (c *Cache[V]) entryLocked(key string, p Policy, fetch Fetcher[V]) (*Entry[V], func()) {
	if v, ok := c.reg.Get(key); ok {
		return v.(*Entry[V]), nil
	}
	ctx, cancel := context.WithCancel(c.ctx)
	e := &Entry[V]{key: key, opts: &c.opts, fetch: fetch, policy: p,
		cancel: cancel, kick: make(chan struct{}, 1), force: make(chan struct{}, 1)}
	changed := make(chan struct{})
	e.changed.Store(&changed)
	c.reg.Set(key, e, gocache.NoExpiration)
	return e, func() { go e.run(ctx) }
}

// Retain stops and forgets every entry whose key is not in keep: what a
// reload does with the entries no tenant uses any more.
func (c *Cache[V]) Retain(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retainLocked(func(key string) bool { return keep[key] })
}

// retainLocked deletes the entries whose key keep refuses; deleting stops
// their refreshers (OnEvicted). c.mu must be held.
func (c *Cache[V]) retainLocked(keep func(key string) bool) {
	for key := range c.reg.Items() {
		if !keep(key) {
			c.reg.Delete(key)
		}
	}
}

// Len is the number of entries.
func (c *Cache[V]) Len() int { return c.reg.ItemCount() }

// Entry is one cached value and its refresher.
type Entry[V any] struct {
	key    string
	opts   *Options
	fetch  Fetcher[V]
	policy Policy
	cancel context.CancelFunc

	cur     atomic.Pointer[state[V]]
	changed atomic.Pointer[chan struct{}] // closed and replaced after each fetch
	kick    chan struct{}
	force   chan struct{} // Refresh: fetch now, whatever the backoff
	fetches atomic.Int64
	failed  atomic.Int64
}

// state is what an entry knows after its latest fetch.
type state[V any] struct {
	val       V
	has       bool      // false until the first successful fetch
	expiry    time.Time // of val; zero for values that never expire
	refreshed time.Time // when val was fetched
	err       error     // of the latest fetch, nil if it succeeded
	failedAt  time.Time
	kickAfter time.Time // after a failure: no fetch on a request's behalf before this
}

// Get returns the current value if it is still valid. Otherwise it asks the
// refresher for a fetch and waits for it at most ColdWait; concurrent
// callers share that one fetch.
func (e *Entry[V]) Get(ctx context.Context) (V, error) {
	if v, ok := e.valid(); ok {
		return v, nil
	}
	var zero V
	if s := e.cur.Load(); s != nil && s.err != nil && e.opts.Clock.Now().Before(s.kickAfter) {
		// The upstream failed moments ago and is backing off: say so now
		// rather than keep the client waiting for a fetch that won't come.
		return zero, s.err
	}
	ch := *e.changed.Load()
	select {
	case e.kick <- struct{}{}:
	default: // a kick is already pending
	}
	select {
	case <-ch:
	case <-e.opts.Clock.After(e.opts.ColdWait):
	case <-ctx.Done():
	}
	if v, ok := e.valid(); ok {
		return v, nil
	}
	if s := e.cur.Load(); s != nil && s.err != nil {
		return zero, s.err
	}
	return zero, ErrNotReady
}

func (e *Entry[V]) valid() (V, bool) {
	s := e.cur.Load()
	if s != nil && e.live(s) {
		return s.val, true
	}
	var zero V
	return zero, false
}

// live reports whether s holds a value that may still be served.
func (e *Entry[V]) live(s *state[V]) bool {
	return s.has && (e.policy.Every > 0 || e.opts.Clock.Now().Before(s.expiry))
}

// Status is an entry's state, for readiness and status pages.
type Status struct {
	Valid     bool
	Expiry    time.Time // zero for values that never expire
	Refreshed time.Time // of the value served; zero before the first success
	LastError error     // of the latest fetch; nil if it succeeded
	FailedAt  time.Time // of the latest fetch, when it failed
	Fetches   int64
	Failures  int64 // fetches that failed, in all
}

// Status reports the entry's state.
func (e *Entry[V]) Status() Status {
	st := Status{Fetches: e.fetches.Load(), Failures: e.failed.Load()}
	if s := e.cur.Load(); s != nil {
		st.Expiry, st.Refreshed, st.LastError = s.expiry, s.refreshed, s.err
		if s.err != nil {
			st.FailedAt = s.failedAt
		}
		st.Valid = e.live(s)
	}
	return st
}

// run is the entry's refresher: fetch, plan the next fetch, wait, repeat.
func (e *Entry[V]) run(ctx context.Context) {
	failures := 0
	for {
		next := e.refresh(ctx, &failures)
		if ctx.Err() != nil || !e.wait(ctx, next) {
			return
		}
	}
}

// refresh fetches once, publishes the outcome and returns when to fetch next.
func (e *Entry[V]) refresh(ctx context.Context, failures *int) time.Time {
	clock := e.opts.Clock
	start := clock.Now()
	fctx, cancel := context.WithTimeout(ctx, e.opts.FetchTimeout)
	val, expiry, err := e.fetch(fctx)
	cancel()
	if ctx.Err() != nil {
		// Stopped (no tenant uses the entry any more, or shutdown): the
		// outcome concerns nobody, and "context canceled" is no failure
		// to report.
		return clock.Now()
	}
	e.fetches.Add(1)
	now := clock.Now()

	prev := e.cur.Load()
	next := now
	var s state[V]
	if err == nil {
		*failures = 0
		if e.policy.Every > 0 {
			expiry, next = time.Time{}, now.Add(e.policy.Every)
		} else {
			next = e.refreshAt(now, expiry)
		}
		s = state[V]{val: val, has: true, expiry: expiry, refreshed: now}
	} else {
		e.failed.Add(1)
		*failures++
		if prev != nil {
			s = *prev
		}
		d := e.backoff(*failures)
		s.err, s.failedAt = err, now
		s.kickAfter = now.Add(min(d, maxKickWait))
		next = now.Add(d)
	}
	e.cur.Store(&s)
	changed := make(chan struct{})
	close(*e.changed.Swap(&changed))
	if e.opts.OnFetch != nil {
		e.opts.OnFetch(Event{Key: e.key, Err: err, Expiry: s.expiry, Next: next, Took: now.Sub(start), Failure: *failures})
	}
	return next
}

// refreshAt plans the refresh refreshBefore ahead of expiry; a value that
// lives shorter than that is refreshed at half its remaining life instead,
// never sooner than a second from now.
func (e *Entry[V]) refreshAt(now, expiry time.Time) time.Time {
	at := expiry.Add(-e.policy.RefreshBefore)
	if !at.After(now) {
		at = now.Add(expiry.Sub(now) / 2)
	}
	if min := now.Add(time.Second); at.Before(min) {
		at = min
	}
	return at
}

func (e *Entry[V]) backoff(failures int) time.Duration {
	max := e.opts.MaxBackoff
	if e.policy.Every > 0 && e.policy.Every < max {
		max = e.policy.Every
	}
	d := e.opts.MinBackoff
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return time.Duration(float64(d) * e.opts.Jitter())
}

// maxKickWait caps how long requests that find no valid value may have to
// wait for the next fetch after a failure: the backoff keeps growing for
// the refresher's own retries, but a user who just fixed the cause (ran
// `aws sso login`) is served within this.
const maxKickWait = 30 * time.Second

// wait sleeps until next. A kick (a request found no valid value) cuts the
// wait short, but not before the failure's backoff (at most maxKickWait)
// has passed, so clients polling a broken upstream do not multiply its
// calls.
func (e *Entry[V]) wait(ctx context.Context, next time.Time) bool {
	clock := e.opts.Clock
	timer := clock.After(next.Sub(clock.Now()))
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer:
			return ctx.Err() == nil // both ready: select chose at random
		case <-e.force:
			return ctx.Err() == nil
		case <-e.kick:
			if _, ok := e.valid(); ok {
				continue
			}
			s := e.cur.Load()
			earliest := s.kickAfter
			if s.err == nil || !clock.Now().Before(earliest) {
				return ctx.Err() == nil
			}
			if earliest.Before(next) {
				next = earliest
				timer = clock.After(next.Sub(clock.Now()))
			}
		}
	}
}

// Refresh has the entry fetch now, even if it holds a valid value and
// whatever backoff its failures earned: for when the cause of the
// failures is known to be fixed (an MFA code was given). A fetch in
// flight is followed by another. It does not wait.
func (e *Entry[V]) Refresh() {
	select {
	case e.force <- struct{}{}:
	default: // already asked
	}
}

// Peek returns the value being served, if any, without waiting or fetching.
func (e *Entry[V]) Peek() (V, bool) { return e.valid() }
