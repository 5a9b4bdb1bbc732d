package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// podToken is shaped like a projected service account token: a JWT whose
// claims name the audience and the expiry. Only the fake reviewer knows
// whether it is valid.
func podToken(name string, exp time.Time, aud ...string) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"aud": aud, "exp": exp.Unix(), "sub": "system:serviceaccount:" + name})
	return enc.EncodeToString([]byte(`{"alg":"RS256","kid":"k1"}`)) + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString([]byte("signature-of-"+name))
}

func validToken(name string) string {
	return podToken(name, launch.Add(time.Hour), handlers.PodIdentityAudience)
}

// fakeReviewer is the API server's TokenReview: tokens it knows are
// authenticated as their identity, any other is refused. While gate is
// set, each review waits for it.
type fakeReviewer struct {
	mu          sync.Mutex
	ids         map[string]handlers.PodIdentity
	err         error
	gate        chan struct{}
	calls       int
	inFlight    int
	maxInFlight int
}

func (f *fakeReviewer) Review(ctx context.Context, token string) (handlers.PodIdentity, error) {
	f.mu.Lock()
	f.calls++
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	gate := f.gate
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return handlers.PodIdentity{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return handlers.PodIdentity{}, f.err
	}
	id, ok := f.ids[token]
	if !ok {
		return handlers.PodIdentity{}, fmt.Errorf("%w: invalid bearer token", handlers.ErrTokenRefused)
	}
	return id, nil
}

func (f *fakeReviewer) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func identity(ns, sa string) handlers.PodIdentity {
	return handlers.PodIdentity{Namespace: ns, ServiceAccount: sa, PodName: sa + "-7d9f", PodUID: "0b3c8a1e-0000-4000-8000-0000000000" + fmt.Sprint(len(sa))}
}

// serviceAccounts is the table the tests' configuration gives: three
// service accounts with tenants, one of them disabled.
var serviceAccounts = map[string]string{"team-a/app": "full", "team-b/worker": "boxed", "team-c/off": "disabled"}

type podIdentityReply struct {
	AccessKeyId, SecretAccessKey, Token, Expiration, AccountId string
	RoleArn                                                    *string
	Code                                                       string `json:"code"`
	Message                                                    string `json:"message"`
}

func newPodIdentityServer(t testing.TB, rev *fakeReviewer) (*handlers.Server, *fakeClock) {
	t.Helper()
	creds := map[string]tenants.Credentials{"full": credsFull, "boxed": credsRequired}
	srv, clock := newServer(t, credentialsConfig, handlers.Options{Credentials: &fakeCredentials{byTenant: creds}, TokenReviewer: rev})
	srv.SetServiceAccounts(serviceAccounts)
	return srv, clock
}

func podIdentityGET(t testing.TB, h http.Handler, src, token string) (int, podIdentityReply, http.Header) {
	t.Helper()
	hdr := []string{}
	if token != "" {
		hdr = append(hdr, "Authorization", token)
	}
	w := serve(h, http.MethodGet, handlers.PodIdentityPath, src, hdr...)
	var body podIdentityReply
	if w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %s", w.Header().Get("Content-Type"), w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, w.Body)
	}
	if w.Code != http.StatusOK && (body.AccessKeyId != "" || strings.Contains(w.Body.String(), "secret")) {
		t.Fatalf("a refusal carries credentials: %s", w.Body)
	}
	return w.Code, body, w.Header()
}

