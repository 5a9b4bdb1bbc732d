package handlers_test

import (
	"net/http"
	"testing"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// TestOptions: every 405 names OPTIONS in its Allow, so OPTIONS is served:
// 200, the same Allow, an empty body and no Content-Type, on the token
// path and elsewhere.
func TestOptions(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	tests := []struct{ path, src, allow string }{
		{"/latest/api/token", srcFull, "OPTIONS, PUT"},
		{"/latest/api/token", srcRequired, "OPTIONS, PUT"},
		{"/latest/meta-data/", srcFull, "OPTIONS, GET, HEAD"},
		{"/latest/meta-data/instance-id", srcRequired, "OPTIONS, GET, HEAD"},
		{"/2021-01-03/api/token", srcFull, "OPTIONS, GET, HEAD"},
		{"/", srcFull, "OPTIONS, GET, HEAD"},
	}
	for _, tc := range tests {
		t.Run(tc.path+" from "+tc.src, func(t *testing.T) {
			refused := serve(srv, http.MethodPost, tc.path, tc.src)
			if refused.Code != http.StatusMethodNotAllowed || refused.Header().Get("Allow") != tc.allow {
				t.Fatalf("POST: %d, Allow %q; want 405, %q", refused.Code, refused.Header().Get("Allow"), tc.allow)
			}
			w := serve(srv, http.MethodOptions, tc.path, tc.src)
			if w.Code != http.StatusOK {
				t.Fatalf("OPTIONS: status %d, want 200: Allow names it", w.Code)
			}
			h := w.Header()
			if h.Get("Allow") != tc.allow || h.Get("Content-Length") != "0" || w.Body.Len() != 0 ||
				h.Get("Server") != "EC2ws" || h["Content-Type"] != nil {
				t.Errorf("OPTIONS: Allow %q, Content-Length %q, Content-Type %q, Server %q, body %q",
					h.Get("Allow"), h.Get("Content-Length"), h["Content-Type"], h.Get("Server"), w.Body)
			}
		})
	}
	// Browsers never get an answer, preflight or not.
	if w := serve(srv, http.MethodOptions, "/latest/api/token", srcFull, "Origin", "https://example.com"); w.Code != http.StatusForbidden {
		t.Errorf("preflight from a page: status %d, want 403", w.Code)
	}
}

// TestTokenTTLOnEveryResponse: a request carrying a valid token gets its
// remaining TTL on every response, 405 and OPTIONS included; without a
// token, or with a bad one, there is no such header.
func TestTokenTTLOnEveryResponse(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	tok := mint(t, srv, srcFull, "600")
	tests := []struct {
		name, method, path string
		status             int
	}{
		{"value", "GET", "/latest/meta-data/instance-id", 200},
		{"404", "GET", "/latest/meta-data/nope", 404},
		{"405 on the token path", "GET", "/latest/api/token", 405},
		{"405 elsewhere", "DELETE", "/latest/meta-data/", 405},
		{"OPTIONS", "OPTIONS", "/latest/meta-data/", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(srv, tc.method, tc.path, srcFull, headerToken, tok)
			if w.Code != tc.status || w.Header().Get(headerTTL) != "600" {
				t.Errorf("with a token: %d, TTL %q; want %d, 600", w.Code, w.Header().Get(headerTTL), tc.status)
			}
			for _, hdr := range [][]string{nil, {headerToken, "not-a-token"}} {
				if w := serve(srv, tc.method, tc.path, srcFull, hdr...); w.Header()[http.CanonicalHeaderKey(headerTTL)] != nil {
					t.Errorf("%v: TTL header %q", hdr, w.Header().Get(headerTTL))
				}
			}
		})
	}
}
