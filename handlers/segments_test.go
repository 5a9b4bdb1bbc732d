package handlers_test

import (
	"net/http"
	"testing"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// TestEmptySegments: IMDS ignores empty path segments, and Amazon's
// ec2-metadata script relies on it; a doubled slash anywhere answers what
// the path without it answers.
func TestEmptySegments(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	tok := mint(t, srv, srcRequired, "60")
	tests := []struct {
		name, method, path, clean, src string
		hdr                            []string
	}{
		{"leading", "GET", "//latest/meta-data/instance-id", "/latest/meta-data/instance-id", srcFull, nil},
		{"after the version", "GET", "/latest//meta-data/instance-id", "/latest/meta-data/instance-id", srcFull, nil},
		{"inside", "GET", "/latest/meta-data//instance-id", "/latest/meta-data/instance-id", srcFull, nil},
		{"many", "GET", "///latest///meta-data///placement///region", "/latest/meta-data/placement/region", srcFull, nil},
		{"listing", "GET", "/latest/meta-data//", "/latest/meta-data/", srcFull, nil},
		{"version list", "GET", "//", "/", srcFull, nil},
		{"user data", "GET", "/latest//user-data", "/latest/user-data", srcFull, nil},
		{"tag", "GET", "/latest/meta-data/tags//instance//Name", "/latest/meta-data/tags/instance/Name", srcFull, nil},
		{"absent", "GET", "/latest//meta-data/nope", "/latest/meta-data/nope", srcFull, nil},
		{"head", "HEAD", "/latest//meta-data/instance-id", "/latest/meta-data/instance-id", srcFull, nil},
		{"with a token", "GET", "/latest//meta-data/instance-id", "/latest/meta-data/instance-id", srcRequired, []string{headerToken, tok}},
		{"token path, wrong method", "GET", "//latest//api/token", "/latest/api/token", srcFull, nil},
		{"token path, other version", "PUT", "/2021-01-03//api/token", "/2021-01-03/api/token", srcFull, []string{headerTTLLower, "60"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := serve(srv, tc.method, tc.path, tc.src, tc.hdr...)
			want := serve(srv, tc.method, tc.clean, tc.src, tc.hdr...)
			if got.Code != want.Code || got.Body.String() != want.Body.String() {
				t.Fatalf("%s: %d %q; %s answers %d %q", tc.path, got.Code, got.Body, tc.clean, want.Code, want.Body)
			}
			for _, h := range []string{"Content-Type", "Content-Length", "Allow", headerTTL} {
				if got.Header().Get(h) != want.Header().Get(h) {
					t.Errorf("%s: %s %q, want %q", tc.path, h, got.Header().Get(h), want.Header().Get(h))
				}
			}
		})
	}

	// The token itself: minted through a doubled slash too.
	w := serve(srv, http.MethodPut, "//latest//api/token", srcFull, headerTTLLower, "60")
	if w.Code != http.StatusOK || len(w.Body.String()) != 56 {
		t.Fatalf("PUT //latest//api/token: %d %q, want a token", w.Code, w.Body)
	}
}
