package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

func TestECSCredentials(t *testing.T) {
	creds := map[string]tenants.Credentials{"full": credsFull, "boxed": credsRequired}
	srv, _ := newServer(t, credentialsConfig, handlers.Options{Credentials: &fakeCredentials{byTenant: creds}})
	h := srv.ECSCredentials()
	for _, tc := range []struct {
		name, method, path, src string
		status                  int
		key, role, code         string
	}{
		{"relative URI as ECS gives it", "GET", "/v2/credentials/6f1c0d4e-0000-4000-8000-000000000000", srcFull, 200, credsFull.AccessKeyID, "arn:aws:iam::444455556666:role/web-role", ""},
		{"bare prefix", "GET", "/v2/credentials", srcFull, 200, credsFull.AccessKeyID, "arn:aws:iam::444455556666:role/web-role", ""},
		{"another tenant by its source; no role ARN, none sent", "GET", "/v2/credentials/x", "127.0.0.6:1", 200, credsRequired.AccessKeyID, "", ""},
		{"a token is not needed and chooses nothing", "GET", "/v2/credentials/x", "127.0.0.6:1", 200, credsRequired.AccessKeyID, "", ""},
		{"unknown source", "GET", "/v2/credentials/x", "127.0.0.99:1", 403, "", "", "AccessDenied"},
		{"disabled tenant", "GET", "/v2/credentials/x", "127.0.0.4:1", 403, "", "", "AccessDenied"},
		{"other path", "GET", "/credentials", srcFull, 404, "", "", "NotFound"},
		{"prefix lookalike", "GET", "/v2/credentialsX", srcFull, 404, "", "", "NotFound"},
		{"POST", "POST", "/v2/credentials/x", srcFull, 405, "", "", "MethodNotAllowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, tc.method, tc.path, tc.src, "Authorization", "anywhere-token-012345")
			if w.Code != tc.status || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d type %q, want %d application/json; body %s", w.Code, w.Header().Get("Content-Type"), tc.status, w.Body)
			}
			var body struct {
				AccessKeyId, SecretAccessKey, Token, Expiration, RoleArn string
				Code                                                     string `json:"code"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, w.Body)
			}
			if body.AccessKeyId != tc.key || body.RoleArn != tc.role || body.Code != tc.code {
				t.Fatalf("key %q role %q code %q, want %q %q %q", body.AccessKeyId, body.RoleArn, body.Code, tc.key, tc.role, tc.code)
			}
			if tc.status != 200 && strings.Contains(w.Body.String(), "secret") {
				t.Fatalf("an error body shows a secret: %s", w.Body)
			}
		})
	}
}

// TestECSCredentialsSDK reads the endpoint with the Go SDK's own provider,
// as a client given AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does: from
// 127.0.0.1, a source of tenant "full".
func TestECSCredentialsSDK(t *testing.T) {
	creds := map[string]tenants.Credentials{"full": credsFull}
	srv, _ := newServer(t, credentialsConfig, handlers.Options{Credentials: &fakeCredentials{byTenant: creds}})
	ts := httptest.NewServer(srv.ECSCredentials())
	defer ts.Close()
	p := endpointcreds.New(ts.URL + "/v2/credentials/0b7d4c5e-task")
	got, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if got.AccessKeyID != credsFull.AccessKeyID || got.SecretAccessKey != credsFull.SecretAccessKey ||
		got.SessionToken != credsFull.SessionToken || !got.Expires.Equal(credsFull.Expiration) || !got.CanExpire ||
		got.AccountID != credsFull.AccountID {
		t.Fatalf("SDK read %+v", got)
	}
	// A source no tenant lists gets nothing: the SDK reports the refusal.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = "127.0.0.99:4000"
		srv.ECSCredentials().ServeHTTP(w, r)
	}))
	defer other.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := endpointcreds.New(other.URL + "/v2/credentials/x").Retrieve(ctx); err == nil {
		t.Fatalf("an unknown source got %s", c.AccessKeyID)
	}
}
