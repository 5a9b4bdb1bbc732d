package handlers

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

const fuzzRouteConfig = `
tenants:
  - name: alpha
    sources: ["127.0.0.2"]
    limits: {requests_per_second: 1000000000, burst: 1000000000}
    instance: {instance_id: i-0aaaaaaaaaaaaaaaa, key_name: alpha-key, public_key: "ssh-ed25519 AAAA alpha", tags: {Name: alpha}}
    credentials: {role_arn: "arn:aws:iam::111122223333:role/alpha"}
    user_data: "#!/bin/sh\necho alpha\n"
  - name: bravo
    sources: ["127.0.0.3"]
    limits: {requests_per_second: 1000000000, burst: 1000000000}
    instance: {instance_id: i-0bbbbbbbbbbbbbbbb}
    imds: {tokens: required}
`

// FuzzRoute throws arbitrary methods, paths, sources and token headers at
// the server. Whatever comes in: no panic, only the statuses IMDS uses, an
// unknown source learns nothing, and no tenant sees another's instance.
func FuzzRoute(f *testing.F) {
	now := time.Unix(1.7e9, 0)
	cfg, err := tenants.Parse("fuzz.yaml", []byte(fuzzRouteConfig), now)
	if err != nil {
		f.Fatal(err)
	}
	srv, err := New(cfg, Options{Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct{ method, path, token, src string }{
		{"GET", "/latest/meta-data/instance-id", "", "127.0.0.2"},
		{"GET", "/latest/meta-data/", "", "127.0.0.3"},
		{"PUT", "/latest/api/token", "", "127.0.0.2"},
		{"GET", "/latest/meta-data/iam/security-credentials/alpha", "x", "127.0.0.2"},
		{"GET", "/2009-04-04/meta-data/public-keys/0/openssh-key/", "", "127.0.0.2"},
		{"HEAD", "/latest/user-data", "", "127.0.0.2"},
		{"GET", "/latest/meta-data/../meta-data/instance-id", "", "127.0.0.9"},
		{"POST", "//latest//api/token", "", "127.0.0.2"},
		{"GET", "/latest/meta-data/tags/instance/Name/", "", "::ffff:127.0.0.2"},
	} {
		f.Add(s.method, s.path, s.token, s.src)
	}
	allowed := map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 405: true, 429: true}
	owner := map[string]string{"127.0.0.2": "i-0aaaaaaaaaaaaaaaa", "127.0.0.3": "i-0bbbbbbbbbbbbbbbb"}
	f.Fuzz(func(t *testing.T, method, path, token, src string) {
		if method == "" || !validToken(method) {
			return // net/http never hands such a method to a handler
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Method = method
		req.URL = &url.URL{Path: path}
		req.RemoteAddr = "[" + src + "]:4242"
		req.Host = "169.254.169.254"
		req.Header.Set(headerTokenTTL, "60")
		if token != "" {
			req.Header[headerToken] = []string{token}
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("%s %q from %s: status %d", method, path, src, rec.Code)
		}
		if got := rec.Header().Get("Server"); got != "EC2ws" {
			t.Fatalf("%s %q: Server %q", method, path, got)
		}
		body := rec.Body.Bytes()
		mine, known := owner[canonicalSource(src)]
		// An unknown source gets 403, or 429 once it has asked too often.
		if !known && rec.Code != http.StatusForbidden && rec.Code != http.StatusTooManyRequests {
			t.Fatalf("%s %q from unknown source %q: status %d, want 403 or 429", method, path, src, rec.Code)
		}
		if known && rec.Code == http.StatusTooManyRequests {
			t.Fatalf("%s %q from %s: 429 with the tenant's limits lifted", method, path, src)
		}
		for addr, id := range owner {
			if id != mine && bytes.Contains(body, []byte(id)) {
				t.Fatalf("%s %q from %s leaked %s's instance id", method, path, src, addr)
			}
		}
	})
}

// canonicalSource is a fuzzed source as the server reads it: the address
// of RemoteAddr, unmapped, without zone.
func canonicalSource(src string) string {
	ap, err := netip.ParseAddrPort("[" + src + "]:4242")
	if err != nil {
		return ""
	}
	return ap.Addr().Unmap().WithZone("").String()
}

// validToken reports whether s is an RFC 9110 token, which is all a method
// can be on the wire.
func validToken(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
}
