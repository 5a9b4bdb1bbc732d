//go:build unix

package main

// The headline benchmark: what serving a tenant costs over real loopback
// HTTP, compared with a bare net/http handler writing the same bytes, on
// http.Servers configured as serve configures them (the proxy's behind its
// connection-limiting listener, as served) and with the production logger
// (JSON, level info, through its buffer) writing to a file.
//
//	go test -run='^$' -bench=MetadataGET -benchmem -count=3 ./cmd/imds-proxy/
//
// BenchmarkMetadataGET/bare and /imds-proxy are for benchstat
// (/imds-proxy-v2 sends an IMDSv2 token; /imds-proxy-nolog logs nothing).
// BenchmarkMetadataGETRatio measures them alternately in one process and
// reports proxy req/s ÷ bare req/s as throughput-ratio, and process CPU time
// per request, bare ÷ proxy, as cpu-ratio: the throughput ratio of a
// CPU-bound host, and far less swayed than wall-clock rates by whatever
// else the machine runs. The client shares the process and its CPUs, which
// dilutes both ratios; scripts/bench-wrk.sh measures with an external
// client.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/cache"
	"github.com/imds-proxy/imds-proxy/internal/awssource"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

const (
	benchInstanceID = "i-0a1b2c3d4e5f60001"
	benchPath       = "/latest/meta-data/instance-id"
	// benchConns is the client concurrency per CPU: with RunParallel's
	// SetParallelism it makes benchConns*GOMAXPROCS goroutines, each with
	// its own keep-alive connection (wrk -c32 on two CPUs is 16 per CPU).
	benchConns = 16
)

// benchTarget is one server under load and the headers every request to
// it carries.
type benchTarget struct {
	url    string
	header http.Header // sent with every request (the IMDSv2 token)
	path   string      // asked for; benchPath if empty
	body   []byte      // expected; benchInstanceID if nil
}

func (t benchTarget) target() (path string, body []byte) {
	path, body = t.path, t.body
	if path == "" {
		path = benchPath
	}
	if body == nil {
		body = []byte(benchInstanceID)
	}
	return path, body
}

// benchListen serves h on 127.0.0.1:0 with serve's http.Server settings
// until the benchmark ends.
func benchListen(tb testing.TB, h http.Handler, errorLog *log.Logger) string {
	return benchServe(tb, h, nil, errorLog)
}

// benchServe is benchListen, through srv's Lane, listener and ConnState
// hook as serve serves the IMDS listener, when srv is not nil.
func benchServe(tb testing.TB, h http.Handler, srv *handlers.Server, errorLog *log.Logger) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext:       handlers.ConnContext,
		ErrorLog:          errorLog,
	}
	var s server = hs
	if srv != nil {
		l, hs.ConnState = srv.Listener(l), srv.ConnState
		s = srv.Lane(hs)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			tb.Error(err)
		}
	}()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	})
	return "http://" + addr
}

// benchBare answers the path exactly as imds-proxy does (Date aside, which
// net/http adds to both), and nothing else.
func benchBare() http.Handler { return benchBareBody([]byte(benchInstanceID)) }

// benchBareBody answers every request with body as IMDS answers a value.
func benchBareBody(body []byte) http.Handler {
	length := []string{strconv.Itoa(len(body))}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Server"] = []string{"EC2ws"}
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = length
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

// benchLimits lift the per-source request budget (by default 500/s, burst
// 1000) out of the way: the benchmark sends every request from 127.0.0.1,
// and measures serving, not answering 429. The limiter still runs.
var benchLimits = tenants.LimitsConfig{RequestsPerSecond: 1e9, Burst: 1 << 30, Connections: 4096}

// benchProxy starts the full stack. With logged, its logger is the
// production one (newLogger: JSON, level info, through its buffer) writing to
// a temporary file, whose path is returned; without, the zero Logger, which
// logs nothing: the difference is what default logging costs.
func benchProxy(tb testing.TB, logged bool) (url, logPath string) {
	return benchProxyWith(tb, logged, false)
}

// benchCredsPath is where the credentials benchmark asks.
const benchCredsPath = "/latest/meta-data/iam/security-credentials/bench-role"

// benchProfile stands in for a loaded AWS profile: temporary credentials
// valid for hours, served as they are, as an SSO profile's are. The
// benchmark measures serving cached credentials, not fetching them.
func benchProfile(context.Context, string) (*awssource.Profile, error) {
	creds := aws.Credentials{AccessKeyID: "ASIABENCHEXAMPLE0001", SecretAccessKey: "bench-secret-access-key",
		SessionToken: strings.Repeat("bench-session-token-", 40), CanExpire: true,
		Expires: time.Now().Add(6 * time.Hour), AccountID: "111122223333"}
	return &awssource.Profile{Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return creds, nil
	})}, nil
}

