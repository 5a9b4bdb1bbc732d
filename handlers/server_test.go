package handlers_test

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// launch is every test instance's launch time, so golden files are stable.
var launch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is the server's clock in tests: token expiry and log rate limits
// are driven by Advance, never by sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: launch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var (
	signerOnce sync.Once
	signer     *handlers.Signer
	signerErr  error
)

// testSigner is one signer for the whole test binary: a 2048-bit RSA key
// takes long enough to generate that every test making its own would show.
func testSigner(t testing.TB) *handlers.Signer {
	t.Helper()
	signerOnce.Do(func() { signer, signerErr = handlers.NewSigner(rand.Reader, launch) })
	if signerErr != nil {
		t.Fatalf("NewSigner: %v", signerErr)
	}
	return signer
}

// userData is the "full" tenant's user data: not UTF-8, a NUL inside, no
// trailing newline, so that any re-encoding or appended byte shows.
const userData = "#!/bin/sh\necho \xff\xfe\x00 caf\xe9\r\nexit 0"

// Source addresses of the tenants of testConfig, as RemoteAddr values.
const (
	srcFull     = "127.0.0.2:5555" // "full": every attribute set, tokens optional, hop limit 3
	srcFull6    = "[::1]:5555"
	srcFullMap  = "[::ffff:127.0.0.2]:5555"
	srcRequired = "127.0.0.3:5555" // "required": tokens required, user data from YAML
	srcDisabled = "127.0.0.4:5555" // "disabled": imds enabled: false
	srcNoTags   = "127.0.0.5:5555" // "notags": derived attributes, tags hidden, no user data
	srcProxy    = "127.0.0.9:5555" // a trusted proxy
	srcUnknown  = "192.0.2.1:5555" // no tenant
)

// testConfig has one tenant of each kind the handlers tell apart.
// USER_DATA_FILE is replaced by a file holding userData.
const testConfig = `
server:
  trusted_proxies: ["127.0.0.9"]
tenants:
  - name: full
    sources: ["127.0.0.1", "127.0.0.2", "::1"]
    imds: {tokens: optional, hop_limit: 3}
    credentials:
      role_arn: arn:aws:iam::444455556666:role/web-role
    instance:
      instance_id: i-0a1b2c3d4e5f60001
      instance_type: m5.large
      ami_id: ami-0123456789abcdef0
      reservation_id: r-0123456789abcdef0
      account_id: "444455556666"
      availability_zone: eu-west-1b
      availability_zone_id: euw1-az2
      placement_group: pg-web
      partition_number: 2
      private_ip: 10.0.0.10
      public_ip: 54.170.0.10
      hostname: ip-10-0-0-10.eu-west-1.compute.internal
      mac_address: 0e:49:61:0f:c3:11
      interface_id: eni-0123456789abcdef0
      vpc_id: vpc-0123456789abcdef0
      vpc_cidr: 10.0.0.0/16
      subnet_id: subnet-0123456789abcdef0
      subnet_cidr: 10.0.0.0/24
      security_groups: [web, ssh]
      security_group_ids: [sg-0123456789abcdef0, sg-0123456789abcdef1]
      key_name: dev-key
      public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0 dev"
      tags: {Name: web, Env: prod}
    user_data_file: USER_DATA_FILE
  - name: required
    sources: ["127.0.0.3", "fd00:30::10"]
    imds: {tokens: required}
    user_data: "#cloud-config\nhostname: required\n"
  - name: disabled
    sources: ["127.0.0.4"]
    imds: {enabled: false}
  - name: notags
    sources: ["127.0.0.5"]
    imds: {tags: false}
    instance:
      tags: {Name: hidden}
`

