package handlers_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

const hardeningConfig = `
server:
  hosts: [imds.corp.example]
tenants:
  - name: limited
    sources: ["127.0.0.2", "127.0.0.3"]
    limits: {requests_per_second: 1, burst: 3, connections: 2}
  - name: denylisted
    sources: ["127.0.0.5"]
    user_data: "#!/bin/sh\n"
    credentials: {profile: dev}
    paths: {deny: [user-data, "iam/*"]}
  - name: allowlisted
    sources: ["127.0.0.4"]
    paths: {allow: [instance-id, "placement/*"]}
`

func TestHostHeader(t *testing.T) {
	srv, _ := newServer(t, hardeningConfig, handlers.Options{})
	tests := []struct {
		host   string
		status int
	}{
		{"169.254.169.254", 200},
		{"169.254.169.254:80", 200},
		{"[fd00:ec2::254]", 200},
		{"[fd00:ec2::254]:80", 200},
		{"127.0.0.1:8080", 200},
		{"localhost:8080", 200},
		{"instance-data", 200},
		{"INSTANCE-DATA.ec2.internal.", 200},
		{"host.docker.internal:8080", 200},
		{"imds.corp.example", 200},
		{"", 200},
		{"attacker.example", 403},
		{"169.254.169.254.attacker.example", 403},
		{"x", 403},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			r := newRequest("GET", "/latest/meta-data/instance-id", "127.0.0.4:1")
			r.Host = tc.host
			w := record(srv, r)
			if w.Code != tc.status {
				t.Fatalf("Host %q: status %d, want %d", tc.host, w.Code, tc.status)
			}
		})
	}
}

func TestBrowserRequestsRefused(t *testing.T) {
	srv, _ := newServer(t, hardeningConfig, handlers.Options{})
	for _, h := range []string{"Origin", "Referer", "Sec-Fetch-Mode", "Sec-Fetch-Site"} {
		w := serve(srv, "GET", "/latest/meta-data/instance-id", "127.0.0.4:1", h, "https://attacker.example/")
		if w.Code != 403 || strings.Contains(w.Body.String(), "i-") {
			t.Fatalf("%s: status %d body %q, want 403", h, w.Code, w.Body)
		}
		if w := serve(srv, "PUT", "/latest/api/token", "127.0.0.4:1", h, "null", headerTTL, "60"); w.Code != 403 {
			t.Fatalf("%s on PUT: status %d, want 403", h, w.Code)
		}
	}
}

func TestRateLimitPerSource(t *testing.T) {
	srv, clock := newServer(t, hardeningConfig, handlers.Options{})
	get := func(src string) int { return serve(srv, "GET", "/latest/meta-data/instance-id", src).Code }
	for i := 0; i < 3; i++ {
		if c := get("127.0.0.2:1"); c != 200 {
			t.Fatalf("request %d within the burst: %d", i, c)
		}
	}
	if c := get("127.0.0.2:1"); c != http.StatusTooManyRequests {
		t.Fatalf("past the burst: %d, want 429", c)
	}
	if c := get("127.0.0.3:1"); c != 200 {
		t.Fatalf("another source of the same tenant was limited: %d", c)
	}
	if c := get("127.0.0.4:1"); c != 200 {
		t.Fatalf("another tenant was limited: %d", c)
	}
	clock.Advance(time.Second)
	if c := get("127.0.0.2:1"); c != 200 {
		t.Fatalf("a second later: %d, want 200", c)
	}
	w := serve(srv.Admin(), "GET", "/metrics", "127.0.0.1:1")
	if !strings.Contains(w.Body.String(), `imds_proxy_requests_total{imds="v1",route="other",status="429",tenant="limited"} 1`) {
		t.Fatalf("metrics lack the 429:\n%s", w.Body)
	}
}

