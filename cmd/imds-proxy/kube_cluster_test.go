//go:build kube

package main

// A real Kubernetes control plane for the kube end-to-end test: etcd and
// kube-apiserver, built by scripts/kube/build.sh from the Go module proxy,
// on free loopback ports, with RBAC on, a static token for an admin and a
// service-account signing key. There is no controller-manager, scheduler or
// kubelet: the test creates service accounts itself and makes pods "run" by
// patching their status.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// kubeCluster is one etcd and one kube-apiserver.
type kubeCluster struct {
	url    string // https://127.0.0.1:PORT
	caFile string // the API server's self-signed serving certificate and its CA
	admin  *kubernetes.Clientset
	// adminToken is system:masters' static token (a secret: the proxy's
	// log must not hold it, nor any token TokenRequest issues).
	adminToken string
}

// kubeBinaries are the paths make e2e-kube passes from scripts/kube/build.sh.
func kubeBinaries(t *testing.T) (etcd, apiserver string) {
	t.Helper()
	etcd, apiserver = os.Getenv("IMDS_KUBE_ETCD"), os.Getenv("IMDS_KUBE_APISERVER")
	for _, p := range []string{etcd, apiserver} {
		var err error
		if p == "" {
			err = errors.New("IMDS_KUBE_ETCD or IMDS_KUBE_APISERVER unset (make e2e-kube sets them from scripts/kube/build.sh)")
		} else {
			_, err = os.Stat(p)
		}
		need(t, "etcd and kube-apiserver", err)
	}
	return etcd, apiserver
}

// kubeStart starts etcd and kube-apiserver and waits until /readyz answers
// ok. Both are stopped, and their logs shown on failure, when the test ends.
func kubeStart(t *testing.T, ctx context.Context) *kubeCluster {
	t.Helper()
	etcdBin, apiBin := kubeBinaries(t)
	dir := t.TempDir()

	client, peer := motoFreePort(t), motoFreePort(t)
	etcdURL := "http://127.0.0.1:" + client
	e2eDaemon(t, "etcd", filepath.Join(dir, "etcd.log"), etcdBin,
		"--name", "e2e", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:"+peer,
		"--initial-advertise-peer-urls", "http://127.0.0.1:"+peer,
		"--initial-cluster", "e2e=http://127.0.0.1:"+peer,
		"--unsafe-no-fsync", "--log-level", "warn")

	c := &kubeCluster{adminToken: kubeRandom(t)}
	keyFile := filepath.Join(dir, "sa.key")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	motoWriteFile(t, dir, "sa.key", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})), 0o600)
	tokens := motoWriteFile(t, dir, "tokens.csv", c.adminToken+`,admin,admin,"system:masters"`+"\n", 0o600)
	certs := filepath.Join(dir, "certs")
	port := motoFreePort(t)
	c.url = "https://127.0.0.1:" + port
	c.caFile = filepath.Join(certs, "apiserver.crt")
	e2eDaemon(t, "kube-apiserver", filepath.Join(dir, "kube-apiserver.log"), apiBin,
		"--etcd-servers", etcdURL, "--secure-port", port,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", keyFile, "--service-account-signing-key-file", keyFile,
		"--cert-dir", certs, "--authorization-mode", "RBAC", "--token-auth-file", tokens,
		"--service-cluster-ip-range", "10.0.0.0/24", "--profiling=false")

	// The serving certificate is written at start; until then, and until
	// the post-start hooks (RBAC's bootstrap roles among them) are done,
	// /readyz fails.
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		if _, err := os.Stat(c.caFile); err == nil {
			if last = c.readyz(ctx); last == "ok" {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("kube-apiserver not ready within 90s; last /readyz: %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cs, err := kubernetes.NewForConfig(c.restConfig(c.adminToken))
	if err != nil {
		t.Fatal(err)
	}
	c.admin = cs
	return c
}

// restConfig is a client configuration for the bearer token tok.
func (c *kubeCluster) restConfig(tok string) *rest.Config {
	return &rest.Config{Host: c.url, BearerToken: tok, TLSClientConfig: rest.TLSClientConfig{CAFile: c.caFile}}
}

// readyz is /readyz's body, or what went wrong.
func (c *kubeCluster) readyz(ctx context.Context) string {
	tr, err := rest.TransportFor(c.restConfig(c.adminToken))
	if err != nil {
		return err.Error()
	}
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/readyz", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return strings.TrimSpace(string(b))
}

// token issues a TokenRequest token of the service account ns/sa for the
// audiences (the API server's own when none), bound to pod when it is
// not nil, as a projected service account token of that pod is.
func (c *kubeCluster) token(t *testing.T, ctx context.Context, ns, sa string, pod *corev1.Pod, audiences ...string) string {
	t.Helper()
	expiry := int64(3600)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &expiry}}
	if pod != nil {
		req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	out, err := c.admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", ns, sa, err)
	}
	return out.Status.Token
}

// kubeconfig writes a kubeconfig for the bearer token tok and returns its
// path.
func (c *kubeCluster) kubeconfig(t *testing.T, user, tok string) string {
	t.Helper()
	doc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority: %q}
users:
- name: %s
  user: {token: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: %s}
current-context: e2e
`, c.url, c.caFile, user, tok, user)
	return motoWriteFile(t, t.TempDir(), "kubeconfig", doc, 0o600)
}

// kubeRandom is a random hex string, for a static token.
func kubeRandom(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
