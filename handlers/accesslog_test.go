package handlers_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/diode"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// logLines decodes the JSON lines of buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, line)
		}
		out = append(out, m)
	}
	return out
}

// TestAccessLog: one line per request saying who asked what and how it
// went, and never a header value: tokens travel in headers.
func TestAccessLog(t *testing.T) {
	var buf bytes.Buffer
	srv, _ := newServer(t, testConfig, handlers.Options{Logger: zerolog.New(&buf)})
	const secretUA = "ua-secret-7f3a9c"
	tok := mint(t, srv, srcFull, "21600")
	buf.Reset()

	tests := []struct {
		name, method, path, src string
		hdr                     []string
		want                    map[string]any
	}{
		{"v2 GET", "GET", "/latest/meta-data/instance-id", srcFull6,
			[]string{headerToken, tok, "User-Agent", secretUA},
			map[string]any{"tenant": "full", "src": "::1", "method": "GET", "path": "/latest/meta-data/instance-id",
				"status": 200.0, "bytes": 19.0, "imds": "v2"}},
		{"v2 PUT", "PUT", "/latest/api/token", srcFull,
			[]string{headerTTLLower, "21600", "User-Agent", secretUA},
			map[string]any{"tenant": "full", "src": "127.0.0.2", "method": "PUT", "path": "/latest/api/token",
				"status": 200.0, "bytes": 56.0, "imds": "v2"}},
		{"v1 GET from a mapped address", "GET", "/latest/meta-data/", srcFullMap, []string{"User-Agent", secretUA},
			map[string]any{"tenant": "full", "src": "127.0.0.2", "status": 200.0, "imds": "v1"}},
		{"401 with a bad token", "GET", "/latest/meta-data/", srcRequired, []string{headerToken, "bad-" + secretUA},
			map[string]any{"tenant": "required", "status": 401.0, "imds": "v1"}},
		{"404 with a token", "GET", "/latest/meta-data/nope", srcFull, []string{headerToken, tok},
			map[string]any{"tenant": "full", "status": 404.0, "imds": "v2"}},
		{"disabled", "GET", "/latest/meta-data/", srcDisabled, nil,
			map[string]any{"tenant": "disabled", "status": 403.0}},
		{"relayed PUT", "PUT", "/latest/api/token", srcFull, []string{"X-Forwarded-For", "198.51.100.7", headerTTLLower, "60"},
			map[string]any{"tenant": "full", "src": "127.0.0.2", "status": 403.0, "imds": "v1"}},
		{"long path is cut", "GET", "/latest/meta-data/" + strings.Repeat("a", 4096), srcFull, nil,
			map[string]any{"status": 404.0, "path": ("/latest/meta-data/" + strings.Repeat("a", 4096))[:256]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf.Reset()
			serve(srv, tc.method, tc.path, tc.src, tc.hdr...)
			lines := logLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1:\n%s", len(lines), buf.String())
			}
			for k, v := range tc.want {
				if lines[0][k] != v {
					t.Errorf("%s = %#v, want %#v", k, lines[0][k], v)
				}
			}
			for _, k := range []string{"dur_ms", "level"} {
				if _, ok := lines[0][k]; !ok {
					t.Errorf("no %s field", k)
				}
			}
			for i := 1; i < len(tc.hdr); i += 2 {
				if strings.Contains(buf.String(), tc.hdr[i]) {
					t.Errorf("the log holds the value of header %s:\n%s", tc.hdr[i-1], buf.String())
				}
			}
			if strings.Contains(buf.String(), tok) || strings.Contains(buf.String(), secretUA) {
				t.Errorf("the log holds a token or a header value:\n%s", buf.String())
			}
		})
	}
}

// TestAccessLogMintedTokenNotLogged: the body of a token PUT, the token
// itself, appears nowhere in the log.
func TestAccessLogMintedTokenNotLogged(t *testing.T) {
	var buf bytes.Buffer
	srv, _ := newServer(t, testConfig, handlers.Options{Logger: zerolog.New(&buf)})
	tok := mint(t, srv, srcFull, "60")
	if strings.Contains(buf.String(), tok) {
		t.Fatalf("the minted token is in the log:\n%s", buf.String())
	}
}

