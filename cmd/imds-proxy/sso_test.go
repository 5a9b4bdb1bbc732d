//go:build e2e

package main

// End-to-end test of an IAM Identity Center (SSO) profile: the real binary
// reads the SDK's cached SSO token and exchanges it at a fake SSO portal
// that speaks the real GetRoleCredentials protocol; an expired login is
// reported with the exact `aws sso login` to run while valid credentials
// keep being served, and a renewed one is picked up without a restart.

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	ssoSession  = "my-sso"
	ssoStartURL = "https://my-sso-portal.awsapps.com/start"
	ssoAccount  = "111122223333"
	ssoRole     = "Developer"
)

// ssoPortal is the SSO portal's GetRoleCredentials: GET
// /federation/credentials?account_id=..&role_name=.. with the bearer token
// in x-amz-sso_bearer_token, answered with roleCredentials whose expiration
// is in epoch milliseconds (aws-sdk-go-v2/service/sso's wire format).
type ssoPortal struct {
	url      string
	lifetime time.Duration // of the credentials it issues
	leaks    *motoLeaks

	mu      sync.Mutex
	valid   map[string]bool // bearer tokens it accepts
	bearers []string        // every bearer token received, in order
	issued  int
	errs    []string // requests it could not make sense of
}

func ssoNewPortal(t *testing.T, lifetime time.Duration, leaks *motoLeaks) *ssoPortal {
	s := &ssoPortal{lifetime: lifetime, leaks: leaks, valid: map[string]bool{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *ssoPortal) accept(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.valid[token] = true
}

func (s *ssoPortal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	if r.Method != http.MethodGet || r.URL.Path != "/federation/credentials" ||
		q.Get("account_id") != ssoAccount || q.Get("role_name") != ssoRole {
		s.errs = append(s.errs, r.Method+" "+r.URL.String())
		http.Error(w, `{"message":"unexpected request"}`, http.StatusBadRequest)
		return
	}
	token := r.Header.Get("x-amz-sso_bearer_token")
	s.bearers = append(s.bearers, token)
	w.Header().Set("Content-Type", "application/json")
	if !s.valid[token] {
		w.Header().Set("X-Amzn-Errortype", "UnauthorizedException")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Session token not found or invalid"}`))
		return
	}
	s.issued++
	type roleCredentials struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
		SessionToken    string `json:"sessionToken"`
		Expiration      int64  `json:"expiration"`
	}
	rc := roleCredentials{
		AccessKeyID:     fmt.Sprintf("ASIASSOPORTAL%07d", s.issued),
		SecretAccessKey: fmt.Sprintf("sso-secret-%d-0123456789abcdefghijklmnopqr", s.issued),
		SessionToken:    fmt.Sprintf("sso-session-token-%d-IQoJb3JpZ2luX2VjEJr", s.issued),
		Expiration:      time.Now().Add(s.lifetime).UnixMilli(),
	}
	s.leaks.add(rc.SecretAccessKey, rc.SessionToken)
	_ = json.NewEncoder(w).Encode(struct {
		RoleCredentials roleCredentials `json:"roleCredentials"`
	}{rc})
}

// lastBearer is the bearer token of the latest request, and how many
// requests there were.
func (s *ssoPortal) lastBearer() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bearers) == 0 {
		return "", 0
	}
	return s.bearers[len(s.bearers)-1], len(s.bearers)
}

// ssoWriteToken writes the SDK's cached token of the session, as `aws sso
// login` leaves it: ~/.aws/sso/cache/<sha1 of the session name>.json
// (ssocreds.StandardCachedTokenFilepath). Atomically: the proxy may be
// reading it.
func ssoWriteToken(t *testing.T, home, token string, expires time.Time) {
	t.Helper()
	sum := sha1.Sum([]byte(ssoSession))
	dir := filepath.Join(home, ".aws", "sso", "cache")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"startUrl":    ssoStartURL,
		"region":      "us-east-1",
		"accessToken": token,
		"expiresAt":   expires.UTC().Format(time.RFC3339),
	})
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".token.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, hex.EncodeToString(sum[:])+".json")); err != nil {
		t.Fatal(err)
	}
}

