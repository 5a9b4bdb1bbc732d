package handlers_test

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// stampRecorder is a timestamp hook as serve's: it records the time each
// line would be stamped with, and whether the line brought its own.
type stampRecorder struct {
	mu    sync.Mutex
	times []time.Time
}

func (h *stampRecorder) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	at, ok := handlers.LoggedAt(e.GetCtx())
	if !ok {
		at = time.Time{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.times = append(h.times, at)
}

// TestKeepAliveRequests: requests on one keep-alive connection reuse what
// the first worked out (the peer, its Host, its tenant, its limiter), yet
// each is judged by its own Host and by the configuration in force when
// it arrives, and each access line carries the time it was taken.
func TestKeepAliveRequests(t *testing.T) {
	stamps := &stampRecorder{}
	var logged bytes.Buffer
	srv, clock := newServer(t, testConfig, handlers.Options{Logger: zerolog.New(&logged).Hook(stamps)})
	addr, _ := serveLimited(t, srv, srv)
	c := dialFrom(t, addr, "127.0.0.2")
	ask := func(c *rawConn, host string) int {
		t.Helper()
		if _, err := io.WriteString(c, "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(c.r, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	var want []time.Time
	for i := range 3 {
		if got := ask(c, "169.254.169.254"); got != http.StatusOK {
			t.Fatalf("request %d: %d, want 200", i, got)
		}
		want = append(want, clock.Now())
		clock.Advance(1500 * time.Millisecond)
	}
	if got := ask(c, "rebound.example.com"); got != http.StatusForbidden {
		t.Fatalf("a foreign Host on the same connection: %d, want 403", got)
	}
	want = append(want, clock.Now())
	stamps.mu.Lock()
	if len(stamps.times) != len(want) {
		t.Fatalf("%d lines stamped, want %d:\n%s", len(stamps.times), len(want), logged.String())
	}
	for i, at := range stamps.times {
		if !at.Equal(want[i]) {
			t.Errorf("line %d: LoggedAt %v, want the clock's %v", i, at, want[i])
		}
	}
	stamps.mu.Unlock()
	// The lines after the first reuse its fields: they must read alike.
	lines := logLines(t, &logged)
	for i, l := range lines {
		want := map[string]any{"tenant": "full", "src": "127.0.0.2", "method": "GET",
			"path": "/latest/meta-data/instance-id", "status": 200.0, "bytes": 19.0, "imds": "v1"}
		if i == 3 {
			want["tenant"], want["status"] = "", 403.0
			delete(want, "bytes") // the 403 page's
		}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("line %d: %s = %#v, want %#v", i, k, l[k], v)
			}
		}
		if _, ok := l["dur_ms"].(float64); !ok {
			t.Errorf("line %d: dur_ms %#v", i, l["dur_ms"])
		}
	}

	// A reload that gives 127.0.0.2 to no tenant: a connection's next
	// request is refused, although its first was served. (A refusal
	// closes its connection: this is a second one.)
	c2 := dialFrom(t, addr, "127.0.0.2")
	if got := ask(c2, "169.254.169.254"); got != http.StatusOK {
		t.Fatalf("second connection: %d, want 200", got)
	}
	if err := srv.Load(parseConfig(t, "tenants:\n  - name: other\n    sources: [\"127.0.0.7\"]\n")); err != nil {
		t.Fatal(err)
	}
	if got := ask(c2, "169.254.169.254"); got != http.StatusForbidden {
		t.Fatalf("after the reload: %d, want 403", got)
	}
}