// benchProxyWith starts the full stack; withCreds gives the tenant a role
// whose credentials come through the production credential cache.
func benchProxyWith(tb testing.TB, logged, withCreds bool) (url, logPath string) {
	tb.Helper()
	var logger zerolog.Logger
	if logged {
		logPath = filepath.Join(tb.TempDir(), "imds-proxy.log")
		f, err := os.Create(logPath)
		if err != nil {
			tb.Fatal(err)
		}
		var closeLog func()
		logger, closeLog, err = newLogger(&options{logLevel: "info", logFormat: "json"}, f)
		if err != nil {
			tb.Fatal(err)
		}
		// Registered before benchListen's cleanup, so it runs after the
		// server has drained: the log is flushed last.
		tb.Cleanup(func() {
			closeLog()
			_ = f.Close()
		})
	}
	tc := tenants.TenantConfig{
		Name:     "bench",
		Sources:  []string{"127.0.0.1"},
		Instance: tenants.InstanceConfig{InstanceID: benchInstanceID},
		Limits:   benchLimits,
	}
	if withCreds {
		tc.Credentials = tenants.CredentialsConfig{Profile: "bench", RoleName: "bench-role"}
	}
	cfg, errs := tenants.Build(&tenants.File{Tenants: []tenants.TenantConfig{tc}}, ".", time.Now())
	if errs != nil {
		tb.Fatal(errs)
	}
	opts := handlers.Options{Logger: logger, Signer: nil}
	if withCreds {
		ctx, cancel := context.WithCancel(context.Background())
		tb.Cleanup(cancel)
		creds := newCredentialCache(ctx, benchProfile, nil, zerolog.Nop(), handlers.NewMetrics(), cache.Options{})
		creds.Load(cfg)
		opts.Credentials = creds
	}
	srv, err := handlers.New(cfg, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return benchServe(tb, srv, srv, log.New(logWriter{logger}, "", 0)), logPath
}

// benchClient keeps one idle connection per goroutine RunParallel starts.
func benchClient(tb testing.TB) *http.Client {
	conns := max(benchConns*runtime.GOMAXPROCS(0), 4*runtime.GOMAXPROCS(0))
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// benchGet does one request and returns the status, the headers and the
// body read into buf, leaving the connection ready for the next request.
func benchGet(c *http.Client, req *http.Request, buf []byte) (int, http.Header, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	n, err := io.ReadFull(resp.Body, buf)
	if err == nil { // longer than expected: drain so the connection is reused
		_, err = io.Copy(io.Discard, resp.Body)
	} else if errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header, buf[:n], err
}

func (t benchTarget) request(tb testing.TB) *http.Request {
	path, _ := t.target()
	req, err := http.NewRequest(http.MethodGet, t.url+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	return req
}

// benchLoad is the measured loop: every goroutine GETs the path over its own
// keep-alive connection as fast as it is answered.
func benchLoad(b *testing.B, c *http.Client, t benchTarget) {
	b.ReportAllocs()
	b.SetParallelism(benchConns)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := t.request(b)
		_, want := t.target()
		buf := make([]byte, 2048)
		for pb.Next() {
			status, _, body, err := benchGet(c, req, buf)
			if err != nil || status != http.StatusOK || len(body) != len(want) {
				b.Errorf("GET %s: %d %q %v", req.URL, status, body, err)
				return
			}
		}
	})
}

// benchCheck makes sure a target answers what the bare handler answers, so
// the comparison is between equal responses.
func benchCheck(tb testing.TB, c *http.Client, t benchTarget, want http.Header) http.Header {
	tb.Helper()
	path, wantBody := t.target()
	status, h, body, err := benchGet(c, t.request(tb), make([]byte, 2048))
	if err != nil || status != http.StatusOK || !bytes.Equal(body, wantBody) {
		tb.Fatalf("GET %s%s: %d %q %v", t.url, path, status, body, err)
	}
	h = h.Clone()
	h.Del("Date")
	h.Del("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") // IMDSv2 adds it, as IMDS does
	if want != nil && !benchSameHeader(h, want) {
		tb.Fatalf("GET %s%s: headers %v, bare sends %v", t.url, path, h, want)
	}
	return h
}

func benchSameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// benchToken mints an IMDSv2 token from the proxy.
func benchToken(tb testing.TB, c *http.Client, url string) string {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPut, url+"/latest/api/token", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
	status, _, body, err := benchGet(c, req, make([]byte, 512))
	if err != nil || status != http.StatusOK {
		tb.Fatalf("PUT token: %d %q %v", status, body, err)
	}
	return string(bytes.Clone(body))
}

// benchTargets are the servers compared, all answering the same bytes.
type benchTargets struct {
	client  *http.Client // shared by all, one keep-alive connection per worker
	bare    benchTarget
	proxy   benchTarget // default logging on
	proxyV2 benchTarget // the same proxy, asked with an IMDSv2 token
	noLog   benchTarget // a second proxy, logging nothing
	logPath string      // proxy's access log
}

// newBenchTargets starts the bare server and the proxies and checks that
// they answer alike.
func newBenchTargets(b *testing.B) benchTargets {
	c := benchClient(b)
	proxyURL, logPath := benchProxy(b, true)
	noLogURL, _ := benchProxy(b, false)
	t := benchTargets{
		client:  c,
		bare:    benchTarget{url: benchListen(b, benchBare(), log.New(io.Discard, "", 0))},
		proxy:   benchTarget{url: proxyURL},
		proxyV2: benchTarget{url: proxyURL, header: http.Header{"X-Aws-Ec2-Metadata-Token": {benchToken(b, c, proxyURL)}}},
		noLog:   benchTarget{url: noLogURL},
		logPath: logPath,
	}
	want := benchCheck(b, c, t.bare, nil)
	for _, p := range []benchTarget{t.proxy, t.proxyV2, t.noLog} {
		benchCheck(b, c, p, want)
	}
	return t
}

// BenchmarkCredentialsGETRatio is the ratio benchmark for the request SDKs
// make most: GET iam/security-credentials/<role>, answered from the
// credential cache, against a bare handler writing the same document.
func BenchmarkCredentialsGETRatio(b *testing.B) {
	c := benchClient(b)
	proxyURL, _ := benchProxyWith(b, true, true)
	proxy := benchTarget{url: proxyURL, path: benchCredsPath}
	deadline := time.Now().Add(10 * time.Second)
	var doc []byte
	for {
		status, _, body, err := benchGet(c, proxy.request(b), make([]byte, 2048))
		if err == nil && status == http.StatusOK && bytes.Contains(body, []byte(`"Code" : "Success"`)) {
			doc = bytes.Clone(body)
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("no credentials from the proxy: %d %q %v", status, body, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	proxy.body = doc
	bare := benchTarget{url: benchListen(b, benchBareBody(doc), log.New(io.Discard, "", 0)), path: benchCredsPath, body: doc}
	benchCheck(b, c, proxy, benchCheck(b, c, bare, nil))
	n := int(benchRate(b, c, bare, 2000).rate * benchRoundTime.Seconds())
	var br, pr benchResult
	var ratios []float64
	for range b.N {
		for i := range benchRounds {
			var bi, pi benchResult
			if i%2 == 0 {
				bi, pi = benchRate(b, c, bare, n), benchRate(b, c, proxy, n)
			} else {
				pi, bi = benchRate(b, c, proxy, n), benchRate(b, c, bare, n)
			}
			br.add(bi)
			pr.add(pi)
			ratios = append(ratios, pi.rate/bi.rate)
		}
	}
	slices.Sort(ratios)
	for _, unit := range []string{"ns/op", "B/op", "allocs/op"} {
		b.ReportMetric(0, unit)
	}
	b.ReportMetric(pr.rate/br.rate, "throughput-ratio")
	b.ReportMetric(ratios[len(ratios)/2], "median-ratio")
	b.ReportMetric(br.cpuPerReq()/pr.cpuPerReq(), "cpu-ratio")
	rounds := float64(len(ratios))
	b.ReportMetric(br.rate/rounds, "bare-req/s")
	b.ReportMetric(pr.rate/rounds, "proxy-req/s")
}

func BenchmarkMetadataGET(b *testing.B) {
	t := newBenchTargets(b)
	b.Run("bare", func(b *testing.B) { benchLoad(b, t.client, t.bare) })
	b.Run("imds-proxy", func(b *testing.B) { benchLoad(b, t.client, t.proxy) })
	b.Run("imds-proxy-v2", func(b *testing.B) { benchLoad(b, t.client, t.proxyV2) })
	b.Run("imds-proxy-nolog", func(b *testing.B) { benchLoad(b, t.client, t.noLog) })
}

// benchRounds is how many times each side is measured in the ratio
// benchmark; alternating them spreads drift (other load, thermal) evenly.
const benchRounds = 5

// benchRoundTime is roughly how long each side runs in each round.
const benchRoundTime = time.Second

// BenchmarkMetadataGETRatio measures bare and proxy alternately in one
// process, benchRounds rounds of the same number of requests each, and
// reports the ratio of their rates (proxy ÷ bare) as throughput-ratio.
//
// It times its own rounds rather than nesting testing.Benchmark: that
// deadlocks inside a running benchmark (both take testing's benchmark lock).
// One op is the whole comparison; the framework stops after it, as it takes
// longer than -benchtime.
func BenchmarkMetadataGETRatio(b *testing.B) {
	t := newBenchTargets(b)
	c := t.client
	// Size the rounds from a short warm-up of the faster side.
	n := int(benchRate(b, c, t.bare, 2000).rate * benchRoundTime.Seconds())
	var bare, proxy, v2, noLog benchResult
	var ratios []float64
	for range b.N {
		for i := range benchRounds {
			// Alternate who goes first, so neither always runs first.
			var br, pr benchResult
			if i%2 == 0 {
				br, pr = benchRate(b, c, t.bare, n), benchRate(b, c, t.proxy, n)
			} else {
				pr, br = benchRate(b, c, t.proxy, n), benchRate(b, c, t.bare, n)
			}
			bare.add(br)
			proxy.add(pr)
			v2.add(benchRate(b, c, t.proxyV2, n))
			noLog.add(benchRate(b, c, t.noLog, n))
			ratios = append(ratios, pr.rate/br.rate)
		}
	}
	slices.Sort(ratios)
	// Per-op figures mean nothing here (one op is every round, client
	// included); BenchmarkMetadataGET reports them per request.
	for _, unit := range []string{"ns/op", "B/op", "allocs/op"} {
		b.ReportMetric(0, unit)
	}
	b.ReportMetric(proxy.rate/bare.rate, "throughput-ratio")
	b.ReportMetric(v2.rate/bare.rate, "throughput-ratio-v2")
	b.ReportMetric(noLog.rate/bare.rate, "throughput-ratio-nolog")
	b.ReportMetric(ratios[0], "min-ratio")
	b.ReportMetric(ratios[len(ratios)/2], "median-ratio")
	b.ReportMetric(ratios[len(ratios)-1], "max-ratio")
	b.ReportMetric(bare.cpuPerReq()/proxy.cpuPerReq(), "cpu-ratio")
	b.ReportMetric(bare.cpuPerReq()/v2.cpuPerReq(), "cpu-ratio-v2")
	b.ReportMetric(bare.cpuPerReq()/noLog.cpuPerReq(), "cpu-ratio-nolog")
	rounds := float64(len(ratios))
	b.ReportMetric(bare.rate/rounds, "bare-req/s")
	b.ReportMetric(proxy.rate/rounds, "proxy-req/s")
	b.ReportMetric(bare.cpuPerReq(), "bare-cpu-µs/req")
	b.ReportMetric(proxy.cpuPerReq(), "proxy-cpu-µs/req")
	b.ReportMetric(noLog.cpuPerReq(), "nolog-cpu-µs/req")
	lines, dropped := benchLogStats(b, t.logPath)
	b.ReportMetric(float64(lines), "log-lines")
	b.ReportMetric(float64(dropped), "log-lines-dropped")
}

// benchResult is one or more timed batches of requests.
type benchResult struct {
	rate float64       // requests per second (summed over batches by add)
	reqs int           // requests
	cpu  time.Duration // process CPU time, user and system, client included
}

func (r *benchResult) add(o benchResult) {
	r.rate += o.rate
	r.reqs += o.reqs
	r.cpu += o.cpu
}

func (r benchResult) cpuPerReq() float64 { return r.cpu.Seconds() * 1e6 / float64(r.reqs) }

// benchCPU is the CPU time the process has used so far.
func benchCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRate sends n requests to t from as many goroutines as benchLoad
// uses, and returns the rate they were answered at and the CPU they took.
func benchRate(tb testing.TB, c *http.Client, t benchTarget, n int) benchResult {
	workers := benchConns * runtime.GOMAXPROCS(0)
	left := atomic.Int64{}
	left.Store(int64(n))
	var wg sync.WaitGroup
	cpu := benchCPU(tb)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := t.request(tb)
			_, want := t.target()
			buf := make([]byte, 2048)
			for left.Add(-1) >= 0 {
				status, _, body, err := benchGet(c, req, buf)
				if err != nil || status != http.StatusOK || len(body) != len(want) {
					tb.Errorf("GET %s: %d %q %v", req.URL, status, body, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return benchResult{
		rate: float64(n) / time.Since(start).Seconds(),
		reqs: n,
		cpu:  benchCPU(tb) - cpu,
	}
}

// benchLogStats counts the access-log lines written and those the log's
// buffer dropped, so a fast result cannot come from logging nothing.
func benchLogStats(tb testing.TB, path string) (lines, dropped int) {
	time.Sleep(100 * time.Millisecond) // the log is written every 10ms
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	for line := range bytes.Lines(data) {
		var n int
		if _, err := fmt.Sscanf(string(line), "imds-proxy: log buffer full, %d lines dropped", &n); err == nil {
			dropped += n
			continue
		}
		lines++
	}
	return lines, dropped
}
