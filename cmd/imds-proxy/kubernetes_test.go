package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/internal/kubernetes/kubetest"
	"github.com/imds-proxy/imds-proxy/internal/liveconfig"
)

// TestKubernetesInProcess drives Kubernetes mode through runWith and the
// real HTTP path, the API server replaced by client-go's fake clientset:
// each pod is its own instance, pods of one tenant share one upstream
// call, a refused claim is 403 and one log line, a pod's first request
// before its event is held, a deleted pod's address stops resolving and a
// new pod at that address gets its own tenant.
func TestKubernetesInProcess(t *testing.T) {
	for _, a := range []string{"127.0.0.31", "127.0.0.36"} {
		if l, err := net.Listen("tcp", a+":0"); err != nil {
			t.Skipf("%s is not a local address here: %v", a, err)
		} else {
			_ = l.Close()
		}
	}
	config := filepath.Join(t.TempDir(), "c.yaml")
	write(t, config, `server: {listen: ["127.0.0.1:0"], admin_listen: "127.0.0.1:0"}
kubernetes: {node_name: node-1}
defaults: {credentials: {profile: dev}}
tenants:
  - {name: web, credentials: {role_arn: "arn:aws:iam::111122223333:role/web"}}
  - {name: batch, sources: [{service_account: jobs/runner}], credentials: {role_arn: "arn:aws:iam::111122223333:role/batch"}}
`)
	const tenantKey, allowedKey = "imds-proxy.io/tenant", "imds-proxy.io/allowed-tenants"
	cs := fake.NewClientset(
		kubetest.Namespace("team-a", allowedKey, "web"),
		kubetest.Namespace("jobs"),
		kubetest.Pod("team-a", "a", "uid-a", "default", "127.0.0.31", tenantKey, "web"),
		kubetest.Pod("team-a", "b", "uid-b", "default", "127.0.0.32", tenantKey, "web"),
		kubetest.Pod("jobs", "j", "uid-j", "runner", "127.0.0.33"),
		kubetest.Pod("jobs", "x", "uid-x", "default", "127.0.0.34", tenantKey, "web"),
	)
	pods, namespaces := kubetest.NewPods(cs), kubetest.NewNamespaces(cs)
	upstream := &fakeSTS{}
	d := deps{
		profiles: func(_ context.Context, name string) (*awssource.Profile, error) {
			return &awssource.Profile{Name: name, STS: upstream,
				Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLEKEY000001", "not-a-secret", "")}, nil
		},
		kube: func(string) (liveconfig.KubeClients, error) {
			return liveconfig.KubeClients{Pods: pods, Namespaces: namespaces}, nil
		},
	}
	logs := newListenLog()
	imdsAddr, _ := startLogged(t, d, logs, "--config", config)

	get := func(src, path string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}}
		resp, err := c.Get("http://" + imdsAddr + "/latest/" + path)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", path, src, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// until asks until the answer is want: the pods' lists and events reach
	// the proxy a moment after the API server has them.
	until := func(src, path string, want func(int, string) bool) (int, string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := get(src, path)
			if want(code, body) || time.Now().After(deadline) {
				return code, body
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ok := func(code int, _ string) bool { return code == http.StatusOK }
	creds := func(src, role string) {
		t.Helper()
		code, body := get(src, "meta-data/iam/security-credentials/"+role)
		var doc struct{ Code, AccessKeyId string }
		if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil || doc.AccessKeyId != "ASIA"+strings.ToUpper(role) {
			t.Errorf("credentials from %s: %d %s, want %s's", src, code, body, role)
		}
	}
	instanceID := regexp.MustCompile(`^i-[0-9a-f]{17}$`)

	// Each pod is its own instance: id, hostname and address its own.
	ids := map[string]string{}
	for src, host := range map[string]string{"127.0.0.31": "a", "127.0.0.32": "b", "127.0.0.33": "j"} {
		code, id := until(src, "meta-data/instance-id", ok)
		_, name := get(src, "meta-data/local-hostname")
		_, ip := get(src, "meta-data/local-ipv4")
		if code != 200 || !instanceID.MatchString(id) || name != host || ip != src {
			t.Errorf("pod %s at %s: %d instance %q, hostname %q, local-ipv4 %q", host, src, code, id, name, ip)
		}
		ids[src] = id
	}
	if ids["127.0.0.31"] == ids["127.0.0.32"] {
		t.Errorf("two pods of one tenant, one instance id %s", ids["127.0.0.31"])
	}
	creds("127.0.0.31", "web")
	creds("127.0.0.32", "web")
	creds("127.0.0.33", "batch")
	upstream.mu.Lock()
	if upstream.calls != 2 {
		t.Errorf("%d AssumeRole calls for three pods of two tenants, want 2: one per tenant", upstream.calls)
	}
	upstream.mu.Unlock()

	// A claim its namespace refuses: one log line once the pod is applied
	// (a moment after the API server has it), 403 at every request, and
	// no more lines for them.
	for deadline := time.Now().Add(10 * time.Second); logs.count("pod jobs/x claims tenant web") == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	for range 3 {
		if code, body := get("127.0.0.34", "meta-data/instance-id"); code != http.StatusForbidden {
			t.Errorf("a pod whose namespace refuses its claim: %d %q, want 403", code, body)
		}
	}
	if n := logs.count("pod jobs/x claims tenant web"); n != 1 {
		t.Errorf("the refused claim was logged %d times, want once", n)
	}

	// The start race: a pod's first request, sent as the pod is created,
	// is held until the pod is applied rather than refused.
	raced := make(chan int, 1)
	go func() {
		code, _ := get("127.0.0.35", "meta-data/instance-id")
		raced <- code
	}()
	if _, err := cs.CoreV1().Pods("team-a").Create(context.Background(), kubetest.Pod("team-a", "e", "uid-e", "default", "127.0.0.35", tenantKey, "web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if code := <-raced; code != http.StatusOK {
		t.Errorf("the first request of a pod being created: %d, want 200", code)
	}

	// Deleted: its address stops resolving. A new pod at that address is
	// another instance of its own tenant, never the old pod's.
	if err := cs.CoreV1().Pods("team-a").Delete(context.Background(), "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if code, _ := until("127.0.0.32", "meta-data/instance-id", func(c int, _ string) bool { return c == http.StatusForbidden }); code != http.StatusForbidden {
		t.Errorf("a deleted pod's address: %d, want 403", code)
	}
	if _, err := cs.CoreV1().Pods("jobs").Create(context.Background(), kubetest.Pod("jobs", "c", "uid-c", "runner", "127.0.0.32"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if code, id := until("127.0.0.32", "meta-data/instance-id", ok); code != 200 || id == ids["127.0.0.32"] || !instanceID.MatchString(id) {
		t.Errorf("a new pod at a reused address: %d instance %q (the old pod's was %s)", code, id, ids["127.0.0.32"])
	}
	creds("127.0.0.32", "batch")
	if code, body := get("127.0.0.32", "meta-data/iam/security-credentials/web"); code != http.StatusNotFound {
		t.Errorf("the new pod at a reused address got the old pod's role: %d %s", code, body)
	}
	if code, body := get("127.0.0.36", "meta-data/instance-id"); code != http.StatusForbidden {
		t.Errorf("an address no pod holds: %d %q, want 403", code, body)
	}
}

// TestKubernetesCheckAndExplain: check shows the kubernetes: block and the
// pods each tenant may serve; explain, which knows no pod, says how a pod's
// address is chosen; serve refuses to start with no node to follow.
func TestKubernetesCheckAndExplain(t *testing.T) {
	const example = "../../configs/kubernetes.yaml"
	var stdout, stderr strings.Builder
	getenv := func(k string) string { return map[string]string{"NODE_NAME": "node-7"}[k] }
	if err := run(context.Background(), []string{"check", "--config", example}, getenv, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kubernetes: the pods of node node-7 (NODE_NAME), through the in-cluster service account; namespace restrictions on",
		"pods of service account team-a/app,pods annotated imds-proxy.io/tenant=app",
		"reports   pods annotated imds-proxy.io/tenant=reports",
		"kube2iam  pods' iam.amazonaws.com/role (role template)",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("check's output lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	err := run(context.Background(), []string{"explain", "--config", example, "10.1.0.5"}, getenv, &stdout, &stderr)
	if err == nil || !strings.Contains(stdout.String(), "its service account (team-a/app → app),\nor the role of its iam.amazonaws.com/role (through tenant kube2iam)") {
		t.Errorf("explain: %v\n%s", err, stdout.String())
	}
	err = run(context.Background(), []string{"--config", example}, func(string) string { return "" }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "kubernetes: no node to follow: set kubernetes.node_name, or NODE_NAME") {
		t.Errorf("serve without a node: %v", err)
	}
}
