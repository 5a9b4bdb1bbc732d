package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// TestMFACommand: the code read at the prompt (or given) is posted as
// JSON, and the answer, success or failure, is said plainly.
func TestMFACommand(t *testing.T) {
	var got []handlers.MFARequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req handlers.MFARequest
		if r.Method != http.MethodPost || r.URL.Path != "/mfa" || r.Header.Get("Content-Type") != "application/json" ||
			json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		got = append(got, req)
		w.Header().Set("Content-Type", "application/json")
		if req.Code != "123456" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_ = json.NewEncoder(w).Encode(handlers.MFAFailure{Code: "MFACodeRejected", Message: "AWS refused the MFA code; nothing changed"})
			return
		}
		_ = json.NewEncoder(w).Encode(handlers.MFAAccepted{Profile: "admin", Serial: "arn:aws:iam::111122223333:mfa/dev",
			Expiration: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), Tenants: []string{"web", "worker"}})
	}))
	defer srv.Close()
	getenv := func(k string) string {
		if k == adminEnv {
			return srv.URL
		}
		return ""
	}

	var out, errOut bytes.Buffer
	if err := mfaCommand(t.Context(), []string{"--profile", "admin"}, getenv, strings.NewReader("123456\n"), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if errOut.String() != "MFA code for profile admin: " || !strings.Contains(out.String(), "refreshing the credentials of: web, worker") {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
	err := mfaCommand(t.Context(), []string{"--profile", "admin", "--code", "000000"}, getenv, strings.NewReader(""), &out, &errOut)
	if err == nil || err.Error() != "mfa: MFACodeRejected: AWS refused the MFA code; nothing changed" {
		t.Errorf("a refused code: %v", err)
	}
	if len(got) != 2 || got[0] != (handlers.MFARequest{Profile: "admin", Code: "123456"}) || got[1].Code != "000000" {
		t.Errorf("posted %+v", got)
	}
	if err := mfaCommand(t.Context(), nil, getenv, strings.NewReader(""), &out, &errOut); err == nil || !strings.Contains(err.Error(), "--profile is required") {
		t.Errorf("no profile: %v", err)
	}
	if err := mfaCommand(t.Context(), []string{"--profile", "admin"}, getenv, strings.NewReader(""), &out, &errOut); err == nil {
		t.Errorf("no code at the prompt: no error")
	}
}