func TestPodIdentityCredentials(t *testing.T) {
	rev := &fakeReviewer{ids: map[string]handlers.PodIdentity{
		validToken("team-a:app"):    identity("team-a", "app"),
		validToken("team-b:worker"): identity("team-b", "worker"),
		validToken("team-z:nobody"): identity("team-z", "nobody"),
		validToken("team-c:off"):    identity("team-c", "off"),
	}}
	foreign := podToken("team-a:app", launch.Add(time.Hour), "https://kubernetes.default.svc")
	expired := podToken("team-a:app", launch.Add(-time.Second), handlers.PodIdentityAudience)
	for _, tc := range []struct {
		name, src, token string
		status           int
		key, code        string
		reviewed         bool
	}{
		{"the service account's tenant", srcUnknown, validToken("team-a:app"), 200, credsFull.AccessKeyID, "", true},
		{"the source chooses nothing", srcRequired, validToken("team-a:app"), 200, credsFull.AccessKeyID, "", true},
		{"another service account, another tenant", "10.1.2.3:4000", validToken("team-b:worker"), 200, credsRequired.AccessKeyID, "", true},
		{"a service account no tenant lists", "10.1.2.4:4000", validToken("team-z:nobody"), 403, "", "AccessDenied", true},
		{"a disabled tenant", "10.1.2.5:4000", validToken("team-c:off"), 403, "", "AccessDenied", true},
		{"a token the API server refuses", "10.1.2.6:4000", validToken("team-a:forged"), 401, "", "InvalidToken", true},
		{"another audience", "10.1.2.7:4000", foreign, 401, "", "InvalidToken", false},
		{"expired", "10.1.2.8:4000", expired, 401, "", "InvalidToken", false},
		{"not a JWT", "10.1.2.9:4000", "Bearer 0123456789", 401, "", "InvalidToken", false},
		{"oversized", "10.1.2.10:4000", validToken("team-a:app") + strings.Repeat("A", handlers.MaxPodIdentityToken), 401, "", "InvalidToken", false},
		{"no token", "10.1.2.11:4000", "", 401, "", "InvalidToken", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newPodIdentityServer(t, rev)
			before := rev.Calls()
			status, body, _ := podIdentityGET(t, srv.PodIdentityCredentials(), tc.src, tc.token)
			if status != tc.status || body.AccessKeyId != tc.key || body.Code != tc.code {
				t.Fatalf("status %d key %q code %q (%s), want %d %q %q", status, body.AccessKeyId, body.Code, body.Message, tc.status, tc.key, tc.code)
			}
			if status == 200 && (body.RoleArn != nil || body.SecretAccessKey == "" || body.Token == "" || body.Expiration == "") {
				t.Fatalf("answer %+v: want the agent's document (keys, token, expiry; no RoleArn)", body)
			}
			if status == 401 && body.Message != "send the pod's service account token for audience pods.eks.amazonaws.com as the Authorization header (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)" {
				t.Fatalf("refusal %q is not the uniform one", body.Message)
			}
			if reviewed := rev.Calls() > before; reviewed != tc.reviewed {
				t.Fatalf("reviewed: %v, want %v", reviewed, tc.reviewed)
			}
		})
	}
}

func TestPodIdentityRoutes(t *testing.T) {
	srv, _ := newPodIdentityServer(t, &fakeReviewer{})
	h := srv.PodIdentityCredentials()
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/credentials/", 404},
		{"GET", "/v2/credentials", 404},
		{"POST", "/v1/credentials", 405},
	} {
		if w := serve(h, tc.method, tc.path, srcUnknown, "Authorization", validToken("team-a:app")); w.Code != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, w.Code, tc.status)
		}
	}
	if w := serve(h, "GET", handlers.PodIdentityPath, srcUnknown, "Authorization", validToken("team-a:app"), "Origin", "http://evil.example"); w.Code != 403 {
		t.Errorf("a browser's request: %d, want 403", w.Code)
	}
}

// TestPodIdentityCachesReviews: one review a token for a short while,
// never past the token's own expiry; a refusal is remembered too; a
// failure to ask is not.
func TestPodIdentityCachesReviews(t *testing.T) {
	short := podToken("team-a:app", launch.Add(90*time.Second), handlers.PodIdentityAudience)
	rev := &fakeReviewer{ids: map[string]handlers.PodIdentity{validToken("team-a:app"): identity("team-a", "app"), short: identity("team-a", "app")}}
	srv, clock := newPodIdentityServer(t, rev)
	h := srv.PodIdentityCredentials()
	get := func(token string) int {
		status, _, _ := podIdentityGET(t, h, srcUnknown, token)
		return status
	}
	for range 3 {
		if get(validToken("team-a:app")) != 200 {
			t.Fatal("a valid token refused")
		}
	}
	if rev.Calls() != 1 {
		t.Fatalf("%d reviews of one token, want 1", rev.Calls())
	}
	clock.Advance(time.Minute)
	if get(validToken("team-a:app")) != 200 || rev.Calls() != 2 {
		t.Fatalf("after a minute: %d reviews, want 2", rev.Calls())
	}
	// The short-lived token: reviewed once, served until its expiry, then
	// refused without asking.
	if get(short) != 200 || rev.Calls() != 3 {
		t.Fatalf("short-lived token: %d reviews, want 3", rev.Calls())
	}
	clock.Advance(29 * time.Second)
	if get(short) != 200 || rev.Calls() != 3 {
		t.Fatalf("short-lived token before its expiry: %d reviews, want 3", rev.Calls())
	}
	clock.Advance(time.Second)
	if get(short) != 401 || rev.Calls() != 3 {
		t.Fatalf("short-lived token at its expiry: %d reviews, want 3 and a refusal", rev.Calls())
	}

	forged := validToken("team-a:forged")
	if get(forged) != 401 || get(forged) != 401 || rev.Calls() != 4 {
		t.Fatalf("a refused token twice: %d reviews, want 4", rev.Calls())
	}

	rev.mu.Lock()
	rev.err = errors.New("Post https://10.96.0.1/apis/authentication.k8s.io/v1/tokenreviews: dial tcp: connection refused")
	rev.mu.Unlock()
	clock.Advance(time.Minute)
	status, body, _ := podIdentityGET(t, h, "10.9.9.9:1", validToken("team-a:app"))
	if status != 503 || strings.Contains(body.Message, "10.96.0.1") {
		t.Fatalf("API server down: %d %q, want 503 without the detail", status, body.Message)
	}
	rev.mu.Lock()
	rev.err = nil
	rev.mu.Unlock()
	if get(validToken("team-a:app")) != 200 || rev.Calls() != 6 {
		t.Fatalf("after the API server returns: %d reviews, want 6 (a failure is not remembered)", rev.Calls())
	}
}