// ssoWaitCode polls src's credentials until their Code is code.
func ssoWaitCode(t *testing.T, p *e2eProcess, src, code string, leaks *motoLeaks, within time.Duration) motoCreds {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
		_, d, err := motoIMDSCreds(ctx, t, p, src, leaks)
		cancel()
		if err == nil && d.Code == code {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("credentials from %s never answered Code %q within %s: %v, last %+v", src, code, within, err, motoRedact(d))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSSOSession(t *testing.T) {
	e2eLoopback(t)
	const (
		src    = "127.0.0.2"
		late   = "127.0.0.3" // a tenant added once the login has expired
		token1 = "sso-bearer-token-1-aoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH"
		token2 = "sso-bearer-token-2-aoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJI"
		login  = "aws sso login --sso-session " + ssoSession
		// Credentials of 70s refreshed 66s ahead: a refresh every 4s, so
		// that an expired login shows within seconds, with a life above
		// the minute under which the proxy refuses credentials.
		creds = "profile: dev-sso\nrefresh_before: 66s"
	)
	leaks := &motoLeaks{}
	leaks.add(token1, token2)
	portal := ssoNewPortal(t, 70*time.Second, leaks)
	portal.accept(token1)
	portal.accept(token2)

	home := t.TempDir()
	ssoWriteToken(t, home, token1, time.Now().Add(time.Hour))
	awsConfig := "[sso-session " + ssoSession + "]\nsso_start_url = " + ssoStartURL +
		"\nsso_region = us-east-1\nsso_registration_scopes = sso:account:access\n\n" +
		"[profile dev-sso]\nsso_session = " + ssoSession + "\nsso_account_id = " + ssoAccount +
		"\nsso_role_name = " + ssoRole + "\nregion = us-east-1\n"
	env := motoEnv(t, home, "", awsConfig, "", "AWS_ENDPOINT_URL_SSO="+portal.url)
	config := motoConfig(t, "", motoTenant("dev", src, "i-0a1b2c3d4e5f6e001", creds))
	p := motoStartProxy(t, env, config)

	role, first := motoWarmCreds(t, p, src, leaks)
	if role != ssoRole {
		t.Errorf("iam/security-credentials/ = %q, want the SSO role %q", role, ssoRole)
	}
	if !strings.HasPrefix(first.AccessKeyID, "ASIASSOPORTAL") {
		t.Errorf("AccessKeyId = %q, want the portal's", first.AccessKeyID)
	}
	if got, _ := portal.lastBearer(); got != token1 {
		t.Errorf("the portal received bearer token %q, want the cached %q", got, token1)
	}

	var stale motoCreds
	t.Run("expired login", func(t *testing.T) {
		ssoWriteToken(t, home, token1, time.Now().Add(-time.Minute))
		waitFor(t, func() bool {
			log := p.log.String()
			return strings.Contains(log, `"code":"SSOSessionExpired"`) && strings.Contains(log, login)
		})
		// Meanwhile the last valid credentials are still served...
		ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
		defer cancel()
		var err error
		if _, stale, err = motoIMDSCreds(ctx, t, p, src, leaks); err != nil || stale.Code != "Success" {
			t.Fatalf("with the login expired, credentials still valid: %v, %+v; want them served", err, motoRedact(stale))
		}
		// ...and a tenant that has none yet is told what to run.
		writeAtomically(t, config, motoFile(t, motoConfig(t, "",
			motoTenant("dev", src, "i-0a1b2c3d4e5f6e001", creds),
			motoTenant("late", late, "i-0a1b2c3d4e5f6e002", creds+"\nduration: 2h"))))
		d := ssoWaitCode(t, p, late, "SSOSessionExpired", leaks, e2eWait)
		if !strings.Contains(d.Message, "`"+login+"`") {
			t.Errorf("Message = %q, want it to say `%s`", d.Message, login)
		}
	})

	t.Run("renewed login", func(t *testing.T) {
		ssoWriteToken(t, home, token2, time.Now().Add(time.Hour))
		ssoWaitCode(t, p, late, "Success", leaks, e2eWait)
		if got, _ := portal.lastBearer(); got != token2 {
			t.Errorf("after the new login the portal received bearer token %q, want %q", got, token2)
		}
		// The tenant that kept its credentials gets new ones at its next
		// retry, which has backed off meanwhile.
		deadline := time.Now().Add(4 * e2eWait)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
			_, d, err := motoIMDSCreds(ctx, t, p, src, leaks)
			cancel()
			if err == nil && d.Code == "Success" && d.AccessKeyID != first.AccessKeyID && d.AccessKeyID != stale.AccessKeyID {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no new credentials for %s within %s of the new login: %v, last %+v", src, 4*e2eWait, err, motoRedact(d))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	motoStop(t, p, leaks)
	portal.mu.Lock()
	defer portal.mu.Unlock()
	if len(portal.errs) > 0 {
		t.Errorf("the portal received requests it does not serve: %q", portal.errs)
	}
}

// motoFile is the content of the file at path.
func motoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
