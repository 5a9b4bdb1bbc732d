package handlers_test

// In-process benchmarks of Server.ServeHTTP: no network, no httptest
// recorder, so what is measured (time and allocations) is the handler's
// own work: resolution, routing, token check, reply and access log.
//
//	go test -run='^$' -bench=ServeHTTP -benchmem ./handlers/

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// benchWriter is the least a ResponseWriter can be: reused across
// iterations, it keeps the status and the body length and drops the rest,
// so its own cost does not hide the handler's.
type benchWriter struct {
	header http.Header
	status int
	n      int
	body   []byte // kept only when keep is set (to read a minted token)
	keep   bool
}

func (w *benchWriter) Header() http.Header { return w.header }

func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *benchWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(b)
	if w.keep {
		w.body = append(w.body, b...)
	}
	return len(b), nil
}

func (w *benchWriter) reset() {
	clear(w.header)
	w.status, w.n = 0, 0
	w.body = w.body[:0]
}

func newBenchWriter() *benchWriter { return &benchWriter{header: make(http.Header, 8)} }

// benchRequest is a request as net/http hands it to a handler.
func benchRequest(method, path, remote string, h http.Header) *http.Request {
	if h == nil {
		h = http.Header{}
	}
	return (&http.Request{
		Method:     method,
		URL:        &url.URL{Path: path},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       "169.254.169.254",
		RemoteAddr: remote,
		RequestURI: path,
	}).WithContext(context.Background())
}

const benchSource = "10.1.2.3"

// benchServer serves one tenant, at benchSource, with a credential-free
// configuration as tenants.Build derives it.
func benchServer(b *testing.B, log zerolog.Logger) *handlers.Server {
	b.Helper()
	cfg, errs := tenants.Build(&tenants.File{Tenants: []tenants.TenantConfig{{
		Name:     "bench",
		Sources:  []string{benchSource},
		Instance: tenants.InstanceConfig{InstanceID: "i-0a1b2c3d4e5f60001"},
		// Every request comes from benchSource: lift its budget (by default
		// 500/s, burst 1000) so that serving is measured, not 429s. The
		// limiter still runs.
		Limits: tenants.LimitsConfig{RequestsPerSecond: 1e9, Burst: 1 << 30},
	}}}, ".", time.Now())
	if errs != nil {
		b.Fatal(errs)
	}
	srv, err := handlers.New(cfg, handlers.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

// benchMint gets an IMDSv2 token through ServeHTTP, as a client would.
func benchMint(b *testing.B, srv *handlers.Server) string {
	b.Helper()
	w := newBenchWriter()
	w.keep = true
	srv.ServeHTTP(w, benchRequest(http.MethodPut, "/latest/api/token", benchSource+":40000",
		http.Header{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {"21600"}}))
	if w.status != http.StatusOK || len(w.body) == 0 {
		b.Fatalf("PUT /latest/api/token: %d %q", w.status, w.body)
	}
	return string(w.body)
}

// benchCase is one kind of request and the status it must get.
type benchCase struct {
	name   string
	req    func(b *testing.B, srv *handlers.Server) *http.Request
	status int
}

var benchCases = []benchCase{
	{"v1-leaf", func(*testing.B, *handlers.Server) *http.Request {
		return benchRequest(http.MethodGet, "/latest/meta-data/instance-id", benchSource+":40000", nil)
	}, http.StatusOK},
	{"v2-leaf", func(b *testing.B, srv *handlers.Server) *http.Request {
		return benchRequest(http.MethodGet, "/latest/meta-data/instance-id", benchSource+":40000",
			http.Header{"X-Aws-Ec2-Metadata-Token": {benchMint(b, srv)}})
	}, http.StatusOK},
	{"v1-listing", func(*testing.B, *handlers.Server) *http.Request {
		return benchRequest(http.MethodGet, "/latest/meta-data/", benchSource+":40000", nil)
	}, http.StatusOK},
	{"unknown-source", func(*testing.B, *handlers.Server) *http.Request {
		return benchRequest(http.MethodGet, "/latest/meta-data/instance-id", "192.0.2.1:40000", nil)
	}, http.StatusForbidden},
}

// benchLoggers are no logging at all (the zero Logger) and the production
// shape (JSON with a timestamp) into io.Discard, which prices the encoding
// without the write.
var benchLoggers = []struct {
	name string
	log  func() zerolog.Logger
}{
	{"log=none", func() zerolog.Logger { return zerolog.Logger{} }},
	{"log=json", func() zerolog.Logger {
		return zerolog.New(io.Discard).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	}},
}

func BenchmarkServeHTTP(b *testing.B) {
	for _, lg := range benchLoggers {
		for _, bc := range benchCases {
			b.Run(lg.name+"/"+bc.name, func(b *testing.B) {
				srv := benchServer(b, lg.log())
				r := bc.req(b, srv)
				w := newBenchWriter()
				srv.ServeHTTP(w, r)
				if w.status != bc.status || w.n == 0 {
					b.Fatalf("%s %s from %s: %d (%d bytes), want %d", r.Method, r.URL.Path, r.RemoteAddr, w.status, w.n, bc.status)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					w.reset()
					srv.ServeHTTP(w, r)
					// An unknown source past its request budget is answered
					// 429 rather than 403: both are the refusal measured.
					limited := bc.status == http.StatusForbidden && w.status == http.StatusTooManyRequests
					if w.status != bc.status && !limited {
						b.Fatalf("%s from %s: status %d, want %d", r.URL.Path, r.RemoteAddr, w.status, bc.status)
					}
				}
			})
		}
	}
}

// BenchmarkServeHTTPParallel is the same leaf GETs from every CPU at once:
// shared state on the hot path (the token store's lock, the logger) shows
// up here as contention.
func BenchmarkServeHTTPParallel(b *testing.B) {
	for _, lg := range benchLoggers {
		for _, bc := range benchCases[:2] {
			b.Run(lg.name+"/"+bc.name, func(b *testing.B) {
				srv := benchServer(b, lg.log())
				proto := bc.req(b, srv)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := proto.Clone(context.Background())
					w := newBenchWriter()
					for pb.Next() {
						w.reset()
						srv.ServeHTTP(w, r)
						if w.status != bc.status {
							b.Errorf("%s: status %d, want %d", r.URL.Path, w.status, bc.status)
							return
						}
					}
				})
			})
		}
	}
}