// parseConfig parses a test configuration.
func parseConfig(t testing.TB, config string) *tenants.Config {
	t.Helper()
	if strings.Contains(config, "USER_DATA_FILE") {
		name := filepath.Join(t.TempDir(), "user-data")
		if err := os.WriteFile(name, []byte(userData), 0o600); err != nil {
			t.Fatal(err)
		}
		config = strings.ReplaceAll(config, "USER_DATA_FILE", name)
	}
	cfg, err := tenants.Parse("test.yaml", []byte(config), launch)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// newServer serves config with a fake clock and the shared signer, unless
// opts sets its own.
func newServer(t testing.TB, config string, opts handlers.Options) (*handlers.Server, *fakeClock) {
	t.Helper()
	clock := newClock()
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	if opts.Signer == nil {
		opts.Signer = testSigner(t)
	}
	srv, err := handlers.New(parseConfig(t, config), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return srv, clock
}

// serve sends one request from src through h. hdr alternates names and
// values.
func serve(h http.Handler, method, target, src string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = src
	r.Host = "169.254.169.254" // what clients send; httptest's example.com is refused
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// mint gets an IMDSv2 token for src, failing the test if none is given.
func mint(t testing.TB, h http.Handler, src string, ttl string) string {
	t.Helper()
	w := serve(h, http.MethodPut, "/latest/api/token", src, "X-aws-ec2-metadata-token-ttl-seconds", ttl)
	if w.Code != http.StatusOK {
		t.Fatalf("PUT token from %s: status %d, want 200", src, w.Code)
	}
	return w.Body.String()
}

func TestNewRejectsEmptyConfig(t *testing.T) {
	if _, err := handlers.New(&tenants.Config{}, handlers.Options{}); err == nil {
		t.Fatal("New with no tenants succeeded")
	}
	// nil: nothing loaded yet, every source refused until the first Load,
	// which must bring a tenant.
	srv, err := handlers.New(nil, handlers.Options{})
	if err != nil {
		t.Fatalf("New(nil): %v", err)
	}
	r := httptest.NewRequest(http.MethodGet, "/latest/meta-data/instance-id", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Fatalf("before the first Load: status %d, want 403", w.Code)
	}
	if err := srv.Load(nil); err == nil {
		t.Fatal("Load(nil) succeeded")
	}
}

// TestTenantResolution checks that only the connection's address chooses the
// tenant: mapped IPv6 is its IPv4, and X-Forwarded-For counts only when the
// peer is a trusted proxy.
func TestTenantResolution(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	const path = "/latest/meta-data/instance-id"
	fullID := "i-0a1b2c3d4e5f60001"
	tests := []struct {
		name   string
		src    string
		hdr    []string
		status int
		id     string // the instance id served, when 200
	}{
		{name: "ipv4 source", src: srcFull, status: 200, id: fullID},
		{name: "ipv6 source", src: srcFull6, status: 200, id: fullID},
		{name: "ipv4-mapped ipv6 is its ipv4 tenant", src: srcFullMap, status: 200, id: fullID},
		{name: "unknown source", src: srcUnknown, status: 403},
		{name: "unparsable remote address", src: "pipe", status: 403},
		{name: "unknown source naming a tenant in X-Forwarded-For", src: srcUnknown,
			hdr: []string{"X-Forwarded-For", "127.0.0.2"}, status: 403},
		{name: "unknown source naming a tenant in a mapped X-Forwarded-For", src: srcUnknown,
			hdr: []string{"X-Forwarded-For", "::ffff:127.0.0.2"}, status: 403},
		{name: "X-Forwarded-For from an untrusted tenant is ignored", src: srcFull,
			hdr: []string{"X-Forwarded-For", "127.0.0.5"}, status: 200, id: fullID},
		{name: "X-Forwarded-For naming a tenant from a required tenant is ignored", src: srcRequired,
			hdr: []string{"X-Forwarded-For", "127.0.0.2"}, status: 401},
		{name: "trusted proxy relays its client", src: srcProxy,
			hdr: []string{"X-Forwarded-For", "127.0.0.2"}, status: 200, id: fullID},
		{name: "trusted proxy without X-Forwarded-For is itself", src: srcProxy, status: 403},
		{name: "trusted proxy relaying an unknown client", src: srcProxy,
			hdr: []string{"X-Forwarded-For", "192.0.2.7"}, status: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(srv, http.MethodGet, path, tc.src, tc.hdr...)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tc.status, w.Body)
			}
			if tc.id != "" && w.Body.String() != tc.id {
				t.Fatalf("served %q, want %q", w.Body, tc.id)
			}
		})
	}
	// notags is served as itself, not as the tenant its header names: its
	// derived instance id differs from full's.
	if w := serve(srv, http.MethodGet, path, srcNoTags, "X-Forwarded-For", "127.0.0.2"); w.Body.String() == fullID {
		t.Fatalf("notags with X-Forwarded-For naming full was served as full")
	}
}

