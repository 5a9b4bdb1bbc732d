package handlers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// laneClock is the fixed time both lanes answer at, so that their Date
// headers and token TTLs are equal and their responses byte for byte.
var laneClock = time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)

type laneCreds struct{}

// laneDocuments are rendered once, as the credential cache holds them.
var laneDocuments = RenderCredentials(tenants.Credentials{
	AccessKeyID: "ASIAEXAMPLE000000001", SecretAccessKey: "secret/example+0001",
	SessionToken: "token-example", Retrieved: laneClock, Expiration: laneClock.Add(time.Hour),
})

func (laneCreds) Credentials(context.Context, *tenants.Tenant) (*CredentialDocuments, error) {
	return laneDocuments, nil
}

// lanes serves one Server twice on loopback: through the Lane and through
// net/http alone, as the IMDS listener served before the lane. token is a
// valid IMDSv2 token of the tenant.
type lanes struct {
	s                *Server
	lane, plain      string
	token            string
	laneSrv, plainHS *http.Server
	l                *Lane
}

func newLanes(t testing.TB) *lanes {
	t.Helper()
	cfg, err := tenants.Parse("lane", []byte(`
tenants:
  - name: web
    sources: ["127.0.0.1"]
    instance: {instance_id: i-0123456789abcdef0}
    credentials: {mock: true, role_name: web-role}
    user_data: "#!/bin/sh\necho hello\n"
    limits: {requests_per_second: 1000000000, burst: 1000000000, connections: 4096}
`), laneClock)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{Now: func() time.Time { return laneClock }, Credentials: laneCreds{}})
	if err != nil {
		t.Fatal(err)
	}
	hs := func() *http.Server {
		return &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute,
			WriteTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10, ConnContext: ConnContext, ConnState: s.ConnState}
	}
	ln := &lanes{s: s, laneSrv: hs(), plainHS: hs()}
	ln.l = s.Lane(ln.laneSrv)
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.lane, ln.plain = l1.Addr().String(), l2.Addr().String()
	go func() { _ = ln.l.Serve(s.Listener(l1)) }()
	go func() { _ = ln.plainHS.Serve(s.Listener(l2)) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ln.l.Shutdown(ctx)
		_ = ln.plainHS.Shutdown(ctx)
	})
	tok, err := s.tokens(s.state.Load().byName["web"]).Mint(laneAddr, 6*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln.token = tok
	return ln
}

var laneAddr = netip.MustParseAddr("127.0.0.1")

// exchange sends raw on a new connection to addr, half-closes it, and
// returns every byte that came back; reset: the connection ended in an
// error rather than EOF (a server closing with unread input resets it).
func rawExchange(t testing.TB, addr string, raw []byte) (got []byte, reset bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(raw); err != nil {
		reset = true
	}
	_ = c.(*net.TCPConn).CloseWrite()
	got, err = io.ReadAll(c)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			t.Fatalf("no end of the response to %q within 10s: %q", raw, got)
		}
		reset = true
	}
	return got, reset
}

// compare sends raw to both lanes and fails unless they answered the same
// bytes (or, where a reset cut one short, one is a prefix of the other).
func (ln *lanes) compare(t testing.TB, raw []byte) []byte {
	t.Helper()
	want, wreset := rawExchange(t, ln.plain, raw)
	got, greset := rawExchange(t, ln.lane, raw)
	if bytes.Equal(got, want) {
		return got
	}
	if (wreset || greset) && (bytes.HasPrefix(got, want) || bytes.HasPrefix(want, got)) {
		return got
	}
	t.Fatalf("request %q:\nnet/http answered %q (reset %v)\nthe lane answered %q (reset %v)", raw, want, wreset, got, greset)
	return nil
}

