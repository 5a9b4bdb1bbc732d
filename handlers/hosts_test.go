package handlers_test

import (
	"net/http"
	"testing"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// TestEverySecFetchHeaderMarksABrowser: browsers send Sec-Fetch-Dest and
// Sec-Fetch-User on their own as well (a navigation sends all four), and
// no IMDS client sends any Sec-Fetch-* header, so each one alone is
// enough to refuse.
func TestEverySecFetchHeaderMarksABrowser(t *testing.T) {
	srv, _ := newServer(t, hardeningConfig, handlers.Options{})
	for _, h := range []string{"Sec-Fetch-Dest", "Sec-Fetch-User", "Sec-Fetch-Storage-Access", "Sec-Fetch-Frobnicate", "Origin"} {
		t.Run(h, func(t *testing.T) {
			if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", "127.0.0.4:1", h, "?1"); w.Code != http.StatusForbidden {
				t.Fatalf("GET with %s: status %d, want 403", h, w.Code)
			}
			if w := serve(srv, http.MethodPut, "/latest/api/token", "127.0.0.4:1", h, "?1", headerTTL, "60"); w.Code != http.StatusForbidden {
				t.Fatalf("PUT with %s: status %d, want 403", h, w.Code)
			}
		})
	}
	if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", "127.0.0.4:1", "User-Agent", "aws-sdk-go-v2/1.0"); w.Code != http.StatusOK {
		t.Fatalf("an SDK's request: status %d, want 200", w.Code)
	}
}

// TestAdminRefusesOtherSites: the admin listener answers what a DNS
// rebinding page asks (its own name as Host) and what another site's page
// sends no better than IMDS does; the operator's browser, on the status
// page or typing its address, is served.
func TestAdminRefusesOtherSites(t *testing.T) {
	srv, _ := newServer(t, hardeningConfig, handlers.Options{})
	admin := srv.Admin()
	tests := []struct {
		name   string
		host   string
		hdr    []string
		status int
	}{
		{"rebinding page", "attacker.example:9180", []string{"Origin", "http://attacker.example:9180"}, 403},
		{"rebinding name alone", "attacker.example", nil, 403},
		{"another site's origin", "127.0.0.1:9180", []string{"Origin", "http://attacker.example"}, 403},
		{"null origin", "127.0.0.1:9180", []string{"Origin", "null"}, 403},
		{"cross-site fetch", "127.0.0.1:9180", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors"}, 403},
		{"same-site fetch", "127.0.0.1:9180", []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"curl by address", "127.0.0.1:9180", nil, 200},
		{"ipv6 loopback", "[::1]:9180", nil, 200},
		{"localhost", "localhost:9180", nil, 200},
		{"configured name", "imds.corp.example:9180", nil, 200},
		{"typed into the address bar", "localhost:9180", []string{"Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}, 200},
		{"the status page's own link", "127.0.0.1:9180", []string{"Sec-Fetch-Site", "same-origin", "Referer", "http://127.0.0.1:9180/status"}, 200},
		{"same-origin fetch", "127.0.0.1:9180", []string{"Sec-Fetch-Site", "same-origin", "Origin", "http://127.0.0.1:9180"}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/status.json", "/status", "/readyz", "/metrics", "/healthz"} {
				r := newRequest(http.MethodGet, path, "127.0.0.1:1")
				r.Host = tc.host
				for i := 0; i+1 < len(tc.hdr); i += 2 {
					r.Header.Add(tc.hdr[i], tc.hdr[i+1])
				}
				if w := record(admin, r); w.Code != tc.status {
					t.Fatalf("%s with Host %q %v: status %d, want %d", path, tc.host, tc.hdr, w.Code, tc.status)
				}
			}
		})
	}
}
