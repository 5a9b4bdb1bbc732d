package handlers_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// fakeStates reports per-tenant states chosen by the test.
type fakeStates map[string]handlers.TenantState

func (f fakeStates) TenantState(t *tenants.Tenant) handlers.TenantState { return f[t.Name] }

func TestReadyz(t *testing.T) {
	states := fakeStates{
		"full": {Credentials: &handlers.CredentialState{Valid: true, Expiration: launch.Add(time.Hour)}},
	}
	srv, _ := newServer(t, testConfig, handlers.Options{Status: states})
	admin := srv.Admin()
	if w := serve(admin, "GET", "/readyz", "127.0.0.1:1"); w.Code != 200 || !strings.Contains(w.Body.String(), `"ready": true`) {
		t.Fatalf("all ready: %d %s", w.Code, w.Body)
	}
	states["full"] = handlers.TenantState{Credentials: &handlers.CredentialState{LastError: "SSOSessionExpired: run `aws sso login --sso-session corp`"}}
	states["required"] = handlers.TenantState{Mirror: &handlers.MirrorState{LastError: "InvalidInstanceID.NotFound: i-0123 does not exist"}}
	w := serve(admin, "GET", "/readyz", "127.0.0.1:1")
	var body struct {
		Ready   bool
		Missing []handlers.Problem
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 503 || body.Ready {
		t.Fatalf("not ready: %d %s (%v)", w.Code, w.Body, err)
	}
	want := []handlers.Problem{
		{Tenant: "full", What: "credentials", Reason: "SSOSessionExpired: run `aws sso login --sso-session corp`"},
		{Tenant: "required", What: "mirror", Reason: "InvalidInstanceID.NotFound: i-0123 does not exist"},
	}
	if len(body.Missing) != 2 || body.Missing[0] != want[0] || body.Missing[1] != want[1] {
		t.Fatalf("missing = %+v, want %+v", body.Missing, want)
	}
}

func TestMetrics(t *testing.T) {
	states := fakeStates{"full": {Credentials: &handlers.CredentialState{Valid: true, Expiration: launch.Add(30 * time.Minute), Fetches: 3, Failures: 1}}}
	srv, _ := newServer(t, testConfig, handlers.Options{Status: states})
	tok := mint(t, srv, srcFull, "60")
	serve(srv, "GET", "/latest/meta-data/instance-id", srcFull, headerToken, tok)
	serve(srv, "GET", "/latest/meta-data/instance-id", srcFull)
	serve(srv, "GET", "/latest/meta-data/nope", srcFull)
	serve(srv, "GET", "/latest/meta-data/", srcRequired)
	serve(srv, "GET", "/latest/meta-data/instance-id", srcUnknown)
	serve(srv, "GET", "/latest/meta-data/instance-id", srcUnknown)
	srv.Metrics().ObserveUpstream("credentials", 120*time.Millisecond, "")
	srv.Metrics().ObserveUpstream("credentials", 2*time.Second, "AccessDenied")
	w := serve(srv.Admin(), "GET", "/metrics", "127.0.0.1:1")
	text := w.Body.String()
	for _, line := range []string{
		`imds_proxy_requests_total{imds="v2",route="token",status="200",tenant="full"} 1`,
		`imds_proxy_requests_total{imds="v2",route="metadata",status="200",tenant="full"} 1`,
		`imds_proxy_requests_total{imds="v1",route="metadata",status="200",tenant="full"} 1`,
		`imds_proxy_requests_total{imds="v1",route="other",status="404",tenant="full"} 1`,
		`imds_proxy_requests_total{imds="v1",route="other",status="401",tenant="required"} 1`,
		`imds_proxy_unknown_source_rejections_total 2`,
		`imds_proxy_tokens_live{tenant="full"} 1`,
		`imds_proxy_credentials_expiry_seconds{tenant="full"} 1800`,
		`imds_proxy_credential_refreshes_total{tenant="full"} 3`,
		`imds_proxy_credential_refresh_failures_total{tenant="full"} 1`,
		`imds_proxy_tenant_ready{tenant="full"} 1`,
		`imds_proxy_upstream_call_seconds_count{kind="credentials",outcome="error"} 1`,
		`imds_proxy_upstream_failures_total{code="AccessDenied",kind="credentials"} 1`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("metrics lack %s", line)
		}
	}
	if strings.Contains(text, tok) {
		t.Fatal("metrics contain an IMDS token")
	}
}

func TestStatus(t *testing.T) {
	states := fakeStates{"full": {Credentials: &handlers.CredentialState{Valid: true, KeyID: "****************0001",
		Expiration: launch.Add(time.Hour), Refreshed: launch}},
		// Upstream text reaches the page: it must be escaped.
		"required": {Credentials: &handlers.CredentialState{LastError: `AccessDenied: <script>alert("x")</script>`}}}
	srv, _ := newServer(t, testConfig, handlers.Options{Status: states})
	mint(t, srv, srcFull, "60")
	w := serve(srv.Admin(), "GET", "/status.json", "127.0.0.1:1")
	var st handlers.Status
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatalf("status.json: %v\n%s", err, w.Body)
	}
	if len(st.Tenants) != 4 || st.Tenants[0].Name != "full" || st.Tenants[0].InstanceID != "i-0a1b2c3d4e5f60001" ||
		st.Tenants[0].Role != "web-role" || st.Tenants[0].Tokens != 1 || !st.Tenants[0].Ready ||
		st.Tenants[0].Credentials == nil || st.Tenants[0].Credentials.KeyID != "****************0001" {
		t.Fatalf("status: %+v", st.Tenants[0])
	}
	if st.Tenants[1].IMDS != "required" || st.Tenants[2].IMDS != "disabled" {
		t.Fatalf("imds modes: %s %s", st.Tenants[1].IMDS, st.Tenants[2].IMDS)
	}
	page := serve(srv.Admin(), "GET", "/status", "127.0.0.1:1")
	if page.Code != 200 || !strings.HasPrefix(page.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(page.Body.String(), `<tr id="tenant-full">`) || !strings.Contains(page.Body.String(), "i-0a1b2c3d4e5f60001") {
		t.Fatalf("status page: %d\n%s", page.Code, page.Body)
	}
	if body := page.Body.String(); strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatalf("status page does not escape upstream text:\n%s", body)
	}
}