// TestUnknownSourceWarning: an unknown source is warned about once per
// address until WarnEvery passes, not once per request.
func TestUnknownSourceWarning(t *testing.T) {
	var buf bytes.Buffer
	srv, clock := newServer(t, testConfig, handlers.Options{
		Logger:    zerolog.New(&buf).Level(zerolog.WarnLevel),
		WarnEvery: time.Minute,
	})
	warnings := func() map[string]int {
		n := map[string]int{}
		for _, l := range logLines(t, &buf) {
			if l["level"] == "warn" {
				n[l["src"].(string)]++
			}
		}
		return n
	}
	steps := []struct {
		name    string
		advance time.Duration
		srcs    []string
		want    map[string]int // warnings so far, by source
	}{
		{"first requests warn once per address", 0,
			[]string{"192.0.2.1:1", "192.0.2.1:2", "192.0.2.1:3", "192.0.2.2:1", "[::ffff:192.0.2.2]:9"},
			map[string]int{"192.0.2.1": 1, "192.0.2.2": 1}},
		{"still quiet before WarnEvery", 59 * time.Second,
			[]string{"192.0.2.1:4", "192.0.2.2:2"},
			map[string]int{"192.0.2.1": 1, "192.0.2.2": 1}},
		{"known tenants never warn", 0,
			[]string{srcFull, srcDisabled},
			map[string]int{"192.0.2.1": 1, "192.0.2.2": 1}},
		{"warns again once WarnEvery has passed", time.Second,
			[]string{"192.0.2.1:5", "192.0.2.1:6", "[2001:db8::1]:1"},
			map[string]int{"192.0.2.1": 2, "192.0.2.2": 1, "2001:db8::1": 1}},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		for _, src := range s.srcs {
			serve(srv, http.MethodGet, "/latest/meta-data/", src)
		}
		got := warnings()
		if len(got) != len(s.want) {
			t.Fatalf("%s: warnings %v, want %v", s.name, got, s.want)
		}
		for k, v := range s.want {
			if got[k] != v {
				t.Fatalf("%s: warnings %v, want %v", s.name, got, s.want)
			}
		}
	}
}

// stalledWriter is a log destination that takes nothing until released:
// the slowest reader there is.
type stalledWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestUnknownFloodKeepsTenantLogLines: the log goes through a bounded
// buffer (a diode, as in serve) that drops lines when its reader is slow.
// A flood from addresses no tenant lists must not push the tenants' access
// lines out of it (the report: 18 of 20 tenant lines lost): lines about
// unknown sources are rate-limited, and the ones left out are counted.
func TestUnknownFloodKeepsTenantLogLines(t *testing.T) {
	const tenantLines, flood, buffered = 20, 20_000, 1000
	out := &stalledWriter{release: make(chan struct{})}
	var dropped atomic.Int64
	d := diode.NewWriter(out, buffered, 0, func(n int) { dropped.Add(int64(n)) })
	srv, _ := newServer(t, testConfig, handlers.Options{Logger: zerolog.New(d)})
	for i := range flood {
		if i%(flood/tenantLines) == 0 {
			serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcFull)
		}
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		serve(srv, http.MethodGet, "/latest/meta-data/instance-id", netip.AddrPortFrom(a, 1).String())
	}
	close(out.release)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	var tenant, unknown int
	for _, l := range logLines(t, &out.buf) {
		if l["tenant"] == "full" {
			tenant++
		} else {
			unknown++
		}
	}
	if tenant != tenantLines {
		t.Fatalf("%d of %d tenant access lines written (%d lines about unknown sources, %d dropped by the buffer)",
			tenant, tenantLines, unknown, dropped.Load())
	}
	metrics := serve(srv.Admin(), "GET", "/metrics", "127.0.0.1:1").Body.String()
	var suppressed int
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, "imds_proxy_log_lines_suppressed_total "); ok {
			suppressed, _ = strconv.Atoi(v)
		}
	}
	if suppressed+unknown < flood || suppressed == 0 {
		t.Fatalf("%d lines about unknown sources written, %d counted as suppressed; want at least %d in all", unknown, suppressed, flood)
	}
	t.Logf("%d tenant lines, %d lines about unknown sources, %d suppressed, %d dropped", tenant, unknown, suppressed, dropped.Load())
}
