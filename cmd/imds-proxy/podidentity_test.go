package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/internal/kubernetes"
)

// TestPodReviewer: the Kubernetes reviewer, through the adapter the server
// is given, against an API server's TokenReview answers: a pod's token is
// its identity, a refused one is handlers.ErrTokenRefused (401), and an
// API server that cannot answer is neither (503, retried).
func TestPodReviewer(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.Contains(string(body), `"token":"down"`):
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: request timed out","code":503}`)
		case strings.Contains(string(body), `"token":"good"`):
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","spec":{},"status":{"authenticated":true,`+
				`"user":{"username":"system:serviceaccount:team-a:app","extra":{"authentication.kubernetes.io/pod-name":["app-1"],"authentication.kubernetes.io/pod-uid":["u-1"]}},`+
				`"audiences":["pods.eks.amazonaws.com"]}}`)
		default:
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","spec":{},"status":{"error":"[invalid bearer token]"}}`)
		}
	}))
	defer api.Close()
	kapi, err := kubernetes.NewAPI(&rest.Config{Host: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := kubernetes.NewTokenReviewer(kapi, handlers.PodIdentityAudience)
	if err != nil {
		t.Fatal(err)
	}
	var rev handlers.TokenReviewer = podReviewer{kr}
	ctx := context.Background()
	if id, err := rev.Review(ctx, "good"); err != nil || id != (handlers.PodIdentity{Namespace: "team-a", ServiceAccount: "app", PodName: "app-1", PodUID: "u-1"}) {
		t.Fatalf("good token: %+v, %v", id, err)
	}
	if _, err := rev.Review(ctx, "forged"); !errors.Is(err, handlers.ErrTokenRefused) {
		t.Fatalf("refused token: %v, want handlers.ErrTokenRefused", err)
	}
	if _, err := rev.Review(ctx, "down"); err == nil || errors.Is(err, handlers.ErrTokenRefused) {
		t.Fatalf("API server failing: %v, want an error that is not a refusal", err)
	}
}

// TestPodIdentityNeedsTheAPIServer: outside a cluster, and with no
// kubeconfig, a configuration that listens for Pod Identity fails at start
// and says why.
func TestPodIdentityNeedsTheAPIServer(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	file := filepath.Join(t.TempDir(), "c.yaml")
	write(t, file, "server:\n  listen: [127.0.0.1:0]\n  admin_listen: \"off\"\n  pod_identity_listen: [127.0.0.1:0]\ntenants:\n  - {name: web, sources: [127.0.0.2]}\n")
	err := run(context.Background(), []string{"--config", file}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "server.pod_identity_listen") || !strings.Contains(err.Error(), "in-cluster") {
		t.Fatalf("run = %v, want an error naming server.pod_identity_listen and the in-cluster configuration", err)
	}
}

// TestConnectKubeSharesTheReviewersAPI: the watchers of the kubeconfig the
// reviewer was made from use the reviewer's API (its connections); those
// of another kubeconfig connect on their own.
func TestConnectKubeSharesTheReviewersAPI(t *testing.T) {
	api, err := kubernetes.NewAPI(&rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	connect := connectKube(api, "/etc/kube/config")
	c, err := connect("/etc/kube/config")
	if err != nil || c.Pods != api.Pods() || c.Namespaces != api.Namespaces() {
		t.Fatalf("the reviewer's kubeconfig: %+v, %v; want the reviewer's API", c, err)
	}
	other := filepath.Join(t.TempDir(), "missing")
	if _, err := connect(other); err == nil || !strings.Contains(err.Error(), other) {
		t.Fatalf("another kubeconfig: %v, want it read (and missing)", err)
	}
}