// TestPodIdentityFlood: a source sending refused tokens is shut out after a
// few, whatever it sends next, and causes no more reviews; a source
// sending one valid token in a loop is limited by its rate, not by the
// API server.
func TestPodIdentityFlood(t *testing.T) {
	rev := &fakeReviewer{ids: map[string]handlers.PodIdentity{validToken("team-a:app"): identity("team-a", "app")}}
	srv, clock := newPodIdentityServer(t, rev)
	h := srv.PodIdentityCredentials()
	const guesser = "10.20.0.1:4000"
	refused, throttled := 0, 0
	for i := range 100 {
		status, _, hdr := podIdentityGET(t, h, guesser, validToken(fmt.Sprintf("team-a:guess-%d", i)))
		switch status {
		case 401:
			refused++
		case 429:
			throttled++
			if hdr.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("guess %d: status %d", i, status)
		}
	}
	if refused != 10 || throttled != 90 || rev.Calls() != 10 {
		t.Fatalf("%d refused, %d throttled, %d reviews; want 10, 90, 10", refused, throttled, rev.Calls())
	}
	if status, _, _ := podIdentityGET(t, h, guesser, validToken("team-a:app")); status != 429 || rev.Calls() != 10 {
		t.Fatalf("the guesser's valid token: %d after %d reviews, want 429 unreviewed", status, rev.Calls())
	}
	clock.Advance(6 * time.Second)
	if status, _, _ := podIdentityGET(t, h, guesser, validToken("team-a:app")); status != 200 {
		t.Fatalf("the guesser's valid token once it waited: %d, want 200", status)
	}

	const looper = "10.20.0.2:4000"
	ok, limited := 0, 0
	for range 100 {
		status, _, _ := podIdentityGET(t, h, looper, validToken("team-a:app"))
		switch status {
		case 200:
			ok++
		case 429:
			limited++
		}
	}
	if ok != 60 || limited != 40 || rev.Calls() != 11 {
		t.Fatalf("a loop of one valid token: %d served, %d limited, %d reviews; want 60, 40, 11", ok, limited, rev.Calls())
	}
}

// TestPodIdentityReviewsBounded: a burst of distinct tokens from distinct
// sources (every pod of a node starting at once, or a flood) never has
// more than a few reviews in flight; past what may wait, the rest get 503
// at once, which SDKs retry; requests with the same token share one
// review.
func TestPodIdentityReviewsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		rev := &fakeReviewer{ids: map[string]handlers.PodIdentity{}, gate: gate}
		const pods = 100
		for i := range pods {
			rev.ids[validToken(fmt.Sprintf("team-a:app-%d", i))] = identity("team-a", "app")
		}
		srv, _ := newPodIdentityServer(t, rev)
		h := srv.PodIdentityCredentials()
		statuses := make(chan int, pods+10)
		get := func(src, token string) {
			w := serve(h, http.MethodGet, handlers.PodIdentityPath, src, "Authorization", token)
			statuses <- w.Code
		}
		for i := range pods {
			go get(fmt.Sprintf("10.30.%d.%d:4000", i/250, i%250+1), validToken(fmt.Sprintf("team-a:app-%d", i)))
		}
		// Ten more requests with the first token: they wait for its review.
		for i := range 10 {
			go get(fmt.Sprintf("10.31.0.%d:4000", i+1), validToken("team-a:app-0"))
		}
		synctest.Wait()
		rev.mu.Lock()
		inFlight := rev.inFlight
		rev.mu.Unlock()
		busy := 0
		for len(statuses) > 0 {
			if s := <-statuses; s == http.StatusServiceUnavailable {
				busy++
			} else {
				t.Fatalf("before any review ended: status %d", s)
			}
		}
		if inFlight != 4 || busy != pods-64 {
			t.Fatalf("%d reviews in flight and %d turned away; want 4 and %d", inFlight, busy, pods-64)
		}
		close(gate)
		synctest.Wait()
		served := 0
		for len(statuses) > 0 {
			if <-statuses == http.StatusOK {
				served++
			}
		}
		if served != 64+10 || rev.Calls() != 64 || rev.maxInFlight != 4 {
			t.Fatalf("%d served after %d reviews, at most %d at once; want %d, 64, 4", served, rev.Calls(), rev.maxInFlight, 64+10)
		}
	})
}

