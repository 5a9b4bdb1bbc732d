package handlers_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// TestUnknownSourcesAnswersCloseAndAreLimited: every answer to a source no
// tenant lists closes its connection, and a source that keeps asking is
// answered 429 past a small burst instead of a 403 (and a log line) each
// time.
func TestUnknownSourcesAnswersCloseAndAreLimited(t *testing.T) {
	srv, clock := newServer(t, testConfig, handlers.Options{})
	statuses := map[int]int{}
	for range 1000 {
		w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcUnknown)
		statuses[w.Code]++
		if w.Header().Get("Connection") != "close" {
			t.Fatalf("a %d to an unknown source without Connection: close", w.Code)
		}
	}
	if statuses[http.StatusForbidden] == 0 || statuses[http.StatusTooManyRequests] < 900 {
		t.Fatalf("1,000 requests from one unknown source: %v, want a few 403s then 429s", statuses)
	}
	if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", "192.0.2.99:1"); w.Code != http.StatusForbidden {
		t.Fatalf("another unknown source: %d, want 403", w.Code)
	}
	if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcFull); w.Code != http.StatusOK ||
		w.Header().Get("Connection") == "close" {
		t.Fatalf("a tenant: %d Connection %q, want 200 kept alive", w.Code, w.Header().Get("Connection"))
	}
	clock.Advance(time.Minute)
	if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcUnknown); w.Code != http.StatusForbidden {
		t.Fatalf("the flooding source a minute later: %d, want 403", w.Code)
	}
	if !strings.Contains(serve(srv.Admin(), "GET", "/metrics", "127.0.0.1:1").Body.String(), "imds_proxy_unknown_source_rejections_total 1002") {
		t.Errorf("rejections of unknown sources are not all counted")
	}
}
