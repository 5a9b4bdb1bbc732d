package handlers_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// startServer serves h on a real loopback listener, as imds-proxy does, so
// that what net/http itself does to responses is part of the test.
func startServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnContext = handlers.ConnContext
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// requireLoopback skips the test where ip cannot be a local address: Linux
// answers on all of 127/8, other systems only on the addresses configured.
func requireLoopback(t *testing.T, ips ...string) {
	t.Helper()
	for _, ip := range ips {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Skipf("%s is not a local address here: %v", ip, err)
		}
		l.Close()
	}
}

// clientFrom is an HTTP client whose connections leave from the local
// address ip (any 127/8 address works on loopback), choosing the tenant.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // SDKs don't follow redirects, and neither may a test
		},
	}
}

// TestHead: HEAD answers the GET's status and headers, Content-Length
// included, and no body.
func TestHead(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	ts := startServer(t, srv)
	tok := mint(t, srv, srcFull, "21600")
	tests := []struct {
		name, from, path, token string
		status                  int
	}{
		{"version list", "127.0.0.1", "/", "", 200},
		{"listing", "127.0.0.1", "/latest/meta-data/", "", 200},
		{"listing without slash", "127.0.0.1", "/latest/meta-data", "", 200},
		{"value", "127.0.0.1", "/latest/meta-data/instance-id", "", 200},
		{"value with a token", "127.0.0.1", "/latest/meta-data/instance-id", tok, 200},
		{"user data", "127.0.0.1", "/latest/user-data", "", 200},
		{"identity document", "127.0.0.1", "/latest/dynamic/instance-identity/document", "", 200},
		{"404", "127.0.0.1", "/latest/meta-data/nope", "", 404},
		{"404 with a token", "127.0.0.1", "/latest/meta-data/nope", tok, 404},
		{"401", "127.0.0.3", "/latest/meta-data/", "", 401},
		{"403", "127.0.0.4", "/latest/meta-data/", "", 403},
		{"405 on the token path", "127.0.0.1", "/latest/api/token", "", 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireLoopback(t, tc.from)
			c := clientFrom(tc.from)
			do := func(method string) (*http.Response, []byte) {
				t.Helper()
				req, err := http.NewRequest(method, ts.URL+tc.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.token != "" {
					req.Header.Set(headerToken, tc.token)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				return resp, body
			}
			get, getBody := do(http.MethodGet)
			head, headBody := do(http.MethodHead)
			if get.StatusCode != tc.status || head.StatusCode != tc.status {
				t.Fatalf("GET %d, HEAD %d, want %d", get.StatusCode, head.StatusCode, tc.status)
			}
			if len(headBody) != 0 {
				t.Errorf("HEAD body %q, want none", headBody)
			}
			if got := get.Header.Get("Content-Length"); got != strconv.Itoa(len(getBody)) {
				t.Errorf("GET Content-Length %q for %d bytes", got, len(getBody))
			}
			for _, h := range []string{"Content-Length", "Content-Type", "Server", "Allow", headerTTL} {
				if g, h2 := get.Header.Values(h), head.Header.Values(h); strings.Join(g, ",") != strings.Join(h2, ",") {
					t.Errorf("%s: GET %q, HEAD %q", h, g, h2)
				}
			}
			if get.Header.Get("Date") == "" || head.Header.Get("Date") == "" {
				t.Errorf("no Date header")
			}
			if get.Header.Get("Server") != "EC2ws" {
				t.Errorf("Server %q", get.Header.Get("Server"))
			}
			if len(get.TransferEncoding) != 0 || get.ContentLength != int64(len(getBody)) {
				t.Errorf("GET body is not sent with its length: %v %d", get.TransferEncoding, get.ContentLength)
			}
		})
	}
}

// rawExchange sends raw request bytes on a new connection from the local
// address ip and reads one response.
func rawExchange(t *testing.T, addr, ip, request string) (*http.Response, []byte) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(request, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestOverTheWire sends requests no well-behaved client library would
// produce: an absolute-form target (what a client configured with IMDS as
// its HTTP proxy sends), and paths left exactly as written.
func TestOverTheWire(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	addr := startServer(t, srv).Listener.Addr().String()
	tests := []struct {
		name, request string
		status        int
		body          string // checked when not ""
	}{
		{"absolute-form GET",
			"GET http://169.254.169.254/latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n",
			200, "i-0a1b2c3d4e5f60001"},
		{"absolute-form GET with a port",
			"GET http://169.254.169.254:80/latest/meta-data/placement/region HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n",
			200, "eu-west-1"},
		{"absolute-form token PUT",
			"PUT http://169.254.169.254/latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			200, ""},
		{"HTTP/1.0 without Host",
			"GET /latest/meta-data/instance-id HTTP/1.0\r\n\r\n", 200, "i-0a1b2c3d4e5f60001"},
		{"dot dot left as written",
			"GET /latest/meta-data/../meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n", 404, ""},
		{"leading double slash, as IMDS ignores empty segments",
			"GET //latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n", 200, "i-0a1b2c3d4e5f60001"},
		{"double slash inside",
			"GET /latest/meta-data//instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n", 200, "i-0a1b2c3d4e5f60001"},
		{"raw NUL",
			"GET /latest/meta-data/\x00instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n", 400, ""},
		{"escaped NUL",
			"GET /latest/meta-data/instance-id%00 HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n", 404, ""},
		{"8 KiB path",
			"GET /latest/meta-data/" + strings.Repeat("a", 8<<10) + " HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n", 404, ""},
		{"asterisk-form",
			"GET * HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawExchange(t, addr, "127.0.0.1", tc.request)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %.80q)", resp.StatusCode, tc.status, body)
			}
			if tc.body != "" && string(body) != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
		})
	}
}
