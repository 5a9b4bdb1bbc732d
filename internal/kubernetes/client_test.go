package kubernetes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// bound keeps a lost event from hanging a test; no wait is an assertion
// about time.
const bound = 10 * time.Second

func next[T any](t *testing.T, reports <-chan T, what string) T {
	t.Helper()
	select {
	case r := <-reports:
		return r
	case <-time.After(bound):
		t.Fatalf("%s: no report within %v", what, bound)
	}
	var zero T
	return zero
}

// kubeAPIServer answers as kube-apiserver does, over TLS and HTTP/2, in
// k8s.io/api's JSON: a list and then a watch of the pods of node-1 and of
// the namespaces, each watch sending one ADDED event once added is closed;
// and TokenReviews that authenticate every token. Every request must come
// over HTTP/2 with the service account's bearer token and the proxy's user
// agent.
type kubeAPIServer struct {
	t     *testing.T
	added chan struct{}
	stop  chan struct{}
}

func (a *kubeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 || r.Header.Get("Authorization") != "Bearer sa-token" || r.Header.Get("User-Agent") != "imds-proxy" {
		a.t.Errorf("%s %s over %s, Authorization %q, User-Agent %q: want HTTP/2, the bearer token and imds-proxy",
			r.Method, r.URL, r.Proto, r.Header.Get("Authorization"), r.Header.Get("User-Agent"))
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	q := r.URL.Query()
	switch {
	case r.URL.Path == "/api/v1/pods" && q.Get("fieldSelector") != "spec.nodeName=node-1":
		a.t.Errorf("pods asked for with field selector %q", q.Get("fieldSelector"))
		http.Error(w, "bad request", http.StatusBadRequest)
	case r.URL.Path == "/api/v1/pods" && q.Get("watch") != "true":
		a.send(w, &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
			ListMeta: metav1.ListMeta{ResourceVersion: "10"}, Items: []corev1.Pod{*testPod("a", "10.1.0.5")}})
	case r.URL.Path == "/api/v1/pods":
		a.watch(w, r, testPod("b", "10.1.0.6"))
	case r.URL.Path == "/api/v1/namespaces" && q.Get("watch") != "true":
		a.send(w, &corev1.NamespaceList{TypeMeta: metav1.TypeMeta{Kind: "NamespaceList", APIVersion: "v1"},
			ListMeta: metav1.ListMeta{ResourceVersion: "10"}, Items: []corev1.Namespace{*testNamespace("team-a")}})
	case r.URL.Path == "/api/v1/namespaces":
		a.watch(w, r, testNamespace("team-b"))
	case r.Method == http.MethodPost && r.URL.Path == "/apis/authentication.k8s.io/v1/tokenreviews":
		var tr authv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&tr); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		tr.Kind, tr.APIVersion = "TokenReview", "authentication.k8s.io/v1"
		tr.Status = boundStatus("system:serviceaccount:team-a:app", tr.Spec.Audiences...)
		w.WriteHeader(http.StatusCreated)
		a.send(w, &tr)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func (a *kubeAPIServer) send(w http.ResponseWriter, v any) {
	if err := json.NewEncoder(w).Encode(v); err != nil {
		a.t.Errorf("encode: %v", err)
	}
}

// watch sends obj as ADDED once a.added is closed, then holds the watch
// open until the client or the test ends it.
func (a *kubeAPIServer) watch(w http.ResponseWriter, r *http.Request, obj any) {
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	select {
	case <-a.added:
	case <-r.Context().Done():
		return
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		a.t.Errorf("encode: %v", err)
		return
	}
	a.send(w, metav1.WatchEvent{Type: "ADDED", Object: runtime.RawExtension{Raw: raw}})
	w.(http.Flusher).Flush()
	select {
	case <-a.stop:
	case <-r.Context().Done():
	}
}

func testPod(name, ip string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "11"},
		Spec:       corev1.PodSpec{NodeName: "node-1", ServiceAccountName: "app"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
}

func testNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{TypeMeta: metav1.TypeMeta{Kind: "Namespace", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "11"}}
}

