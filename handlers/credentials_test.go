package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// fakeCredentials hands out fixed credentials per tenant, or an error.
type fakeCredentials struct {
	byTenant map[string]tenants.Credentials
	err      error
	panics   bool
}

func (f *fakeCredentials) Credentials(_ context.Context, t *tenants.Tenant) (*handlers.CredentialDocuments, error) {
	if f.panics {
		panic("credential source exploded")
	}
	if f.err != nil {
		return nil, f.err
	}
	return handlers.RenderCredentials(f.byTenant[t.Name]), nil
}

var (
	credsFull = tenants.Credentials{AccessKeyID: "ASIAFULLEXAMPLE00001", SecretAccessKey: "full/secret+key", SessionToken: "full-session-token",
		Expiration: launch.Add(time.Hour), AccountID: "444455556666", Retrieved: launch.Add(time.Minute)}
	credsRequired = tenants.Credentials{AccessKeyID: "ASIAREQDEXAMPLE00002", SecretAccessKey: "required-secret", SessionToken: "required-session-token",
		Expiration: launch.Add(2 * time.Hour), Retrieved: launch}
)

const credentialsConfig = testConfig + `
  - name: boxed
    sources: ["127.0.0.6"]
    credentials: {profile: dev}
    container_credentials: {token: "boxed-token-0123456789"}
  - name: anywhere
    sources: ["127.0.0.7"]
    credentials: {profile: dev}
    container_credentials: {token: "anywhere-token-012345", any_source: true}
`

func TestRoleCredentialsDocument(t *testing.T) {
	src := &fakeCredentials{byTenant: map[string]tenants.Credentials{"full": credsFull}}
	srv, _ := newServer(t, testConfig, handlers.Options{Credentials: src})
	w := serve(srv, http.MethodGet, "/latest/meta-data/iam/security-credentials/web-role", srcFull)
	want := `{
  "Code" : "Success",
  "LastUpdated" : "2024-05-01T12:01:00Z",
  "Type" : "AWS-HMAC",
  "AccessKeyId" : "ASIAFULLEXAMPLE00001",
  "SecretAccessKey" : "full/secret+key",
  "Token" : "full-session-token",
  "Expiration" : "2024-05-01T13:00:00Z"
}`
	if w.Code != 200 || w.Body.String() != want || w.Header().Get("Content-Type") != "text/plain" {
		t.Fatalf("status %d, type %q, body:\n%s\nwant:\n%s", w.Code, w.Header().Get("Content-Type"), w.Body, want)
	}
	info := serve(srv, http.MethodGet, "/latest/meta-data/iam/info", srcFull)
	if !strings.Contains(info.Body.String(), `"InstanceProfileArn" : "arn:aws:iam::444455556666:instance-profile/web-role"`) ||
		!strings.Contains(info.Body.String(), `"LastUpdated" : "2024-05-01T12:01:00Z"`) {
		t.Fatalf("iam/info:\n%s", info.Body)
	}
}

func TestIAMInfoNamesTheCredentialsAccount(t *testing.T) {
	c := credsRequired
	c.AccountID = "999988887777"
	src := &fakeCredentials{byTenant: map[string]tenants.Credentials{"boxed": c}}
	srv, _ := newServer(t, credentialsConfig, handlers.Options{Credentials: src})
	info := serve(srv, http.MethodGet, "/latest/meta-data/iam/info", "127.0.0.6:1")
	if !strings.Contains(info.Body.String(), "arn:aws:iam::999988887777:instance-profile/dev") {
		t.Fatalf("iam/info does not name the credentials' account:\n%s", info.Body)
	}
}

func TestCredentialFailureShape(t *testing.T) {
	src := &fakeCredentials{err: &tenants.UpstreamError{Code: "SSOSessionExpired",
		Message: "run `aws sso login --sso-session corp`"}}
	srv, _ := newServer(t, testConfig, handlers.Options{Credentials: src})
	start := time.Now()
	w := serve(srv, http.MethodGet, "/latest/meta-data/iam/security-credentials/web-role", srcFull)
	if time.Since(start) > time.Second {
		t.Fatal("a failure answer took over a second")
	}
	want := "{\n  \"Code\" : \"SSOSessionExpired\",\n  \"LastUpdated\" : \"2024-05-01T12:00:00Z\",\n  \"Message\" : \"run `aws sso login --sso-session corp`\"\n}"
	if w.Code != 200 || w.Body.String() != want {
		t.Fatalf("status %d body:\n%s\nwant:\n%s", w.Code, w.Body, want)
	}
	// Any other error keeps its detail in the log, not in the answer.
	src.err = context.DeadlineExceeded
	w = serve(srv, http.MethodGet, "/latest/meta-data/iam/security-credentials/web-role", srcFull)
	if !strings.Contains(w.Body.String(), `"Code" : "CredentialsNotReady"`) || strings.Contains(w.Body.String(), "deadline") {
		t.Fatalf("generic failure body:\n%s", w.Body)
	}
}