func TestPathPolicy(t *testing.T) {
	srv, _ := newServer(t, hardeningConfig, handlers.Options{})
	tests := []struct {
		src, path string
		status    int
		body      string
	}{
		{"127.0.0.5:1", "/latest/user-data", 404, ""},
		{"127.0.0.5:1", "/latest/", 200, "dynamic\nmeta-data"},
		{"127.0.0.5:1", "/latest/meta-data/iam/info", 404, ""},
		{"127.0.0.5:1", "/latest/meta-data/iam/", 404, ""},
		{"127.0.0.5:1", "/latest/meta-data/instance-type", 200, "t3.micro"},
		{"127.0.0.5:1", "/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance", 404, ""},
		{"127.0.0.4:1", "/latest/meta-data/", 200, "instance-id\nplacement/"},
		{"127.0.0.4:1", "/latest/meta-data/placement/region", 200, "us-east-1"},
		{"127.0.0.4:1", "/latest/meta-data/instance-type", 404, ""},
		{"127.0.0.4:1", "/latest/dynamic/instance-identity/document", 404, ""},
		{"127.0.0.4:1", "/latest/", 200, "meta-data"},
	}
	for _, tc := range tests {
		w := serve(srv, "GET", tc.path, tc.src)
		if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
			t.Errorf("%s from %s: %d %q, want %d %q", tc.path, tc.src, w.Code, w.Body, tc.status, tc.body)
		}
	}
	if w := serve(srv, "GET", "/latest/meta-data/", "127.0.0.5:1"); strings.Contains(w.Body.String(), "iam/") {
		t.Errorf("the meta-data listing still shows iam/:\n%s", w.Body)
	}
}

func TestConnectionCap(t *testing.T) {
	srv, _ := newServer(t, hardeningConfig, handlers.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ConnContext: handlers.ConnContext, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(srv.Listener(l)) }()
	t.Cleanup(func() { _ = hs.Close() })

	dial := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Skipf("cannot dial from %s: %v", src, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// alive asks for the instance id on c and reports whether it was served.
	alive := func(c net.Conn) bool {
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(c, "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n"); err != nil {
			return false
		}
		buf := make([]byte, 12)
		n, _ := io.ReadFull(c, buf)
		return n == 12 && string(buf) == "HTTP/1.1 200"
	}
	a, b := dial("127.0.0.3"), dial("127.0.0.3")
	if !alive(a) || !alive(b) {
		t.Fatal("connections within the cap were not served")
	}
	if extra := dial("127.0.0.3"); alive(extra) {
		t.Fatal("a third connection from one source was served; the cap is 2")
	}
	if other := dial("127.0.0.2"); !alive(other) {
		t.Fatal("another source was refused while one source was at its cap")
	}
	a.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if alive(dial("127.0.0.3")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection's slot was not given back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSourceStateIsBounded floods the server with distinct source
// addresses: the per-source state stops growing at its bound.
func TestSourceStateIsBounded(t *testing.T) {
	srv, _ := newServer(t, `
tenants:
  - name: everyone
    sources: ["10.0.0.0/8"]
`, handlers.Options{})
	for i := 0; i < 70_000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		serve(srv, "GET", "/latest/meta-data/instance-id", netip.AddrPortFrom(a, 1).String())
	}
	w := serve(srv.Admin(), "GET", "/metrics", "127.0.0.1:1")
	var tracked int
	for _, line := range strings.Split(w.Body.String(), "\n") {
		if strings.HasPrefix(line, "imds_proxy_sources_tracked ") {
			fmt.Sscanf(strings.TrimPrefix(line, "imds_proxy_sources_tracked "), "%d", &tracked)
		}
	}
	if tracked == 0 || tracked > 65536 {
		t.Fatalf("%d sources tracked after 70,000 distinct ones; want at most 65,536", tracked)
	}
}

func newRequest(method, target, src string) *http.Request {
	r, _ := http.NewRequest(method, "http://169.254.169.254"+target, nil)
	r.RemoteAddr = src
	r.RequestURI = target
	return r
}

func record(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestEscapedPaths(t *testing.T) {
	srv, _ := newServer(t, `
tenants:
  - name: tagged
    sources: ["127.0.0.2"]
    instance: {tags: {"team+ops": yes-plus}}
`, handlers.Options{})
	tests := []struct {
		target string
		status int
		body   string
	}{
		{"/latest/meta-data/tags/instance/team%2Bops", 200, "yes-plus"},
		{"/latest/meta-data/tags%2Finstance", 404, ""},
		{"/latest/meta-data/%2e%2e/meta-data/instance-type", 404, ""},
	}
	for _, tc := range tests {
		w := serve(srv, "GET", tc.target, "127.0.0.2:1")
		if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.target, w.Code, w.Body, tc.status, tc.body)
		}
	}
}
