package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// fakeProfile is a tenants.CredentialSource whose answers the test sets:
// credentials living lifetime from now (negative: expired on arrival), or
// err.
type fakeProfile struct {
	mu       sync.Mutex
	calls    int
	lifetime time.Duration
	err      error
}

func (f *fakeProfile) Retrieve(context.Context) (tenants.Credentials, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return tenants.Credentials{}, f.err
	}
	now := time.Now()
	return tenants.Credentials{AccessKeyID: fmt.Sprintf("ASIAFAKE%04d", f.calls), SecretAccessKey: "secret",
		SessionToken: "token", Expiration: now.Add(f.lifetime), Retrieved: now}, nil
}

func (f *fakeProfile) set(lifetime time.Duration, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lifetime, f.err = lifetime, err
}

func (f *fakeProfile) n() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// credentialStore is the credential store whose every spec's source is up,
// rendering credentials as their access key id.
func credentialStore(t *testing.T, up *fakeProfile) *Store[string] {
	return NewCredentials(t.Context(), Options{Jitter: func() float64 { return 1 }}, zerolog.Nop(),
		func(tenants.CredentialSpec) tenants.CredentialSource { return up },
		func(c tenants.Credentials) string { return c.AccessKeyID })
}

func roleTenant(name, profile string) *tenants.Tenant {
	return &tenants.Tenant{Name: name, Role: &tenants.Role{Name: "r"},
		Credentials: tenants.CredentialSpec{Profile: profile, Duration: time.Hour, RefreshBefore: 15 * time.Minute}}
}

func TestCredentialsOneEntryPerSpec(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &fakeProfile{lifetime: time.Hour}
		s := credentialStore(t, up)
		s.Load([]*tenants.Tenant{roleTenant("web", "dev"), roleTenant("worker", "dev"), {Name: "static"}})
		synctest.Wait()
		if s.Entry("web") != s.Entry("worker") || up.n() != 1 {
			t.Fatalf("equal specs: shared %v, %d upstream calls; want one entry, one call", s.Entry("web") == s.Entry("worker"), up.n())
		}
		if s.Entry("static") != nil {
			t.Fatal("a tenant without a role has credentials")
		}
		if v, err := s.Entry("worker").Get(context.Background()); err != nil || v != "ASIAFAKE0001" {
			t.Fatalf("Get = %q, %v", v, err)
		}
		// A reload keeps the entry and its credentials.
		s.Load([]*tenants.Tenant{roleTenant("web", "dev")})
		synctest.Wait()
		if up.n() != 1 {
			t.Fatalf("a reload fetched again: %d calls", up.n())
		}
	})
}

// TestCredentialsRemovedTenantStopsAtOnce: a removed tenant's
// credential_process is not called again, not even until the next reload.
func TestCredentialsRemovedTenantStopsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &fakeProfile{lifetime: time.Hour}
		s := credentialStore(t, up)
		s.Load([]*tenants.Tenant{roleTenant("web", "dev")})
		synctest.Wait()
		s.Load(nil)
		time.Sleep(6 * time.Hour)
		if n := up.n(); n != 1 {
			t.Fatalf("%d upstream calls for a tenant removed after its first, want 1", n)
		}
		if s.Entry("web") != nil || s.Len() != 0 {
			t.Fatal("the removed tenant still has an entry")
		}
	})
}

// TestCredentialsStaleWhileError: while the upstream fails, the last valid
// credentials keep being served, at once, until they expire.
func TestCredentialsStaleWhileError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &fakeProfile{lifetime: time.Hour}
		s := credentialStore(t, up)
		s.Load([]*tenants.Tenant{roleTenant("web", "dev")})
		synctest.Wait()
		down := &tenants.UpstreamError{Code: "SSOSessionExpired", Message: "run `aws sso login`"}
		up.set(time.Hour, down)
		time.Sleep(50 * time.Minute) // refreshes from 45m on, all failing
		e := s.Entry("web")
		start := time.Now()
		if v, err := e.Get(context.Background()); err != nil || v != "ASIAFAKE0001" {
			t.Fatalf("upstream down, credentials valid: Get = %q, %v; want the last valid ones", v, err)
		}
		if time.Since(start) != 0 {
			t.Fatal("a request waited on a refresh although valid credentials exist")
		}
		if st := e.Status(); !st.Valid || !errors.Is(st.LastError, down) {
			t.Fatalf("status %+v, want valid with the upstream's error", st)
		}
		time.Sleep(15 * time.Minute) // past their expiry
		if _, err := e.Get(context.Background()); !errors.Is(err, down) {
			t.Fatalf("after expiry Get: %v, want the upstream's error, never expired credentials", err)
		}
		up.set(time.Hour, nil)
		time.Sleep(5 * time.Minute) // the next retry (backoff at most 5m)
		if v, err := e.Get(context.Background()); err != nil || v == "ASIAFAKE0001" {
			t.Fatalf("after recovery Get = %q, %v; want new credentials", v, err)
		}
	})
}