func laneRequests(token string) []string {
	get := func(path string, headers ...string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: 169.254.169.254\r\n" + strings.Join(headers, "") + "\r\n"
	}
	tok := "X-aws-ec2-metadata-token: " + token + "\r\n"
	return []string{
		get("/latest/meta-data/instance-id"),
		get("/latest/meta-data/instance-id", tok),
		get("/latest/meta-data/instance-id", "x-aws-ec2-metadata-token: wrong\r\n"),
		get("/latest/meta-data/iam/security-credentials/web-role", tok, "User-Agent: aws-sdk-go-v2/1.0\r\n"),
		get("/latest/meta-data/iam/security-credentials/", tok),
		get("/latest/meta-data/iam/info", tok),
		get("/latest/meta-data/iam/security-credentials/other-role", tok),
		get("/"), get("/latest"), get("/latest/"), get("/latest/meta-data"), get("/latest/meta-data/"),
		get("/latest//meta-data/instance-id"), get("/latest/meta-data/nope"), get("/1.0/meta-data/"),
		get("/latest/user-data"), get("/latest/dynamic/instance-identity/document"),
		get("/latest/meta-data/placement/availability-zone", "Accept: */*\r\n", "Connection: keep-alive\r\n"),
		get("/latest/meta-data/instance-id", "Origin: http://evil.example\r\n"),
		get("/latest/meta-data/instance-id", "X-Forwarded-For: 10.0.0.1\r\n"),
		get("/latest/meta-data/instance-id", "Accept: a\r\n", "accept: b\r\n", "ACCEPT:c \r\n"),
		get("/latest/meta-data/instance-id", "X-Empty:\r\n", "X-Tabs:\t v \t\r\n"),
		get("/latest/meta-data/a;b=c,d+e$f&g@h:i"),
		"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: evil.example\r\n\r\n",
		"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n",
		"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost:\r\n\r\n",
		// For net/http, through the hand-off.
		"GET /latest/meta-data/instance-id HTTP/1.1\r\n\r\n",
		"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET /latest/meta-data/instance-id HTTP/1.0\r\nHost: a\r\n\r\n",
		"GET /latest/meta-data/instance-id?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /latest/meta-data/%69nstance-id HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /latest/meta-data%2Finstance-id HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://169.254.169.254/latest/meta-data/instance-id HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /latest/meta-data/instance-id HTTP/1.1\r\nHost: a\r\n\r\n",
		"OPTIONS /latest/meta-data/instance-id HTTP/1.1\r\nHost: a\r\n\r\n",
		"PUT /latest/api/token HTTP/1.1\r\nHost: a\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n",
		"PUT /latest/api/token HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
		"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		get("/latest/meta-data/instance-id", "Connection: Close\r\n"),
		get("/latest/meta-data/instance-id", "Connection: keep-alive\r\n", "Connection: close\r\n"),
		get("/latest/meta-data/instance-id", "Connection: keep-alive, close\r\n"),
		get("/latest/meta-data/instance-id", "Connection: close\r\n") + get("/latest/meta-data/"),
		get("/latest/meta-data/instance-id", "Origin: http://evil.example\r\n", "Connection: close\r\n"),
		"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
		"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
		"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n",
		"GET /latest/meta-data/ HTTP/1.1\nHost: a\n\n",
		"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("x", 5000) + "\r\n\r\n",
		"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\n",
		"GET  /latest/meta-data/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n",
		"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"",
		// Several requests on one connection, in one write: the lane
		// answers the first ones and hands the rest over.
		get("/latest/meta-data/instance-id") + get("/latest/meta-data/", tok) + get("/latest/meta-data/nope"),
		get("/latest/meta-data/instance-id") + "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" + get("/latest/meta-data/instance-id"),
		get("/latest/meta-data/instance-id") + "PUT /latest/api/token HTTP/1.1\r\nHost: a\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n" + get("/"),
		get("/latest/meta-data/instance-id") + "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	}
}

// dial connects to the lane, with a deadline on the connection, closed
// when the test ends.
func (ln *lanes) dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ln.lane)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// TestLaneAnswersAsNetHTTP: every request, whether the lane reads it or
// hands it over, is answered with the bytes net/http alone answers it.
func TestLaneAnswersAsNetHTTP(t *testing.T) {
	ln := newLanes(t)
	for _, raw := range laneRequests(ln.token) {
		got := ln.compare(t, []byte(raw))
		if raw != "" && len(got) == 0 && !strings.HasPrefix(raw, "\r\n") {
			t.Errorf("no answer to %q from either lane", raw)
		}
	}
	// The comparison is not vacuous: the lane answered these itself.
	got, _ := rawExchange(t, ln.lane, []byte("GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n"))
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(got, []byte("\r\n\r\ni-0123456789abcdef0")) {
		t.Errorf("instance-id through the lane: %q", got)
	}
}