// TestPodIdentitySDK reads the endpoint as an unmodified pod does: the Go
// SDK's default chain with AWS_CONTAINER_CREDENTIALS_FULL_URI and
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, the token read from the file
// (the SDK accepts plain http only on loopback, 169.254.170.2,
// 169.254.170.23 and fd00:ec2::23).
func TestPodIdentitySDK(t *testing.T) {
	tokens := map[string]handlers.PodIdentity{validToken("team-a:app"): identity("team-a", "app")}
	rev := &fakeReviewer{ids: tokens}
	srv, _ := newPodIdentityServer(t, rev)
	ts := httptest.NewServer(srv.PodIdentityCredentials())
	defer ts.Close()
	file := filepath.Join(t.TempDir(), "eks-pod-identity-token")
	write := func(token string) {
		if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(validToken("team-a:app"))
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", ts.URL+handlers.PodIdentityPath)
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", file)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	load := func() (aws.Credentials, error) {
		cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("eu-west-1"), config.WithRetryMaxAttempts(1))
		if err != nil {
			t.Fatalf("LoadDefaultConfig: %v", err)
		}
		return cfg.Credentials.Retrieve(ctx)
	}
	got, err := load()
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if got.AccessKeyID != credsFull.AccessKeyID || got.SecretAccessKey != credsFull.SecretAccessKey ||
		got.SessionToken != credsFull.SessionToken || got.AccountID != credsFull.AccountID || !got.CanExpire ||
		// The SDK's cache counts credentials expired 5 minutes early.
		!got.Expires.Equal(credsFull.Expiration.Add(-5*time.Minute)) {
		t.Fatalf("SDK read %+v", got)
	}
	// A token of another audience in the file: the SDK gets nothing.
	write(podToken("team-a:app", launch.Add(time.Hour), "https://kubernetes.default.svc"))
	if c, err := load(); err == nil {
		t.Fatalf("a foreign token got %s", c.AccessKeyID)
	} else if !strings.Contains(err.Error(), "InvalidToken") {
		t.Fatalf("the SDK's error does not name the refusal: %v", err)
	}
}

// TestPodIdentityTokenOfAPodNoLongerRunning: where the configuration
// follows the node's pods, a token bound to a pod is worth something only
// while that pod runs here: not once it is deleted, nor for a pod of
// another node, however valid the API server still finds it.
func TestPodIdentityTokenOfAPodNoLongerRunning(t *testing.T) {
	file := parseConfig(t, `
kubernetes: {node_name: node-1}
tenants:
  - name: full
    sources: [{service_account: team-a/app}]
    credentials: {profile: full}
`)
	app := identity("team-a", "app")
	pod := tenants.Pod{UID: app.PodUID, Namespace: "team-a", Name: app.PodName, ServiceAccount: "app",
		Addrs: []netip.Addr{netip.MustParseAddr("10.244.0.7")}}
	running, _ := file.WithPods([]tenants.Pod{pod}, []tenants.Namespace{{Name: "team-a"}})
	gone, _ := file.WithPods(nil, []tenants.Namespace{{Name: "team-a"}})

	token := validToken("team-a:app")
	rev := &fakeReviewer{ids: map[string]handlers.PodIdentity{token: app}}
	srv, err := handlers.New(running, handlers.Options{Now: newClock().Now, Signer: testSigner(t), TokenReviewer: rev,
		Credentials: &fakeCredentials{byTenant: map[string]tenants.Credentials{"full": credsFull}}})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.PodIdentityCredentials()

	if code, body, _ := podIdentityGET(t, h, "10.244.0.7:40000", token); code != http.StatusOK || body.AccessKeyId != credsFull.AccessKeyID {
		t.Fatalf("the running pod's token: %d %+v, want 200 with full's credentials", code, body)
	}
	if err := srv.Load(gone); err != nil {
		t.Fatal(err)
	}
	// From the deleted pod's address, and from any other: nothing, even
	// though the review is still cached as valid.
	for _, src := range []string{"10.244.0.7:40001", "10.244.0.9:40000"} {
		code, body, _ := podIdentityGET(t, h, src, token)
		if code != http.StatusForbidden || !strings.Contains(body.Message, "not running on this node") {
			t.Errorf("the deleted pod's token from %s: %d %+v, want 403 naming the pod", src, code, body)
		}
	}
	if err := srv.Load(running); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := podIdentityGET(t, h, "10.244.0.7:40002", token); code != http.StatusOK {
		t.Errorf("the pod back: %d, want 200", code)
	}
}
