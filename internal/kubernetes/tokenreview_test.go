package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

const podIdentityAudience = "pods.eks.amazonaws.com"

// apiServer answers TokenReviews as kube-apiserver does, in its own JSON
// (k8s.io/api's types), from a table of tokens: each token's status, or
// a Status error for every review when forbidden is set.
type apiServer struct {
	statuses  map[string]authv1.TokenReviewStatus
	forbidden bool
	got       []authv1.TokenReview // every review received
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	var tr authv1.TokenReview
	if err := json.NewDecoder(r.Body).Decode(&tr); err != nil || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	a.got = append(a.got, tr)
	w.Header().Set("Content-Type", "application/json")
	if a.forbidden {
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(metav1.Status{
			TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Reason:  metav1.StatusReasonForbidden,
			Message: `tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:kube-system:imds-proxy" cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope`,
			Code:    http.StatusForbidden,
		})
		return
	}
	st, ok := a.statuses[tr.Spec.Token]
	if !ok {
		st = authv1.TokenReviewStatus{Error: "[invalid bearer token, square/go-jose: error in cryptographic primitive]"}
	}
	tr.Status = st
	tr.Kind, tr.APIVersion = "TokenReview", "authentication.k8s.io/v1"
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(tr)
}

func boundStatus(user string, audiences ...string) authv1.TokenReviewStatus {
	return authv1.TokenReviewStatus{
		Authenticated: true,
		Audiences:     audiences,
		User: authv1.UserInfo{Username: user, Extra: map[string]authv1.ExtraValue{
			extraPodName: {"app-7d9f"},
			extraPodUID:  {"0b3c8a1e-0000-4000-8000-00000000c0de"},
		}},
	}
}

func TestTokenReview(t *testing.T) {
	unbound := boundStatus("system:serviceaccount:team-a:app", podIdentityAudience)
	unbound.User.Extra = nil
	api := &apiServer{statuses: map[string]authv1.TokenReviewStatus{
		"secret-good":     boundStatus("system:serviceaccount:team-a:app", podIdentityAudience),
		"secret-foreign":  boundStatus("system:serviceaccount:team-a:app", "https://kubernetes.default.svc"),
		"secret-user":     boundStatus("alice", podIdentityAudience),
		"secret-unbound":  unbound,
		"secret-notsa":    boundStatus("system:serviceaccount:team-a", podIdentityAudience),
		"secret-expired":  {Error: "[invalid bearer token, service account token has expired]"},
		"secret-audience": {Error: "[invalid bearer token, token audiences [\"https://kubernetes.default.svc\"] is invalid for the target audiences [\"pods.eks.amazonaws.com\"]]"},
	}}
	ts := httptest.NewServer(api)
	defer ts.Close()
	rev := reviewerOf(t, ts.URL)
	id, err := rev.Review(context.Background(), "secret-good")
	want := Identity{Namespace: "team-a", ServiceAccount: "app", PodName: "app-7d9f", PodUID: "0b3c8a1e-0000-4000-8000-00000000c0de"}
	if err != nil || id != want {
		t.Fatalf("good token: %+v, %v; want %+v", id, err, want)
	}
	if len(api.got) != 1 || len(api.got[0].Spec.Audiences) != 1 || api.got[0].Spec.Audiences[0] != podIdentityAudience {
		t.Fatalf("the review asked for audiences %+v, want [%s]", api.got, podIdentityAudience)
	}
	for _, tc := range []struct{ token, reason string }{
		{"secret-wrong", "invalid bearer token"},
		{"secret-expired", "has expired"},
		{"secret-audience", "invalid for the target audiences"},
		{"secret-foreign", "not for audience pods.eks.amazonaws.com"},
		{"secret-user", `"alice" is not a service account`},
		{"secret-notsa", "is not a service account"},
		{"secret-unbound", "not bound to a pod"},
	} {
		t.Run(tc.token, func(t *testing.T) {
			id, err := rev.Review(context.Background(), tc.token)
			if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), tc.reason) || id != (Identity{}) {
				t.Fatalf("Review: %+v, %v; want ErrUnauthenticated saying %q", id, err, tc.reason)
			}
			if strings.Contains(err.Error(), "secret-") {
				t.Fatalf("the error quotes the token: %v", err)
			}
		})
	}
}

// TestTokenReviewForbidden: an agent whose RBAC lacks create on
// tokenreviews learns so from the API server's Status, and the error is not
// a refusal of the token (the endpoint answers 5xx, which SDKs retry).
func TestTokenReviewForbidden(t *testing.T) {
	ts := httptest.NewServer(&apiServer{forbidden: true})
	defer ts.Close()
	rev := reviewerOf(t, ts.URL)
	_, err := rev.Review(context.Background(), "secret-good")
	if err == nil || errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), `cannot create resource "tokenreviews"`) {
		t.Fatalf("Review: %v; want the API server's forbidden message, not ErrUnauthenticated", err)
	}
}

// TestTokenReviewUnreachable: no API server is an error that is not a
// refusal either.
func TestTokenReviewUnreachable(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	rev := reviewerOf(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := rev.Review(ctx, "secret-good"); err == nil || errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("Review: %v; want a transport error", err)
	}
}

// reviewerOf is a reviewer of the API server at url, over plain HTTP.
func reviewerOf(t *testing.T, url string) *TokenReviewer {
	t.Helper()
	api, err := NewAPI(&rest.Config{Host: url})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := NewTokenReviewer(api, podIdentityAudience)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}
