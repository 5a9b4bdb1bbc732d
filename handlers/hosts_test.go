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