// TestLaneKeepsConnections: the lane serves a client's requests on one
// connection, one after another, and reuses nothing that leaks a request
// into the next (its headers, its path).
func TestLaneKeepsConnections(t *testing.T) {
	ln := newLanes(t)
	c := ln.dial(t)
	buf := make([]byte, 4096)
	ask := func(req, want string) {
		t.Helper()
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(buf[:n]), want) {
			t.Fatalf("%q answered %q, want it to contain %q", req, buf[:n], want)
		}
	}
	tok := "X-aws-ec2-metadata-token: " + ln.token + "\r\n"
	for range 3 {
		ask("GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n"+tok+"\r\n", "X-Aws-Ec2-Metadata-Token-Ttl-Seconds: 21600\r\n")
		ask("GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n", "Content-Length: 19\r\nContent-Type: text/plain\r\nDate: Mon, 30 Nov 2026 23:00:00 GMT\r\nServer: EC2ws\r\n\r\ni-0123456789abcdef0")
		ask("GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token: bad\r\n\r\n", "401 Unauthorized")
		ask("GET /latest/meta-data/local-hostname HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n", ".internal")
	}
	// A request net/http must read takes the connection over, and net/http
	// goes on serving it.
	ask("HEAD /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n", "Content-Length: 19\r\n")
	ask("GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n", "i-0123456789abcdef0")
}

// TestLaneShutdown: Shutdown closes the lane's idle connections, stops
// accepting, and returns once its connections are closed.
func TestLaneShutdown(t *testing.T) {
	ln := newLanes(t)
	c := ln.dial(t)
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ln.l.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	// The idle connection is closed: the next read ends.
	if n, err := c.Read(buf); err == nil {
		t.Errorf("read %q from a connection Shutdown should have closed", buf[:n])
	}
	wg.Wait()
	if c2, err := net.DialTimeout("tcp", ln.lane, time.Second); err == nil {
		c2.Close()
		t.Error("the lane still accepts after Shutdown")
	}
}

// pipeListener hands out the server ends of in-memory connections whose
// peer has the address remote.
type pipeListener struct {
	conns  chan net.Conn
	remote net.Addr
	done   chan struct{}
	once   sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return addrConn{Conn: c, remote: l.remote}, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return l.remote }

func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

// pipeLane serves a tenant at 127.0.0.1 through a lane with serve's
// timeouts, on in-memory connections (for synctest's clock).
func pipeLane(t *testing.T) (*pipeListener, *Lane) {
	t.Helper()
	cfg, err := tenants.Parse("lane", []byte("tenants: [{name: web, sources: [127.0.0.1]}]"), laneClock)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s, IdleTimeout: time.Minute, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	l := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{}),
		remote: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}}
	lane := s.Lane(hs)
	go func() { _ = lane.Serve(s.Listener(l)) }()
	t.Cleanup(func() { _ = lane.Shutdown(context.Background()) })
	return l, lane
}

// TestLaneAnswersAfterIdle: a kept connection idle for longer than the
// write timeout (but not the idle timeout) is answered its next request:
// the write deadline counts from the request, not from the wait before it.
// Each head arrives in two pieces.
func TestLaneAnswersAfterIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _ := pipeLane(t)
		c := l.dial()
		defer c.Close()
		buf := make([]byte, 4096)
		for i, idle := range []time.Duration{0, 30 * time.Second, 55 * time.Second, 0} {
			time.Sleep(idle)
			// In two pieces, each read on its own (a pipe's write waits
			// for its read): the lane reads on until the head is whole.
			for _, piece := range []string{"GET /latest/meta-data/ HTTP/1.1\r\nHo", "st: 127.0.0.1\r\n\r\n"} {
				if _, err := c.Write([]byte(piece)); err != nil {
					t.Fatalf("request %d, after %v idle: %v", i, idle, err)
				}
			}
			n, err := c.Read(buf)
			if err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200 OK\r\n") {
				t.Fatalf("request %d, after %v idle: read %q, %v; want a 200", i, idle, buf[:n], err)
			}
		}
	})
}