// TestForbidden checks that an unknown source and a tenant with IMDS
// disabled get 403 on every path and method, the token PUT included, and
// that the connection is closed after it.
func TestForbidden(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	requests := []struct{ method, path string }{
		{http.MethodGet, "/"},
		{http.MethodGet, "/latest/"},
		{http.MethodGet, "/latest/meta-data/instance-id"},
		{http.MethodGet, "/latest/meta-data/no-such-path"},
		{http.MethodGet, "/latest/user-data"},
		{http.MethodGet, "/latest/api/token"},
		{http.MethodPut, "/latest/api/token"},
		{http.MethodPut, "/2021-01-03/api/token"},
		{http.MethodHead, "/latest/meta-data/"},
		{http.MethodPost, "/latest/meta-data/"},
	}
	for _, src := range []struct{ name, addr string }{{"unknown source", srcUnknown}, {"imds disabled", srcDisabled}} {
		for _, rq := range requests {
			t.Run(src.name+"/"+rq.method+" "+rq.path, func(t *testing.T) {
				w := serve(srv, rq.method, rq.path, src.addr, "X-aws-ec2-metadata-token-ttl-seconds", "21600")
				if w.Code != http.StatusForbidden {
					t.Fatalf("status %d, want 403", w.Code)
				}
				if got := w.Header().Get("Server"); got != "EC2ws" {
					t.Errorf("Server %q, want EC2ws", got)
				}
				if got := w.Header().Get(headerTTL); got != "" {
					t.Errorf("403 carries %s: %q", headerTTL, got)
				}
				// A refused client's connection is closed: idle, it would
				// hold a file descriptor for nothing.
				if got := w.Header().Get("Connection"); got != "close" {
					t.Errorf("Connection %q, want close", got)
				}
			})
		}
	}
}

// TestLoadKeepsTokens checks that a reload keeps the tokens of a tenant that
// stays and drops those of a tenant that goes.
func TestLoadKeepsTokens(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	full := mint(t, srv, srcFull, "600")
	required := mint(t, srv, srcRequired, "600")

	next := parseConfig(t, testConfig)
	next.Tenants = slices.DeleteFunc(next.Tenants, func(tn *tenants.Tenant) bool { return tn.Name == "required" })
	if err := srv.Load(next); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcFull, "X-aws-ec2-metadata-token", full); w.Code != http.StatusOK {
		t.Errorf("full's token after reload: status %d, want 200", w.Code)
	}
	if srv.Tokens("required") != nil {
		t.Errorf("removed tenant still has a token store")
	}
	if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcRequired, "X-aws-ec2-metadata-token", required); w.Code != http.StatusForbidden {
		t.Errorf("removed tenant's source: status %d, want 403", w.Code)
	}
	if err := srv.Load(&tenants.Config{}); err == nil {
		t.Errorf("Load of an empty configuration succeeded")
	}
	if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcFull); w.Code != http.StatusOK {
		t.Errorf("a failed Load changed what is served: status %d", w.Code)
	}
}

func TestAdminHealthz(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	w := serve(srv.Admin(), http.MethodGet, "/healthz", "127.0.0.1:1")
	if w.Code != http.StatusOK || w.Body.String() != "ok\n" {
		t.Fatalf("/healthz: %d %q", w.Code, w.Body)
	}
}
