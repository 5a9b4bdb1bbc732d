package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// fakeMFA accepts the code "123456" for the profile "dev" and refuses
// every other one as STS would.
type fakeMFA struct {
	calls []handlers.MFARequest
}

func (f *fakeMFA) AcceptMFA(_ context.Context, profile, code string) (handlers.MFAAccepted, error) {
	f.calls = append(f.calls, handlers.MFARequest{Profile: profile, Code: code})
	switch {
	case profile != "dev":
		return handlers.MFAAccepted{}, &tenants.UpstreamError{Code: "NoMFASerial", Message: "profile has no mfa_serial"}
	case code != "123456":
		return handlers.MFAAccepted{}, &tenants.UpstreamError{Code: "MFACodeRejected",
			Message: "AWS refused the MFA code; nothing changed", Err: errRefused}
	}
	return handlers.MFAAccepted{Profile: "dev", Serial: "arn:aws:iam::111122223333:mfa/dev",
		Expiration: launch.Add(12 * time.Hour), Tenants: []string{"full"}}, nil
}

var errRefused = &tenants.UpstreamError{Code: "AccessDenied", Message: "MultiFactorAuthentication failed with invalid MFA one time pass code."}

func postMFA(h http.Handler, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/mfa", strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:5000"
	r.Host = "127.0.0.1:9180"
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestAdminMFA(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		hdr      []string
		status   int
		code     string // of the failure; "" for success
		accepted bool   // the acceptor was called
	}{
		{name: "accepted", body: `{"profile":"dev","code":"123456"}`, status: 200, accepted: true},
		{name: "wrong code", body: `{"profile":"dev","code":"654321"}`, status: 422, code: "MFACodeRejected", accepted: true},
		{name: "no mfa_serial", body: `{"profile":"plain","code":"123456"}`, status: 400, code: "NoMFASerial", accepted: true},
		{name: "missing code", body: `{"profile":"dev"}`, status: 400, code: "BadRequest"},
		{name: "unknown field", body: `{"profile":"dev","code":"123456","x":1}`, status: 400, code: "BadRequest"},
		{name: "not JSON", body: `profile=dev&code=123456`, hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415, code: "BadRequest"},
		{name: "from another site", body: `{"profile":"dev","code":"123456"}`, hdr: []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}, status: 403},
		{name: "from the status page itself", body: `{"profile":"dev","code":"123456"}`, hdr: []string{"Origin", "http://127.0.0.1:9180", "Sec-Fetch-Site", "same-origin"}, status: 403, code: "Forbidden"},
		{name: "rebinding host", body: `{"profile":"dev","code":"123456"}`, hdr: []string{"Host", "evil.example"}, status: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			mfa := &fakeMFA{}
			srv, _ := newServer(t, testConfig, handlers.Options{MFA: mfa, Logger: zerolog.New(&log)})
			h := srv.Admin()
			hdr := tc.hdr
			var host string
			if len(hdr) == 2 && hdr[0] == "Host" {
				host, hdr = hdr[1], nil
			}
			var w *httptest.ResponseRecorder
			if host != "" {
				r := httptest.NewRequest(http.MethodPost, "/mfa", strings.NewReader(tc.body))
				r.RemoteAddr, r.Host = "127.0.0.1:5000", host
				r.Header.Set("Content-Type", "application/json")
				w = httptest.NewRecorder()
				h.ServeHTTP(w, r)
			} else {
				w = postMFA(h, tc.body, hdr...)
			}
			if w.Code != tc.status {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tc.status)
			}
			if got := len(mfa.calls) > 0; got != tc.accepted {
				t.Errorf("acceptor called: %v, want %v", got, tc.accepted)
			}
			if tc.code != "" {
				var f handlers.MFAFailure
				if err := json.Unmarshal(w.Body.Bytes(), &f); err != nil || f.Code != tc.code || f.Message == "" {
					t.Errorf("body %s (%v), want code %s and a message", w.Body, err, tc.code)
				}
			}
			if tc.status == 200 {
				var ok handlers.MFAAccepted
				if err := json.Unmarshal(w.Body.Bytes(), &ok); err != nil || ok.Profile != "dev" || len(ok.Tenants) != 1 {
					t.Errorf("body %s (%v), want the accepted session", w.Body, err)
				}
				if !strings.Contains(log.String(), "MFA session started") {
					t.Errorf("log %s: no line for the session", log.String())
				}
			}
			for _, code := range []string{"123456", "654321"} {
				if strings.Contains(log.String(), code) {
					t.Errorf("the log holds the MFA code %s: %s", code, log.String())
				}
			}
		})
	}
}

func TestAdminMFAMethodsAndNoAcceptor(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	if w := postMFA(srv.Admin(), `{"profile":"dev","code":"123456"}`); w.Code != http.StatusNotFound {
		t.Errorf("POST /mfa without an acceptor: %d, want 404", w.Code)
	}
	if w := serve(srv.Admin(), http.MethodGet, "/mfa", "127.0.0.1:1"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /mfa: %d, want 405", w.Code)
	}
}