// TestLaneTimeouts: a connection that sends nothing is closed after the
// idle timeout, one that sent half a head after the header timeout, and
// neither earlier than its timeout, less the second a deadline may be
// stale.
func TestLaneTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, lane := pipeLane(t)
		for _, tc := range []struct {
			first   string
			timeout time.Duration
		}{{"", time.Minute}, {"GET / HTTP/1.1\r\n", 5 * time.Second}, {"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", time.Minute}} {
			c := l.dial()
			start := time.Now()
			if tc.first != "" {
				if _, err := c.Write([]byte(tc.first)); err != nil {
					t.Fatal(err)
				}
			}
			answer := ""
			if strings.HasSuffix(tc.first, "\r\n\r\n") {
				buf := make([]byte, 4096)
				n, err := c.Read(buf)
				if err != nil {
					t.Fatal(err)
				}
				answer = string(buf[:n])
				start = time.Now()
			}
			got, err := io.ReadAll(c)
			took := time.Since(start)
			c.Close()
			if err != nil || len(got) != 0 {
				t.Errorf("after %q: read %q, %v; want EOF and nothing", tc.first, got, err)
			}
			if took < tc.timeout-time.Second || took > tc.timeout {
				t.Errorf("after %q (answered %.12q): closed after %v, want the %v timeout", tc.first, answer, took, tc.timeout)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := lane.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
}

// TestLaneParseAllocs: a client's repeated GET is parsed without
// allocating.
func TestLaneParseAllocs(t *testing.T) {
	lc := lanePool.Get().(*laneConn)
	defer func() { lc.reset(); lanePool.Put(lc) }() // clean, as serve puts it back
	head := []byte("GET /latest/meta-data/iam/security-credentials/web-role HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: aws-sdk-go-v2/1.30\r\nx-aws-ec2-metadata-token: abc\r\nAccept-Encoding: gzip\r\n\r\n")
	if !lc.parse(head) {
		t.Fatal("the lane refused a plain GET")
	}
	allocs := testing.AllocsPerRun(100, func() {
		lc.header[0], lc.header[1] = lc.header[1], lc.header[0]
		clear(lc.header[0])
		if !lc.parse(head) {
			t.Fatal("the lane refused a plain GET")
		}
	})
	if allocs != 0 {
		t.Errorf("parse allocates %v times a request, want 0", allocs)
	}
	r := &lc.req
	if r.URL.Path != "/latest/meta-data/iam/security-credentials/web-role" || r.Host != "169.254.169.254" ||
		r.Header.Get("X-Aws-Ec2-Metadata-Token") != "abc" || r.Header["Host"] != nil || r.UserAgent() != "aws-sdk-go-v2/1.30" {
		t.Errorf("parsed %+v", r)
	}
}

// FuzzLane holds the lane to net/http on any bytes a client may send: the
// same answer, byte for byte, whether the lane read the request or handed
// it over.
func FuzzLane(f *testing.F) {
	ln := newLanes(f)
	for _, raw := range laneRequests(ln.token) {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ln.compare(t, raw)
	})
}

// BenchmarkLaneGET is a client's GET on a kept connection through the
// lane, over loopback, with a raw client that allocates nothing: the
// allocations reported are the server's.
func BenchmarkLaneGET(b *testing.B) {
	ln := newLanes(b)
	for _, bc := range []struct{ name, path string }{
		{"metadata", "/latest/meta-data/instance-id"},
		{"credentials", "/latest/meta-data/iam/security-credentials/web-role"},
		{"iam-info", "/latest/meta-data/iam/info"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := []byte("GET " + bc.path + " HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: bench\r\nX-aws-ec2-metadata-token: " + ln.token + "\r\n\r\n")
			c, err := net.Dial("tcp", ln.lane)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 8192)
			ask := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
			ask()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				ask()
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestLaneHandsOverUnadmitted: a connection its listener did not admit
// (not the Server's Listener) is not read by the lane but served by
// net/http, as it is.
func TestLaneHandsOverUnadmitted(t *testing.T) {
	ln := newLanes(t)
	var byNetHTTP atomic.Int32 // connections net/http served
	hs := &http.Server{Handler: ln.s, ConnState: func(_ net.Conn, cs http.ConnState) {
		if cs == http.StateNew {
			byNetHTTP.Add(1)
		}
	}}
	lane := ln.s.Lane(hs)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = lane.Serve(l) }()
	defer lane.Shutdown(context.Background())
	got, _ := rawExchange(t, l.Addr().String(), []byte("GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n"))
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(got, []byte("i-0123456789abcdef0")) {
		t.Errorf("through a listener the Server did not wrap: %q", got)
	}
	if n := byNetHTTP.Load(); n != 1 {
		t.Errorf("net/http served %d connections, want the 1 the listener did not admit", n)
	}
}
