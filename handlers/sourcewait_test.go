package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

const waitConfig = `
tenants:
  - name: web
    sources: ["127.0.0.2"]
    instance: {instance_id: i-0a1b2c3d4e5f60001}
`

// TestWaitForSource: a request from an unknown address is held while the
// hook waits, served if the address is served by then, refused at the
// bound otherwise, and never held beyond MaxSourceWaiters at once.
func TestWaitForSource(t *testing.T) {
	const path = "/latest/meta-data/instance-id"
	t.Run("nil hook refuses at once", func(t *testing.T) {
		srv, _ := newServer(t, waitConfig, handlers.Options{})
		if w := serve(srv, http.MethodGet, path, "127.0.0.9:4000"); w.Code != http.StatusForbidden {
			t.Fatalf("status %d, want 403", w.Code)
		}
	})
	t.Run("served once the address is applied", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			late := parseConfig(t, waitConfig+`    # the container's start, applied late
  - name: late
    sources: ["127.0.0.9"]
    instance: {instance_id: i-0a1b2c3d4e5f60009}
`)
			started := make(chan struct{})
			var srv *handlers.Server
			srv, _ = newServer(t, waitConfig, handlers.Options{WaitForSource: func(ctx context.Context, a netip.Addr) bool {
				<-started
				if err := srv.Load(late); err != nil {
					t.Error(err)
				}
				return a == netip.MustParseAddr("127.0.0.9")
			}})
			done := make(chan int)
			go func() {
				w := serve(srv, http.MethodGet, path, "127.0.0.9:4000")
				if w.Body.String() != "i-0a1b2c3d4e5f60009" && w.Code == http.StatusOK {
					t.Errorf("body %q", w.Body.String())
				}
				done <- w.Code
			}()
			synctest.Wait()
			select {
			case code := <-done:
				t.Fatalf("answered %d before the address was applied", code)
			default:
			}
			close(started)
			if code := <-done; code != http.StatusOK {
				t.Fatalf("status %d once applied, want 200", code)
			}
		})
	})
	t.Run("refused at the bound", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv, _ := newServer(t, waitConfig, handlers.Options{WaitForSource: func(ctx context.Context, a netip.Addr) bool {
				<-ctx.Done()
				return false
			}})
			start := time.Now()
			if w := serve(srv, http.MethodGet, path, "127.0.0.9:4000"); w.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403", w.Code)
			}
			if d := time.Since(start); d != handlers.SourceWaitBound {
				t.Fatalf("held %v, want %v", d, handlers.SourceWaitBound)
			}
		})
	})
	t.Run("at most MaxSourceWaiters held", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var calls atomic.Int32
			release := make(chan struct{})
			srv, _ := newServer(t, waitConfig, handlers.Options{WaitForSource: func(ctx context.Context, a netip.Addr) bool {
				calls.Add(1)
				<-release
				return false
			}})
			codes := make(chan int, handlers.MaxSourceWaiters)
			for i := range handlers.MaxSourceWaiters {
				go func() {
					codes <- serve(srv, http.MethodGet, path, fmt.Sprintf("127.1.%d.%d:4000", i/200, 1+i%200)).Code
				}()
			}
			synctest.Wait()
			start := time.Now()
			if w := serve(srv, http.MethodGet, path, "127.2.0.1:4000"); w.Code != http.StatusForbidden || time.Since(start) != 0 {
				t.Fatalf("beyond the waiters: status %d after %v, want 403 at once", w.Code, time.Since(start))
			}
			if n := calls.Load(); n != handlers.MaxSourceWaiters {
				t.Fatalf("hook called %d times, want %d", n, handlers.MaxSourceWaiters)
			}
			close(release)
			for range handlers.MaxSourceWaiters {
				if code := <-codes; code != http.StatusForbidden {
					t.Fatalf("a held request: status %d, want 403", code)
				}
			}
		})
	})
	t.Run("an address past its rate is not held", func(t *testing.T) {
		// One address asking in a loop must not take the waiters that a
		// container just started needs.
		synctest.Test(t, func(t *testing.T) {
			var calls atomic.Int32
			srv, _ := newServer(t, waitConfig, handlers.Options{WaitForSource: func(ctx context.Context, a netip.Addr) bool {
				calls.Add(1)
				return false
			}})
			var throttled int
			for range 200 {
				w := serve(srv, http.MethodGet, path, "127.0.0.9:4000")
				if w.Code == http.StatusTooManyRequests {
					throttled++
				}
			}
			if throttled == 0 {
				t.Fatal("200 requests from one unknown address: none throttled")
			}
			if n := int(calls.Load()); n != 200-throttled {
				t.Fatalf("hook called %d times for %d requests not throttled: a throttled request was held", n, 200-throttled)
			}
		})
	})
}
