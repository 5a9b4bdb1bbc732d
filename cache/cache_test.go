package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a Clock whose time moves only when a test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{c.now.Add(d), ch})
	return ch
}

// Advance moves time forward and fires the timers now due. It first gives
// the refresher up to a second to start waiting (OnFetch, which tests wait
// on, runs just before it does), so that its timer counts from the time
// before the advance, as it would with a real clock.
func (c *fakeClock) Advance(d time.Duration) {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		c.mu.Lock()
		pending := len(c.timers)
		c.mu.Unlock()
		if pending > 0 {
			break
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
		} else {
			kept = append(kept, t)
		}
	}
	c.timers = kept
}

// upstream is a controllable fetcher: it answers what the test sets, counts
// calls, and can be made to block until released.
type upstream struct {
	clock    *fakeClock
	lifetime time.Duration
	calls    atomic.Int64
	mu       sync.Mutex
	err      error
	gate     chan struct{} // when not nil, fetches wait for it to close
	value    int
}

func (u *upstream) fetch(ctx context.Context) (int, time.Time, error) {
	u.calls.Add(1)
	u.mu.Lock()
	gate, err := u.gate, u.err
	u.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, time.Time{}, ctx.Err()
		}
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.value++
	return u.value, u.clock.Now().Add(u.lifetime), nil
}

func (u *upstream) set(err error, gate chan struct{}) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.err, u.gate = err, gate
}

// events collects OnFetch events so tests wait on fetches, not on time.
type events chan Event

func (ev events) next(t *testing.T) Event {
	t.Helper()
	select {
	case e := <-ev:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no fetch happened within 5s")
		return Event{}
	}
}

func setup(t *testing.T, lifetime time.Duration) (*Cache[int], *fakeClock, *upstream, events) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	clock := newFakeClock()
	ev := make(events, 100)
	c := New[int](ctx, Options{
		Clock: clock, ColdWait: time.Hour, MinBackoff: time.Second, MaxBackoff: time.Minute,
		OnFetch: func(e Event) { ev <- e },
		Jitter:  func() float64 { return 1 },
	})
	return c, clock, &upstream{clock: clock, lifetime: lifetime}, ev
}

func TestPrefetchAndServeFromMemory(t *testing.T) {
	c, _, up, ev := setup(t, time.Hour)
	e := c.Entry("k", 15*time.Minute, up.fetch)
	if got := ev.next(t); got.Err != nil {
		t.Fatalf("prefetch failed: %v", got.Err)
	}
	for i := 0; i < 100; i++ {
		v, err := e.Get(context.Background())
		if err != nil || v != 1 {
			t.Fatalf("Get = %d, %v; want 1", v, err)
		}
	}
	if n := up.calls.Load(); n != 1 {
		t.Fatalf("%d upstream calls for 100 warm reads, want 1", n)
	}
}

