package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealth(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		wantErr string
	}{
		{"healthy", http.StatusOK, ""},
		{"unhealthy", http.StatusServiceUnavailable, "503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/healthz" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tc.status)
			}))
			defer admin.Close()
			getenv := func(k string) string {
				if k == adminEnv {
					return admin.Listener.Addr().String()
				}
				return ""
			}
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"health"}, getenv, &out, &errOut)
			switch {
			case tc.wantErr == "" && (err != nil || out.String() != "ok\n"):
				t.Fatalf("err %v, stdout %q; want ok", err, out.String())
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
	// Nothing listening: an error that says where it looked.
	err := run(context.Background(), []string{"health", "--admin", "127.0.0.1:1", "--timeout", "1s"}, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1/healthz") {
		t.Fatalf("err %v, want one naming 127.0.0.1:1/healthz", err)
	}
}