func TestPanicIsA500AndLogged(t *testing.T) {
	var log bytes.Buffer
	src := &fakeCredentials{panics: true}
	srv, _ := newServer(t, testConfig, handlers.Options{Credentials: src, Logger: zerolog.New(&log)})
	w := serve(srv, http.MethodGet, "/latest/meta-data/iam/security-credentials/web-role", srcFull)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", w.Code)
	}
	if !strings.Contains(log.String(), "handler panic") || !strings.Contains(log.String(), "credential source exploded") {
		t.Fatalf("log lacks the panic:\n%s", log.String())
	}
	if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcFull); w.Code != 200 {
		t.Fatalf("after a panic the next request got %d", w.Code)
	}
}

func TestContainerCredentials(t *testing.T) {
	creds := map[string]tenants.Credentials{"boxed": credsFull, "anywhere": credsRequired}
	srv, _ := newServer(t, credentialsConfig, handlers.Options{Credentials: &fakeCredentials{byTenant: creds}})
	h := srv.ContainerCredentials()
	tests := []struct {
		name, method, path, src, auth string
		status                        int
		key, code                     string
	}{
		{"token and source match", "GET", "/credentials", "127.0.0.6:1", "boxed-token-0123456789", 200, credsFull.AccessKeyID, ""},
		{"token from another tenant's source", "GET", "/credentials", "127.0.0.7:1", "boxed-token-0123456789", 403, "", "AccessDenied"},
		{"token from an unknown source", "GET", "/credentials", "192.0.2.7:1", "boxed-token-0123456789", 403, "", "AccessDenied"},
		{"any_source token from anywhere", "GET", "/credentials", "192.0.2.7:1", "anywhere-token-012345", 200, credsRequired.AccessKeyID, ""},
		{"no token", "GET", "/credentials", "127.0.0.6:1", "", 403, "", "AccessDenied"},
		{"wrong token", "GET", "/credentials", "127.0.0.6:1", "boxed-token-0123456788", 403, "", "AccessDenied"},
		{"other path", "GET", "/v2/credentials", "127.0.0.6:1", "boxed-token-0123456789", 404, "", "NotFound"},
		{"wrong method", "POST", "/credentials", "127.0.0.6:1", "boxed-token-0123456789", 405, "", "MethodNotAllowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.auth != "" {
				hdr = []string{"Authorization", tc.auth}
			}
			w := serve(h, tc.method, tc.path, tc.src, hdr...)
			if w.Code != tc.status || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d type %q, want %d application/json; body %s", w.Code, w.Header().Get("Content-Type"), tc.status, w.Body)
			}
			var body struct {
				AccessKeyId, SecretAccessKey, Token, Expiration, AccountId string
				Code                                                       string `json:"code"`
				Message                                                    string `json:"message"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, w.Body)
			}
			if body.AccessKeyId != tc.key || body.Code != tc.code {
				t.Fatalf("key %q code %q, want %q %q", body.AccessKeyId, body.Code, tc.key, tc.code)
			}
			if tc.status == 200 {
				if _, err := time.Parse(time.RFC3339, body.Expiration); err != nil || body.Token == "" || body.SecretAccessKey == "" {
					t.Fatalf("credentials document incomplete: %s", w.Body)
				}
			} else if strings.Contains(w.Body.String(), "secret") {
				t.Fatalf("an error body shows a secret: %s", w.Body)
			}
		})
	}
}

func TestContainerCredentialsFailure(t *testing.T) {
	src := &fakeCredentials{err: &tenants.UpstreamError{Code: "AssumeRoleUnauthorizedAccess", Message: "profile dev may not assume it"}}
	srv, _ := newServer(t, credentialsConfig, handlers.Options{Credentials: src})
	w := serve(srv.ContainerCredentials(), "GET", "/credentials", "127.0.0.6:1", "Authorization", "boxed-token-0123456789")
	want := `{"code":"AssumeRoleUnauthorizedAccess","message":"profile dev may not assume it"}`
	if w.Code != http.StatusServiceUnavailable || w.Body.String() != want {
		t.Fatalf("status %d body %s, want 503 %s", w.Code, w.Body, want)
	}
}

func TestPublishReplacesWhatIsServed(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	tok := mint(t, srv, srcRequired, "60")
	cfg := parseConfig(t, testConfig)
	var mirrored *tenants.Tenant
	for _, tn := range cfg.Tenants {
		if tn.Name == "required" {
			c := *tn
			c.Instance.ID = "i-0fedcba9876543210"
			c.IMDS.TokensRequired = false
			mirrored = &c
		}
	}
	if !srv.Publish("required", mirrored) {
		t.Fatal("Publish found no tenant named required")
	}
	if srv.Publish("nobody", mirrored) {
		t.Fatal("Publish accepted an unknown tenant")
	}
	w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcRequired, headerToken, tok)
	if w.Code != 200 || w.Body.String() != "i-0fedcba9876543210" {
		t.Fatalf("after Publish: %d %q", w.Code, w.Body)
	}
	if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcRequired); w.Code != 200 {
		t.Fatalf("published options (tokens optional) not applied: %d", w.Code)
	}
}

func TestLoadSeedsViewsFromTheViewHook(t *testing.T) {
	var seeded int
	view := func(tn *tenants.Tenant) *tenants.Tenant {
		if tn.Name != "required" {
			return nil
		}
		seeded++
		c := *tn
		c.Instance.ID = "i-0c0ffee0c0ffee000"
		return &c
	}
	srv, _ := newServer(t, testConfig, handlers.Options{View: view})
	if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcRequired, headerToken, mint(t, srv, srcRequired, "60")); w.Body.String() != "i-0c0ffee0c0ffee000" {
		t.Fatalf("a configured tenant was not served as the hook said: %q", w.Body)
	}
	if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcFull); w.Body.String() != "i-0a1b2c3d4e5f60001" {
		t.Fatalf("a tenant the hook declines is not served as configured: %q", w.Body)
	}
	if seeded != 1 {
		t.Fatalf("hook consulted %d times for the required tenant, want 1", seeded)
	}
}

// TestNoIdentityCredentials: on EC2, identity-credentials/ carries
// credentials without permissions. The proxy has none such to give, and a
// tenant's role credentials must never appear there: the path answers 404
// and is not listed, whatever the tenant.
func TestNoIdentityCredentials(t *testing.T) {
	src := &fakeCredentials{byTenant: map[string]tenants.Credentials{"full": credsFull}}
	srv, _ := newServer(t, testConfig, handlers.Options{Credentials: src})
	for _, src := range []string{srcFull, srcRequired, srcNoTags} {
		tok := mint(t, srv, src, "60")
		for _, path := range []string{
			"/latest/meta-data/identity-credentials/",
			"/latest/meta-data/identity-credentials/ec2/info",
			"/latest/meta-data/identity-credentials/ec2/security-credentials/",
			"/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance",
			"/2021-07-15/meta-data/identity-credentials/ec2/security-credentials/ec2-instance",
		} {
			w := serve(srv, http.MethodGet, path, src, headerToken, tok)
			if w.Code != http.StatusNotFound {
				t.Errorf("%s from %s: status %d, want 404", path, src, w.Code)
			}
			if strings.Contains(w.Body.String(), credsFull.AccessKeyID) || strings.Contains(w.Body.String(), credsFull.SecretAccessKey) {
				t.Errorf("%s from %s serves the role's credentials", path, src)
			}
		}
		listing := serve(srv, http.MethodGet, "/latest/meta-data/", src, headerToken, tok).Body.String()
		if contains(listing, "identity-credentials/") {
			t.Errorf("meta-data/ of %s lists identity-credentials/", src)
		}
	}
	// The role's own path still serves them.
	if w := serve(srv, http.MethodGet, "/latest/meta-data/iam/security-credentials/web-role", srcFull); !strings.Contains(w.Body.String(), credsFull.AccessKeyID) {
		t.Fatalf("iam/security-credentials/web-role: %d %q", w.Code, w.Body)
	}
}

// TestContainerRefusalsLookAlike: whatever is wrong with a request for
// container credentials, the answer is the same, byte for byte: a 401 for
// one and a 403 for another told a guesser that a token was valid and only
// its address wrong.
func TestContainerRefusalsLookAlike(t *testing.T) {
	creds := map[string]tenants.Credentials{"boxed": credsFull, "anywhere": credsRequired}
	srv, _ := newServer(t, credentialsConfig, handlers.Options{Credentials: &fakeCredentials{byTenant: creds}})
	h := srv.ContainerCredentials()
	tests := []struct{ name, src, auth string }{
		{"no token", "127.0.0.6:1", ""},
		{"wrong token", "127.0.0.6:2", "boxed-token-0123456788"},
		{"token from another tenant's source", "127.0.0.7:1", "boxed-token-0123456789"},
		{"token from an unknown source", "192.0.2.7:1", "boxed-token-0123456789"},
		{"wrong token from an unknown source", "192.0.2.8:1", "boxed-token-0123456788"},
	}
	var first *httptest.ResponseRecorder
	for _, tc := range tests {
		var hdr []string
		if tc.auth != "" {
			hdr = []string{"Authorization", tc.auth}
		}
		w := serve(h, "GET", "/credentials", tc.src, hdr...)
		if w.Code/100 != 4 {
			t.Fatalf("%s: status %d, want a refusal", tc.name, w.Code)
		}
		if first == nil {
			first = w
			continue
		}
		if w.Code != first.Code || w.Body.String() != first.Body.String() || w.Header().Get("Content-Type") != first.Header().Get("Content-Type") {
			t.Errorf("%s: %d %s, but %s: %d %s", tc.name, w.Code, w.Body, tests[0].name, first.Code, first.Body)
		}
	}
}

// TestContainerFailuresRateLimited: a source that keeps sending wrong
// tokens is answered 429 with Retry-After after a small burst, its right
// token included until it has waited; other sources are not affected.
func TestContainerFailuresRateLimited(t *testing.T) {
	creds := map[string]tenants.Credentials{"boxed": credsFull, "anywhere": credsRequired}
	srv, clock := newServer(t, credentialsConfig, handlers.Options{Credentials: &fakeCredentials{byTenant: creds}})
	h := srv.ContainerCredentials()
	const guesser = "127.0.0.6:1"
	statuses := map[int]int{}
	var retry string
	for i := range 5000 {
		w := serve(h, "GET", "/credentials", guesser, "Authorization", fmt.Sprintf("guess-%026d", i))
		statuses[w.Code]++
		if w.Code == http.StatusTooManyRequests {
			retry = w.Header().Get("Retry-After")
		}
	}
	if statuses[http.StatusTooManyRequests] < 4900 {
		t.Fatalf("5,000 wrong tokens from one source: %v, want 429 past a small burst", statuses)
	}
	secs, err := strconv.Atoi(retry)
	if err != nil || secs < 1 {
		t.Fatalf("Retry-After %q, want whole seconds", retry)
	}
	if w := serve(h, "GET", "/credentials", guesser, "Authorization", "boxed-token-0123456789"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("the right token from a source being limited: %d, want 429", w.Code)
	}
	if w := serve(h, "GET", "/credentials", "192.0.2.7:1", "Authorization", "anywhere-token-012345"); w.Code != http.StatusOK {
		t.Fatalf("another source: %d, want 200", w.Code)
	}
	clock.Advance(time.Duration(secs) * time.Second)
	if w := serve(h, "GET", "/credentials", guesser, "Authorization", "boxed-token-0123456789"); w.Code != http.StatusOK {
		t.Fatalf("the right token after Retry-After: %d, want 200", w.Code)
	}
}

// TestContainerRefusesDisabledTenant: a tenant whose metadata service is
// disabled (imds: {enabled: false}, or a mirrored instance with its
// endpoint off) gets no credentials from the container endpoint either.
func TestContainerRefusesDisabledTenant(t *testing.T) {
	srv, _ := newServer(t, `
tenants:
  - name: off
    sources: ["127.0.0.6"]
    imds: {enabled: false}
    credentials: {profile: dev}
    container_credentials: {token: "off-token-0123456789"}
`, handlers.Options{Credentials: &fakeCredentials{byTenant: map[string]tenants.Credentials{"off": credsFull}}})
	w := serve(srv.ContainerCredentials(), "GET", "/credentials", "127.0.0.6:1", "Authorization", "off-token-0123456789")
	if w.Code != http.StatusForbidden || strings.Contains(w.Body.String(), credsFull.AccessKeyID) {
		t.Fatalf("status %d body %s, want 403 without credentials", w.Code, w.Body)
	}
	if w := serve(srv, "GET", "/latest/meta-data/iam/security-credentials/", "127.0.0.6:1"); w.Code != http.StatusForbidden {
		t.Fatalf("IMDS path: %d, want 403", w.Code)
	}
}

// TestCredentialsEndpointsHonourPathPolicy: a tenant whose path policy
// hides its role's credentials from IMDS is not given them by the
// container or ECS endpoints either.
func TestCredentialsEndpointsHonourPathPolicy(t *testing.T) {
	config := testConfig + `
  - name: hidden
    sources: ["127.0.0.8"]
    credentials: {profile: dev}
    paths: {deny: ["iam/*"]}
    container_credentials: {token: "hidden-token-0123456789"}
`
	creds := &fakeCredentials{byTenant: map[string]tenants.Credentials{"hidden": credsRequired}}
	srv, _ := newServer(t, config, handlers.Options{Credentials: creds})
	for name, w := range map[string]*httptest.ResponseRecorder{
		"container": serve(srv.ContainerCredentials(), http.MethodGet, handlers.ContainerPath, "127.0.0.8:1", "Authorization", "hidden-token-0123456789"),
		"ECS":       serve(srv.ECSCredentials(), http.MethodGet, handlers.ECSPathPrefix+"/x", "127.0.0.8:1"),
	} {
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "path policy hides its role credentials") {
			t.Errorf("%s endpoint: %d %s, want 403 naming the path policy", name, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), credsRequired.AccessKeyID) {
			t.Errorf("%s endpoint serves the hidden credentials", name)
		}
	}
	if w := serve(srv, http.MethodGet, "/latest/meta-data/iam/security-credentials/dev", "127.0.0.8:1"); w.Code != http.StatusNotFound {
		t.Errorf("IMDS path of the hidden role: %d, want 404", w.Code)
	}
}

// sharedCredentials serves every tenant the same documents, as the
// credential cache does tenants of one spec.
type sharedCredentials struct{ docs *handlers.CredentialDocuments }

func (s sharedCredentials) Credentials(context.Context, *tenants.Tenant) (*handlers.CredentialDocuments, error) {
	return s.docs, nil
}

// TestIAMInfoServedAgain: iam/info as served again from what a tenant keeps
// of it (the part after the head every tenant of the same credentials
// shares) is the document first rendered, byte for byte, for each of
// several tenants of those credentials, in any order.
func TestIAMInfoServedAgain(t *testing.T) {
	c := credsFull
	c.AccountID = "999988887777"
	srv, _ := newServer(t, credentialsConfig, handlers.Options{Credentials: sharedCredentials{handlers.RenderCredentials(c)}})
	first := map[string]string{}
	for round := range 3 {
		for _, src := range []string{srcFull, "127.0.0.6:1", "127.0.0.7:1"} {
			w := serve(srv, http.MethodGet, "/latest/meta-data/iam/info", src)
			body := w.Body.String()
			if w.Code != http.StatusOK || w.Header().Get("Content-Length") != strconv.Itoa(len(body)) {
				t.Fatalf("round %d, %s: status %d, Content-Length %q for %d bytes", round, src, w.Code, w.Header().Get("Content-Length"), len(body))
			}
			if round == 0 {
				if !strings.HasPrefix(body, "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2024-05-01T12:01:00Z\",\n  \"InstanceProfileArn\" : \"arn:aws:iam::999988887777:instance-profile/") {
					t.Fatalf("%s: iam/info:\n%s", src, body)
				}
				first[src] = body
				continue
			}
			if body != first[src] {
				t.Errorf("round %d, %s: iam/info\n%s\nfirst served\n%s", round, src, body, first[src])
			}
		}
	}
	if first[srcFull] == first["127.0.0.6:1"] {
		t.Errorf("two roles, one iam/info:\n%s", first[srcFull])
	}
}