func TestOneFetchForManyColdRequests(t *testing.T) {
	c, _, up, ev := setup(t, time.Hour)
	gate := make(chan struct{})
	up.set(nil, gate)
	e := c.Entry("k", 15*time.Minute, up.fetch)
	var wg sync.WaitGroup
	var served atomic.Int64
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := e.Get(context.Background()); err == nil && v == 1 {
				served.Add(1)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the callers pile up on the fetch in flight
	close(gate)
	wg.Wait()
	ev.next(t)
	if n := up.calls.Load(); n != 1 {
		t.Fatalf("%d upstream calls for 1000 concurrent cold requests, want 1", n)
	}
	if served.Load() != 1000 {
		t.Fatalf("%d of 1000 requests served", served.Load())
	}
}

func TestSharedKeyIsOneEntry(t *testing.T) {
	c, _, up, ev := setup(t, time.Hour)
	a := c.Entry("same", time.Minute, up.fetch)
	b := c.Entry("same", time.Minute, up.fetch)
	ev.next(t)
	if a != b || c.Len() != 1 || up.calls.Load() != 1 {
		t.Fatalf("two specs with one key: entries %p %p, len %d, calls %d", a, b, c.Len(), up.calls.Load())
	}
}

func TestRefreshAheadKeepsServing(t *testing.T) {
	c, clock, up, ev := setup(t, time.Hour)
	e := c.Entry("k", 15*time.Minute, up.fetch)
	first := ev.next(t)
	if want := clock.Now().Add(45 * time.Minute); !first.Next.Equal(want) {
		t.Fatalf("next refresh at %v, want %v (15m before expiry)", first.Next, want)
	}
	// The upstream becomes slow: the refresh blocks, requests must not.
	gate := make(chan struct{})
	up.set(nil, gate)
	clock.Advance(45 * time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for up.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	for i := 0; i < 50; i++ {
		if v, err := e.Get(context.Background()); err != nil || v != 1 {
			t.Fatalf("during a slow refresh Get = %d, %v; want the current value 1", v, err)
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("50 reads during a slow refresh took %v", took)
	}
	close(gate)
	ev.next(t)
	if v, _ := e.Get(context.Background()); v != 2 {
		t.Fatalf("after the refresh Get = %d, want 2", v)
	}
}

func TestUpstreamDownWhileValid(t *testing.T) {
	c, clock, up, ev := setup(t, time.Hour)
	e := c.Entry("k", 15*time.Minute, up.fetch)
	ev.next(t)
	down := errors.New("sts down")
	up.set(down, nil)
	clock.Advance(45 * time.Minute) // refresh time: fails
	fail := ev.next(t)
	if !errors.Is(fail.Err, down) || fail.Failure != 1 {
		t.Fatalf("event %+v, want failure 1 with the upstream error", fail)
	}
	if got := fail.Next.Sub(clock.Now()); got != time.Second {
		t.Fatalf("first retry in %v, want 1s (MinBackoff)", got)
	}
	for i := 0; i < 10; i++ {
		if v, err := e.Get(context.Background()); err != nil || v != 1 {
			t.Fatalf("upstream down, credentials valid: Get = %d, %v; want 1", v, err)
		}
	}
	// Backoff doubles up to MaxBackoff.
	clock.Advance(time.Second)
	if d := ev.next(t).Next.Sub(clock.Now()); d != 2*time.Second {
		t.Fatalf("second retry in %v, want 2s", d)
	}
}

func TestExpiredIsNeverServed(t *testing.T) {
	c, clock, up, ev := setup(t, time.Hour)
	e := c.Entry("k", 15*time.Minute, up.fetch)
	ev.next(t)
	down := errors.New("sts down")
	up.set(down, nil)
	clock.Advance(45 * time.Minute)
	ev.next(t)
	// Jump past expiry without letting retries succeed.
	clock.Advance(16 * time.Minute)
	ev.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	v, err := e.Get(ctx)
	if err == nil {
		t.Fatalf("Get after expiry = %d, nil; want an error", v)
	}
	if !errors.Is(err, down) {
		t.Fatalf("Get after expiry: %v, want the upstream's error", err)
	}
	if st := e.Status(); st.Valid {
		t.Fatalf("status says valid after expiry: %+v", st)
	}
}

func TestRecoversAfterFailure(t *testing.T) {
	c, clock, up, ev := setup(t, time.Hour)
	up.set(errors.New("no login yet"), nil)
	e := c.Entry("k", 15*time.Minute, up.fetch)
	if ev.next(t).Err == nil {
		t.Fatal("first fetch should fail")
	}
	up.set(nil, nil) // the user ran `aws sso login`
	clock.Advance(time.Second)
	if got := ev.next(t); got.Err != nil {
		t.Fatalf("retry failed: %v", got.Err)
	}
	if v, err := e.Get(context.Background()); err != nil || v != 1 {
		t.Fatalf("Get = %d, %v; want 1", v, err)
	}
}

func TestShortLivedValuesRefreshAtHalfLife(t *testing.T) {
	c, clock, up, ev := setup(t, 10*time.Minute)
	c.Entry("k", 15*time.Minute, up.fetch)
	if d := ev.next(t).Next.Sub(clock.Now()); d != 5*time.Minute {
		t.Fatalf("a 10m value with refresh_before 15m refreshes in %v, want 5m", d)
	}
}

func TestRetainStopsUnused(t *testing.T) {
	c, clock, up, ev := setup(t, time.Hour)
	c.Entry("gone", 15*time.Minute, up.fetch)
	ev.next(t)
	c.Retain(map[string]bool{})
	if c.Len() != 0 {
		t.Fatalf("Len = %d after Retain(nothing)", c.Len())
	}
	clock.Advance(2 * time.Hour)
	time.Sleep(20 * time.Millisecond)
	if n := up.calls.Load(); n != 1 {
		t.Fatalf("a retired entry kept fetching: %d calls", n)
	}
}

func TestColdWaitBoundsTheWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gate := make(chan struct{})
	defer close(gate)
	c := New[int](ctx, Options{ColdWait: 50 * time.Millisecond})
	e := c.Entry("k", time.Minute, func(ctx context.Context) (int, time.Time, error) {
		<-gate
		return 1, time.Now().Add(time.Hour), nil
	})
	start := time.Now()
	_, err := e.Get(context.Background())
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("Get with a stuck upstream: %v, want ErrNotReady", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("cold Get waited %v, want about ColdWait (50ms)", took)
	}
}

// Mirrored instances: a fixed refresh interval and no expiry.

func TestEveryRefreshesAtTheInterval(t *testing.T) {
	c, clock, up, ev := setup(t, time.Minute) // the fetcher's expiry must be ignored
	e := c.EntryWith("mirror", Policy{Every: 10 * time.Minute}, up.fetch)
	first := ev.next(t)
	if got := first.Next.Sub(clock.Now()); got != 10*time.Minute {
		t.Fatalf("next refresh in %v, want the interval, 10m", got)
	}
	if !first.Expiry.IsZero() {
		t.Fatalf("event expiry %v, want none", first.Expiry)
	}
	clock.Advance(5 * time.Minute) // past the fetcher's 1m expiry
	if v, err := e.Get(context.Background()); err != nil || v != 1 {
		t.Fatalf("Get = %d, %v; want 1: values of an Every entry never expire", v, err)
	}
	if n := up.calls.Load(); n != 1 {
		t.Fatalf("%d upstream calls before the interval, want 1", n)
	}
	clock.Advance(5 * time.Minute)
	ev.next(t)
	if v, _ := e.Get(context.Background()); v != 2 {
		t.Fatalf("after the interval Get = %d, want 2", v)
	}
}

func TestEveryKeepsTheLastGoodValueForever(t *testing.T) {
	c, clock, up, ev := setup(t, time.Minute)
	e := c.EntryWith("mirror", Policy{Every: 10 * time.Second}, up.fetch)
	ev.next(t)
	down := errors.New("ec2 down")
	up.set(down, nil)
	for i := 0; i < 30; i++ { // retries back off, but never beyond the interval
		clock.Advance(10 * time.Second)
		got := ev.next(t)
		if !errors.Is(got.Err, down) {
			t.Fatalf("fetch %d: %v, want the upstream error", i, got.Err)
		}
		if d := got.Next.Sub(clock.Now()); d > 10*time.Second {
			t.Fatalf("retry %d planned in %v, beyond the 10s interval", i, d)
		}
	}
	clock.Advance(24 * time.Hour)
	ev.next(t)
	if v, err := e.Get(context.Background()); err != nil || v != 1 {
		t.Fatalf("a day of failures later Get = %d, %v; want the last good value 1", v, err)
	}
	st := e.Status()
	if !st.Valid || !errors.Is(st.LastError, down) || st.Refreshed.IsZero() || st.FailedAt.IsZero() || !st.Expiry.IsZero() {
		t.Fatalf("status %+v: want valid, the last error and when, the last success, no expiry", st)
	}
}

func TestEveryNeverFetchedIsNotValid(t *testing.T) {
	c, _, up, ev := setup(t, time.Minute)
	down := errors.New("InvalidInstanceID.NotFound")
	up.set(down, nil)
	e := c.EntryWith("mirror", Policy{Every: time.Minute}, up.fetch)
	ev.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := e.Get(ctx); !errors.Is(err, down) {
		t.Fatalf("Get before any success: %v, want the upstream error", err)
	}
	if st := e.Status(); st.Valid || !st.Refreshed.IsZero() || !errors.Is(st.LastError, down) {
		t.Fatalf("status %+v: want not valid, never refreshed, the error", st)
	}
}

// TestRequestsDoNotOutrunTheBackoff: while the upstream keeps failing,
// requests get the failure at once and cause no extra upstream calls.
func TestRequestsDoNotOutrunTheBackoff(t *testing.T) {
	c, clock, up, ev := setup(t, time.Hour)
	down := errors.New("sso session expired")
	up.set(down, nil)
	e := c.Entry("k", 15*time.Minute, up.fetch)
	ev.next(t)
	for i := 0; i < 100; i++ {
		start := time.Now()
		if _, err := e.Get(context.Background()); !errors.Is(err, down) {
			t.Fatalf("Get during backoff: %v, want the upstream's error", err)
		}
		if time.Since(start) > 100*time.Millisecond {
			t.Fatal("a request waited although no fetch was due")
		}
	}
	if n := up.calls.Load(); n != 1 {
		t.Fatalf("%d upstream calls while backing off, want 1", n)
	}
	clock.Advance(time.Second) // the first retry
	if got := ev.next(t); got.Failure != 2 {
		t.Fatalf("retry event %+v, want the second failure", got)
	}
	if n := up.calls.Load(); n != 2 {
		t.Fatalf("%d upstream calls after one backoff, want 2", n)
	}
}
