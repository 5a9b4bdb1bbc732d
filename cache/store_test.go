package cache

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// Store tests run in a synctest bubble: time is fake and moves only when
// every goroutine waits, so they neither sleep nor race the refreshers.

// counter is an upstream that counts its calls by key and can be held.
type counter struct {
	mu    sync.Mutex
	calls map[string]int
	hold  chan struct{} // when not nil, fetches wait for it or their context
	ended []error       // the context errors of fetches that were held
}

func newCounter() *counter { return &counter{calls: map[string]int{}} }

func (c *counter) fetch(key string) Fetcher[string] {
	return func(ctx context.Context) (string, time.Time, error) {
		c.mu.Lock()
		c.calls[key]++
		hold := c.hold
		c.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-ctx.Done():
				c.mu.Lock()
				c.ended = append(c.ended, ctx.Err())
				c.mu.Unlock()
				return "", time.Time{}, ctx.Err()
			}
		}
		return key + " value", time.Now().Add(time.Hour), nil
	}
}

func (c *counter) n(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[key]
}

// keyedBy plans one entry per distinct instance id, none for a tenant
// without one: any tenant field would do.
func keyedBy(c *counter) func(*tenants.Tenant) (Plan[string], bool) {
	return func(t *tenants.Tenant) (Plan[string], bool) {
		key := t.Instance.ID
		if key == "" {
			return Plan[string]{}, false
		}
		return Plan[string]{Key: key, Policy: Policy{RefreshBefore: 15 * time.Minute}, Fetch: c.fetch(key)}, true
	}
}

func tenant(name, key string) *tenants.Tenant {
	return &tenants.Tenant{Name: name, Instance: tenants.Instance{ID: key}}
}

func TestStoreLoadPrefetches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := newCounter()
		s := NewStore(t.Context(), Options{}, keyedBy(up))
		s.Load([]*tenants.Tenant{tenant("web", "k1")})
		synctest.Wait()
		if n := up.n("k1"); n != 1 {
			t.Fatalf("%d fetches after Load, want the one prefetch", n)
		}
		v, ok := s.Entry("web").Peek()
		if !ok || v != "k1 value" {
			t.Fatalf("before any request Peek = %q, %v; want the prefetched value", v, ok)
		}
	})
}

func TestStoreSharesEqualKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := newCounter()
		var events []Event
		s := NewStore(t.Context(), Options{OnFetch: func(ev Event) { events = append(events, ev) }}, keyedBy(up))
		s.Load([]*tenants.Tenant{tenant("web", "same"), tenant("worker", "same"), tenant("static", "")})
		synctest.Wait()
		if s.Entry("web") == nil || s.Entry("web") != s.Entry("worker") || s.Len() != 1 {
			t.Fatalf("equal keys: entries %p and %p, %d in all; want one shared", s.Entry("web"), s.Entry("worker"), s.Len())
		}
		if n := up.n("same"); n != 1 {
			t.Fatalf("%d fetches for two tenants of one key, want 1", n)
		}
		if s.Entry("static") != nil || s.Entry("nobody") != nil {
			t.Fatal("a tenant without a plan, or unknown, has an entry")
		}
		// Even the prefetch's event names the tenants it concerns.
		if len(events) != 1 || !slices.Equal(events[0].Tenants, []string{"web", "worker"}) {
			t.Fatalf("events %+v, want one naming web and worker", events)
		}
	})
}