// TestCredentialsExpiredOnArrivalBackOff: credentials that arrive expired
// (a clock far off, a stale credential_process cache) are a failure: the
// store backs off instead of calling the upstream again for each of the
// requests that keep asking, and says what to check.
func TestCredentialsExpiredOnArrivalBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &fakeProfile{lifetime: -time.Hour}
		s := credentialStore(t, up)
		s.Load([]*tenants.Tenant{roleTenant("web", "dev")})
		synctest.Wait()
		e := s.Entry("web")
		requests := 0
		var last error
		for range 120 { // two minutes of clients polling hard
			for range 50 {
				requests++
				if _, err := e.Get(context.Background()); err != nil {
					last = err
				}
			}
			time.Sleep(time.Second)
		}
		// Backoff 1s, 2s, 4s, ... and requests may not bring a retry
		// forward by more than maxKickWait: a handful of calls, not one a
		// request.
		if n := up.n(); n > 10 {
			t.Fatalf("%d upstream calls for %d requests over 2 minutes of expired credentials, want a backoff's handful", n, requests)
		}
		var ue *tenants.UpstreamError
		if !errors.As(last, &ue) || ue.Code != "ExpiredCredentials" ||
			!strings.Contains(ue.Message, `credentials from profile "dev" expire at `) ||
			!strings.Contains(ue.Message, "which is in the past: check the clock") {
			t.Fatalf("Get: %v; want ExpiredCredentials saying to check the clock", last)
		}
	})
}

// TestCredentialsExpiredOnArrivalKeepLastValid: expired credentials never
// replace valid ones.
func TestCredentialsExpiredOnArrivalKeepLastValid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &fakeProfile{lifetime: time.Hour}
		s := credentialStore(t, up)
		s.Load([]*tenants.Tenant{roleTenant("web", "dev")})
		synctest.Wait()
		up.set(30*time.Second, nil) // under the minimum lifetime
		time.Sleep(46 * time.Minute)
		e := s.Entry("web")
		if v, err := e.Get(context.Background()); err != nil || v != "ASIAFAKE0001" {
			t.Fatalf("Get = %q, %v; want the valid credentials, not the short-lived ones", v, err)
		}
		var ue *tenants.UpstreamError
		if st := e.Status(); !errors.As(st.LastError, &ue) || ue.Code != "ExpiredCredentials" || !strings.Contains(ue.Message, "too soon to serve them") {
			t.Fatalf("status error %v, want ExpiredCredentials: too soon", st.LastError)
		}
	})
}

func TestMinLifetime(t *testing.T) {
	tests := []struct {
		name          string
		refreshBefore time.Duration
		want          time.Duration
	}{
		{"default refresh_before: a quarter", 15 * time.Minute, 225 * time.Second},
		{"short refresh_before: a minute at least", 2 * time.Minute, time.Minute},
		{"long refresh_before: five minutes at most", 6 * time.Hour, 5 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := minLifetime(tc.refreshBefore); got != tc.want {
				t.Fatalf("minLifetime(%s) = %s, want %s", tc.refreshBefore, got, tc.want)
			}
		})
	}
}

func TestCheckLifetimeMessages(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	spec := tenants.CredentialSpec{Profile: "ci", RoleARN: "arn:aws:iam::111122223333:role/web", RefreshBefore: 15 * time.Minute}
	tests := []struct {
		name   string
		expiry time.Time
		want   string // "" for no error
	}{
		{"plenty left", now.Add(time.Hour), ""},
		{"exactly the minimum", now.Add(225 * time.Second), ""},
		{"in the past", now.Add(-time.Minute), `credentials for arn:aws:iam::111122223333:role/web from profile "ci" expire at 2026-11-30T11:59:00Z, which is in the past: check the clock`},
		{"too soon", now.Add(40 * time.Second), `expire at 2026-11-30T12:00:40Z, in 40s: too soon to serve them (at least 3m45s is needed)`},
		{"no expiry", time.Time{}, "came without an expiry time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkLifetime(spec, tc.expiry, now)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			var ue *tenants.UpstreamError
			if !errors.As(err, &ue) || ue.Code != "ExpiredCredentials" || !strings.Contains(ue.Message, tc.want) {
				t.Fatalf("error %v, want ExpiredCredentials containing %q", err, tc.want)
			}
		})
	}
}