// TestAPIOverOneConnection drives the REST clients of one API through
// client-go's reflectors and a TokenReview against an API server over TLS:
// the pods and namespaces are listed, then watched, and the review is
// answered beside the open watches on the connection they use (HTTP/2).
func TestAPIOverOneConnection(t *testing.T) {
	var conns atomic.Int32
	srv := &kubeAPIServer{t: t, added: make(chan struct{}), stop: make(chan struct{})}
	ts := httptest.NewUnstartedServer(srv)
	ts.EnableHTTP2 = true
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.StartTLS()
	defer ts.Close()
	defer close(srv.stop)

	api, err := NewAPI(&rest.Config{Host: ts.URL, BearerToken: "sa-token",
		TLSClientConfig: rest.TLSClientConfig{CAData: pemOf(ts.Certificate())}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pods := make(chan []RunningPod, 16)
	namespaces := make(chan []RunningNamespace, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		(&Watcher{Pods: api.Pods(), Node: "node-1", Changed: func(ps []RunningPod) { pods <- ps }}).Run(ctx)
	})
	wg.Go(func() {
		(&NamespaceWatcher{Namespaces: api.Namespaces(), Changed: func(ns []RunningNamespace) { namespaces <- ns }}).Run(ctx)
	})
	defer func() { cancel(); wg.Wait() }()

	if ps := next(t, pods, "pod list"); len(ps) != 1 || ps[0].UID != "uid-a" || ps[0].ServiceAccount != "app" {
		t.Fatalf("first pods %+v", ps)
	}
	if ns := next(t, namespaces, "namespace list"); len(ns) != 1 || ns[0].Name != "team-a" {
		t.Fatalf("first namespaces %+v", ns)
	}
	close(srv.added)
	if ps := next(t, pods, "pod watch"); len(ps) != 2 || ps[1].UID != "uid-b" || ps[1].Addrs[0].String() != "10.1.0.6" {
		t.Fatalf("pods after the watch %+v", ps)
	}
	if ns := next(t, namespaces, "namespace watch"); len(ns) != 2 || ns[1].Name != "team-b" {
		t.Fatalf("namespaces after the watch %+v", ns)
	}
	// Both watches hold their streams open; the review travels beside
	// them on a connection already open.
	before := conns.Load()
	rev, err := NewTokenReviewer(api, podIdentityAudience)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := rev.Review(ctx, "secret-pod-token"); err != nil || id.ServiceAccount != "app" || id.PodName != "app-7d9f" {
		t.Fatalf("Review: %+v, %v", id, err)
	}
	if n := conns.Load(); n != before {
		t.Fatalf("the review opened %d connections of its own, want none: it shares the watchers' HTTP/2 connection", n-before)
	}
}

// TestCARotation: with a CA file (the in-cluster service account's
// ca.crt), the client trusts what the file says after it changes, once
// five minutes have passed since it last read it.
func TestCARotation(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, pemOf(otherCA(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hc, err := httpClient(&rest.Config{Host: ts.URL, TLSClientConfig: rest.TLSClientConfig{CAFile: caFile}}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	get := func() error {
		res, err := hc.Get(ts.URL)
		if err == nil {
			res.Body.Close()
		}
		return err
	}
	var unknown x509.UnknownAuthorityError
	if err := get(); !errors.As(err, &unknown) {
		t.Fatalf("trusting another CA: %v, want an unknown authority", err)
	}
	// The cluster's CA rotates: the file now holds the server's.
	if err := os.WriteFile(caFile, pemOf(ts.Certificate()), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(caReloadEvery - time.Second)
	if err := get(); !errors.As(err, &unknown) {
		t.Fatalf("before the file is read again: %v, want an unknown authority", err)
	}
	now = now.Add(time.Second)
	if err := get(); err != nil {
		t.Fatalf("after the CA file changed: %v", err)
	}
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// otherCA is a self-signed CA that signed nothing the test serves.
func otherCA(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