// TestStoreStopsRemovedAtOnce: an entry no tenant uses stops at the Load
// that drops it, a fetch in flight included, not at the Load after.
func TestStoreStopsRemovedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := newCounter()
		s := NewStore(t.Context(), Options{}, keyedBy(up))
		s.Load([]*tenants.Tenant{tenant("web", "kw"), tenant("gone", "kg")})
		synctest.Wait()

		up.mu.Lock()
		up.hold = make(chan struct{}) // the next fetches hang, like a slow credential_process
		up.mu.Unlock()
		time.Sleep(45*time.Minute + time.Second) // both refresh (at 45m) and hang
		synctest.Wait()
		if up.n("kg") != 2 {
			t.Fatalf("%d fetches of kg, want the prefetch and the hanging refresh", up.n("kg"))
		}

		s.Load([]*tenants.Tenant{tenant("web", "kw")})
		synctest.Wait()
		if s.Entry("gone") != nil || s.Len() != 1 {
			t.Fatalf("after its tenant left: entry %p, %d entries", s.Entry("gone"), s.Len())
		}
		up.mu.Lock()
		ended := slices.Clone(up.ended)
		up.mu.Unlock()
		if len(ended) != 1 || ended[0] != context.Canceled {
			t.Fatalf("fetches cut short %v, want the removed entry's only, cancelled", ended)
		}
		close(up.hold)
		time.Sleep(24 * time.Hour)
		if n := up.n("kg"); n != 2 {
			t.Fatalf("the removed entry fetched %d times in all, want no more after its removal", n)
		}
		if n := up.n("kw"); n < 3 {
			t.Fatalf("the kept entry fetched %d times in a day, want it still refreshing", n)
		}
	})
}

// TestStoreReloadKeepsEntries: tenant pointers change at every reload;
// the entry goes with the name and key, value included.
func TestStoreReloadKeepsEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := newCounter()
		s := NewStore(t.Context(), Options{}, keyedBy(up))
		s.Load([]*tenants.Tenant{tenant("web", "k")})
		synctest.Wait()
		before := s.Entry("web")
		for range 10 {
			s.Load([]*tenants.Tenant{tenant("web", "k")})
		}
		synctest.Wait()
		if s.Entry("web") != before || up.n("k") != 1 {
			t.Fatalf("reloads replaced the entry (%v) or fetched again (%d calls)", s.Entry("web") != before, up.n("k"))
		}
		// A tenant whose key changes moves to a new entry; the old stops.
		s.Load([]*tenants.Tenant{tenant("web", "k2")})
		synctest.Wait()
		if s.Entry("web") == before || s.Len() != 1 || up.n("k2") != 1 {
			t.Fatalf("a changed key: same entry %v, %d entries, %d fetches of k2", s.Entry("web") == before, s.Len(), up.n("k2"))
		}
	})
}

// TestStoreRefreshSkipsTheBackoff: after failures, Refresh fetches the
// matching tenants' entries at once, each once, and no other entry.
func TestStoreRefreshSkipsTheBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		calls := map[string]int{}
		failing := true
		plan := func(tn *tenants.Tenant) (Plan[string], bool) {
			key := tn.Instance.ID
			return Plan[string]{Key: key, Policy: Policy{RefreshBefore: 15 * time.Minute}, Fetch: func(context.Context) (string, time.Time, error) {
				mu.Lock()
				defer mu.Unlock()
				calls[key]++
				if failing {
					return "", time.Time{}, &tenants.UpstreamError{Code: "MFARequired", Message: "run imds-proxy mfa"}
				}
				return key, time.Now().Add(time.Hour), nil
			}}, true
		}
		s := NewStore(t.Context(), Options{MinBackoff: time.Minute, MaxBackoff: time.Hour}, plan)
		s.Load([]*tenants.Tenant{tenant("web", "mfa"), tenant("worker", "mfa"), tenant("other", "plain")})
		synctest.Wait()
		mu.Lock()
		failing = false
		mu.Unlock()
		got := s.Refresh(func(tn *tenants.Tenant) bool { return tn.Instance.ID == "mfa" })
		if !slices.Equal(got, []string{"web", "worker"}) {
			t.Fatalf("Refresh named %q, want web and worker", got)
		}
		synctest.Wait() // no time passes: the backoff is not waited for
		mu.Lock()
		mfa, plain := calls["mfa"], calls["plain"]
		mu.Unlock()
		if mfa != 2 || plain != 1 {
			t.Fatalf("fetches: mfa %d, plain %d; want 2 (prefetch, refresh) and 1", mfa, plain)
		}
		if v, ok := s.Entry("worker").Peek(); !ok || v != "mfa" {
			t.Fatalf("after Refresh: %q %v, want the new value", v, ok)
		}
	})
}
