//go:build e2e

package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// TestMotoMFA: the tenants of a role profile with mfa_serial answer
// MFARequired with the command to run; `imds-proxy mfa` hands the running
// proxy a code, and both tenants are served from the one
// sts:GetSessionToken it makes, without a restart. The code appears in no
// log line.
func TestMotoMFA(t *testing.T) {
	const (
		web, worker = "127.0.0.2", "127.0.0.3"
		serial      = "arn:aws:iam::123456789012:mfa/dev"
		adminRole   = "arn:aws:iam::123456789012:role/admin"
		workerRole  = "arn:aws:iam::123456789012:role/worker"
		code        = "123456"
	)
	m := motoStart(t)
	leaks := &motoLeaks{}
	leaks.add(motoStaticSecret)
	counter := motoNewCounter(t, m)
	config := "[profile mfa]\nrole_arn = " + adminRole + "\nsource_profile = static\nmfa_serial = " + serial + "\nregion = us-east-1\n"
	env := motoEnv(t, t.TempDir(), counter.url, config, motoStaticProfile)
	p := motoStartProxy(t, env, motoConfig(t, "",
		motoTenant("web", web, "i-0a1b2c3d4e5f6d001", "profile: mfa"),
		motoTenant("worker", worker, "i-0a1b2c3d4e5f6d002", "profile: mfa\nrole_arn: "+workerRole)))

	for _, src := range []string{web, worker} {
		_, d, err := motoIMDSCreds(t.Context(), t, p, src, leaks)
		if err != nil {
			t.Fatal(err)
		}
		if d.Code != "MFARequired" || !strings.Contains(d.Message, "`imds-proxy mfa --profile mfa`") {
			t.Fatalf("%s before a code: %+v, want MFARequired naming `imds-proxy mfa --profile mfa`", src, motoRedact(d))
		}
	}
	code0, out, errOut := e2eRun(t, "status", "--json", "--admin", p.adminAddr)
	var st handlers.Status
	if err := json.Unmarshal([]byte(out), &st); code0 != 0 || err != nil || len(st.Tenants) != 2 ||
		st.Tenants[0].Credentials == nil || !strings.HasPrefix(st.Tenants[0].Credentials.LastError, "MFARequired: ") {
		t.Fatalf("status --json = exit %d %q %q, want web's credentials failing with MFARequired", code0, out, errOut)
	}

	// A malformed code is refused before anything reaches AWS.
	if c, _, errOut := e2eRun(t, "mfa", "--profile", "mfa", "--code", "12345", "--admin", p.adminAddr); c == 0 || !strings.Contains(errOut, "InvalidMFACode") {
		t.Errorf("mfa with 5 digits = exit %d, stderr %q; want a failure saying InvalidMFACode", c, errOut)
	}
	if n := counter.count("GetSessionToken", ""); n != 0 {
		t.Fatalf("GetSessionToken calls before a code: %d", n)
	}

	c, out, errOut := e2eRun(t, "mfa", "--profile", "mfa", "--code", code, "--admin", p.adminAddr)
	if c != 0 || !strings.Contains(out, "MFA session of profile mfa ("+serial+") started") || !strings.Contains(out, "web, worker") {
		t.Fatalf("mfa = exit %d, stdout %q, stderr %q; want the session started and both tenants refreshing", c, out, errOut)
	}
	// Served at once: the refresh skips the backoff the failures earned
	// (motoWarmCreds gives up long before the 5 min it could reach).
	for _, src := range []string{web, worker} {
		motoWarmCreds(t, p, src, leaks)
	}
	if n := counter.count("GetSessionToken", ""); n != 1 {
		t.Errorf("GetSessionToken calls: %d, want one for both tenants", n)
	}
	if n := counter.count("AssumeRole", adminRole); n != 2 {
		t.Errorf("AssumeRole of the profile's role: %d, want one per entry (2)", n)
	}
	if n := counter.count("AssumeRole", workerRole); n != 1 {
		t.Errorf("AssumeRole of worker's role: %d, want 1", n)
	}

	log := motoStop(t, p, leaks)
	if regexp.MustCompile(`\b` + code + `\b`).MatchString(log) {
		t.Errorf("the log holds the MFA code:\n%s", log)
	}
	if !strings.Contains(log, "MFA session started") || !strings.Contains(log, `"code":"MFARequired"`) {
		t.Errorf("the log says neither that the session started nor that the tenants waited for it")
	}
}
