//go:build kube

package main

// Kubernetes mode end to end, as root (`make e2e-kube`): a real etcd and
// kube-apiserver (kube_cluster_test.go), the agent's service account with
// the RBAC the chart renders and a TokenRequest token in its kubeconfig,
// namespaces and pods on the agent's node that "run" because the test
// patches their status with the address of a network namespace, and the
// built binary serving them with moto as STS. Inside each pod's namespace
// curl, boto3 and the AWS CLI v2, unmodified, go through the real HTTP
// path: IMDS on 169.254.169.254, the ECS form on 169.254.170.2 and EKS Pod
// Identity on 169.254.170.23 (`imds-proxy setup --mode address --ecs
// --pod-identity` puts those addresses on the host; each namespace routes
// them over the bridge). Only loopback and the test's own namespaces carry
// traffic.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// kubeBudget bounds the whole test: every command runs under it.
const kubeBudget = 240 * time.Second

// The test network: benchmarking addresses (RFC 2544), apart from those of
// netns_test.go and dockere2e_test.go.
const (
	kubeBridge  = "imdsk8s0"
	kubeHost4   = "198.18.4.1"
	kubeHost6   = "fd00:18:4::1"
	kubeAccount = "123456789012"
	kubeNode    = "e2e-node-1"
	kubeKeyID   = "AKIAKUBEE2ESTATICKEY"
	kubeSecret  = "kube-static-secret/0123456789abcdefghijklmn"
	// kubePodIdentityAudience is the audience of the projected token EKS
	// gives a pod for the Pod Identity agent.
	kubePodIdentityAudience = "pods.eks.amazonaws.com"
	kubeManifest            = "../../deploy/kubernetes/imds-proxy.yaml"
)

// kubeGuest is one network namespace: a dual-stack pod's network, or
// addresses no pod has.
type kubeGuest struct{ ns, veth, addr, addr6 string }

var kubeGuests = []kubeGuest{
	{"imds-k8s-1", "imdsk8sv1", "198.18.4.11", "fd00:18:4::11"},
	{"imds-k8s-2", "imdsk8sv2", "198.18.4.12", "fd00:18:4::12"},
	{"imds-k8s-3", "imdsk8sv3", "198.18.4.13", "fd00:18:4::13"},
	{"imds-k8s-4", "imdsk8sv4", "198.18.4.14", "fd00:18:4::14"},
	{"imds-k8s-5", "imdsk8sv5", "198.18.4.15", "fd00:18:4::15"}, // no pod
	{"imds-k8s-6", "imdsk8sv6", "198.18.4.16", "fd00:18:4::16"}, // the start race
	{"imds-k8s-7", "imdsk8sv7", "198.18.4.17", "fd00:18:4::17"},
}

// kubePod is a pod the test creates, and what it must be served.
type kubePod struct {
	ns, name, sa string
	annotations  map[string]string
	guest        kubeGuest
	tenant       string // "" when the pod must get nothing (403)
}

// The tenants: app and batch chosen by service account, worker only by a
// pod's annotation, and the copy of the role template legacy that serves
// kube2iam's annotation naming the role kube-legacy. team-a may claim app,
// worker and the kube-* roles, team-b only batch.
var (
	kubeNamespaces = map[string]string{"team-a": "app,worker,arn:aws:iam::" + kubeAccount + ":role/kube-*", "team-b": "batch"}
	kubeRoles      = map[string]string{"app": "kube-app", "worker": "kube-worker", "batch": "kube-batch", "legacy": "kube-legacy"}
)

// kubeEnv is one run: the cluster, the tools found, what must not leak.
type kubeEnv struct {
	netnsEnv
	cluster *kubeCluster
	relay   string // moto, as the namespaces reach it
	leaks   *motoLeaks
	home    string // an empty HOME for the clients

	mu  sync.Mutex
	ids map[string]string // instance id → namespace/name of the pod it was served to
}

func TestKubeE2E(t *testing.T) {
	if os.Geteuid() != 0 {
		need(t, "root (network namespaces, a bridge, addresses)", errors.New("not root"))
	}
	for _, tool := range []string{"ip", "ss", "iptables-save", "ip6tables-save", "curl", "/usr/bin/aws"} {
		_, err := exec.LookPath(tool)
		need(t, tool, err)
	}
	kubeBinaries(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), kubeBudget)
	t.Cleanup(cancel)
	e := &kubeEnv{netnsEnv: netnsEnv{ctx: ctx, python: boto3Python(t)}, leaks: &motoLeaks{}, home: t.TempDir(), ids: map[string]string{}}
	e.leaks.add(kubeSecret)

	kubeClean() // a killed run's leftovers
	before := netnsSnapshot(t, &e.netnsEnv)
	kubeTopology(t, e)
	m := motoStart(t)
	e.relay = netnsRelay(t, kubeHost4, m.url)
	e.cluster = kubeStart(t, ctx)
	e.leaks.add(e.cluster.adminToken)
	t.Logf("apiserver ready, topology and moto up in %s", time.Since(start).Round(time.Millisecond))

	kubeconfig := kubeAgent(t, e)
	kubeTenantNamespaces(t, e)

	iface := "imds0"
	if !netnsHasDummy(t, &e.netnsEnv) {
		iface = "lo" // as in netns_test.go: some kernels have no dummy interfaces
	}
	setup := []string{"--mode", "address", "--interface", iface, "--ecs", "--pod-identity"}
	t.Cleanup(func() {
		// A fresh context: the test's own may have run out.
		e.ctx = context.Background()
		netnsSetup(t, &e.netnsEnv, "--remove") // on failure too; idempotent
		kubeClean()
		if after := netnsSnapshot(t, &e.netnsEnv); after != before {
			t.Errorf("setup --remove and the namespaces' removal did not restore the host:\n%s", netnsDiff(before, after))
		}
	})
	netnsSetup(t, &e.netnsEnv, append(setup, "--apply")...)

	// Two pods run before the agent starts (its first list), the rest
	// after (its watch).
	app := kubePod{"team-a", "app-1", "app", nil, kubeGuests[0], "app"}
	worker := kubePod{"team-a", "worker-1", "runner", map[string]string{"imds-proxy.io/tenant": "worker"}, kubeGuests[1], "worker"}
	batch := kubePod{"team-b", "batch-1", "batch", nil, kubeGuests[2], "batch"}
	greedy := kubePod{"team-b", "greedy-1", "runner", map[string]string{"imds-proxy.io/tenant": "app"}, kubeGuests[3], ""}
	legacy := kubePod{"team-a", "legacy-1", "runner", map[string]string{"iam.amazonaws.com/role": "arn:aws:iam::" + kubeAccount + ":role/kube-legacy"}, kubeGuests[6], "legacy"}
	stranger := kubePod{guest: kubeGuests[4]} // an address no pod has
	pods := map[string]*corev1.Pod{}
	for _, p := range []kubePod{app, worker} {
		pods[p.name] = kubeRun(t, e, p)
	}
	proxy := kubeStartProxy(t, e, m.url, kubeconfig)
	for _, p := range []kubePod{batch, greedy, legacy} {
		pods[p.name] = kubeRun(t, e, p)
	}
	for _, p := range []kubePod{app, worker, batch, legacy} {
		kubeWaitServed(t, e, p)
	}
	t.Logf("agent serving its pods %s after the start", time.Since(start).Round(time.Millisecond))

	t.Run("imds", func(t *testing.T) {
		for _, p := range []kubePod{app, worker, batch, greedy, legacy, stranger} {
			t.Run(p.guest.ns, func(t *testing.T) {
				t.Parallel()
				kubeCheckIMDS(t, e, p, pods[p.name])
			})
		}
	})
	t.Run("ecs", func(t *testing.T) {
		for _, p := range []kubePod{app, batch, greedy, legacy, stranger} {
			t.Run(p.guest.ns, func(t *testing.T) {
				t.Parallel()
				kubeCheckContainer(t, e, p.guest, "ecs", []string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/e2e"}, p.tenant)
			})
		}
	})
	t.Run("pod identity", func(t *testing.T) { kubePodIdentity(t, e, app, batch, pods) })
	t.Run("deleted and reused", func(t *testing.T) {
		kubeDeleted(t, e, app, pods[app.name], batch)
		reuse := kubePod{"team-b", "reuse-1", "batch", nil, app.guest, "batch"}
		pods[reuse.name] = kubeRun(t, e, reuse)
		kubeWaitServed(t, e, reuse)
		kubeCheckIMDS(t, e, reuse, pods[reuse.name])
		kubeCheckContainer(t, e, reuse.guest, "ecs", []string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/e2e"}, reuse.tenant)
	})
	t.Run("start race", func(t *testing.T) {
		kubeStartRace(t, e, kubePod{"team-a", "racer-1", "app", nil, kubeGuests[5], "app"})
	})

	// A pod refused its claim is worth an event: the agent says which and why.
	log := motoStop(t, proxy, e.leaks)
	if !strings.Contains(log, "pod team-b/greedy-1 claims tenant app") {
		t.Errorf("the proxy's log does not say why pod team-b/greedy-1 is refused")
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// kubeAgentObjects are the agent's ServiceAccount, ClusterRole and
// ClusterRoleBinding exactly as deploy/kubernetes/imds-proxy.yaml (what
// the chart renders) has them.
func kubeAgentObjects(t *testing.T) (*corev1.ServiceAccount, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding) {
	t.Helper()
	b, err := os.ReadFile(kubeManifest)
	if err != nil {
		t.Fatal(err)
	}
	var sa *corev1.ServiceAccount
	var role *rbacv1.ClusterRole
	var binding *rbacv1.ClusterRoleBinding
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", kubeManifest, err)
		}
		var head metav1.TypeMeta
		if err := utilyaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("%s: %v", kubeManifest, err)
		}
		var into any
		switch head.Kind {
		case "ServiceAccount":
			sa = &corev1.ServiceAccount{}
			into = sa
		case "ClusterRole":
			role = &rbacv1.ClusterRole{}
			into = role
		case "ClusterRoleBinding":
			binding = &rbacv1.ClusterRoleBinding{}
			into = binding
		default:
			continue
		}
		if err := utilyaml.Unmarshal(doc, into); err != nil {
			t.Fatalf("%s: %s: %v", kubeManifest, head.Kind, err)
		}
	}
	if sa == nil || role == nil || binding == nil || len(binding.Subjects) != 1 ||
		binding.Subjects[0].Kind != "ServiceAccount" || binding.Subjects[0].Name != sa.Name || binding.Subjects[0].Namespace != sa.Namespace {
		t.Fatalf("%s: want a ServiceAccount, and a ClusterRole bound to it alone", kubeManifest)
	}
	return sa, role, binding
}

// kubeAgent creates the agent's service account and RBAC as the manifest
// has them, checks that RBAC holds it to them, and returns the path of a
// kubeconfig with a TokenRequest token of that service account.
func kubeAgent(t *testing.T, e *kubeEnv) string {
	t.Helper()
	sa, role, binding := kubeAgentObjects(t)
	kubeCreate(t, "namespace "+sa.Namespace, func() error {
		_, err := e.cluster.admin.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sa.Namespace}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil // kube-system: the API server makes it
		}
		return err
	})
	kubeCreate(t, "serviceaccount "+sa.Name, func() error {
		_, err := e.cluster.admin.CoreV1().ServiceAccounts(sa.Namespace).Create(e.ctx, sa, metav1.CreateOptions{})
		return err
	})
	kubeCreate(t, "clusterrole "+role.Name, func() error {
		_, err := e.cluster.admin.RbacV1().ClusterRoles().Create(e.ctx, role, metav1.CreateOptions{})
		return err
	})
	kubeCreate(t, "clusterrolebinding "+binding.Name, func() error {
		_, err := e.cluster.admin.RbacV1().ClusterRoleBindings().Create(e.ctx, binding, metav1.CreateOptions{})
		return err
	})
	t.Logf("the agent: service account %s/%s, %d rules of ClusterRole %s from %s", sa.Namespace, sa.Name, len(role.Rules), role.Name, kubeManifest)
	tok := e.cluster.token(t, e.ctx, sa.Namespace, sa.Name, nil)
	e.leaks.add(tok)
	path := e.cluster.kubeconfig(t, sa.Name, tok)

	// The agent may read pods and namespaces and review tokens, and
	// nothing else: a secret is refused.
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.CoreV1().Pods("").List(e.ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + kubeNode}); err != nil {
		t.Errorf("the agent cannot list its node's pods: %v", err)
	}
	if _, err := agent.CoreV1().Namespaces().List(e.ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("the agent cannot list namespaces: %v", err)
	}
	if _, err := agent.AuthenticationV1().TokenReviews().Create(e.ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "x"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("the agent cannot create a TokenReview: %v", err)
	}
	if _, err := agent.CoreV1().Secrets(sa.Namespace).List(e.ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the agent listing secrets: %v, want Forbidden (RBAC must hold it to what it reads)", err)
	}
	return path
}

// kubeTenantNamespaces creates team-a and team-b, each with the tenants
// its pods may claim, and their service accounts (no controller makes
// them here).
func kubeTenantNamespaces(t *testing.T, e *kubeEnv) {
	t.Helper()
	for name, allowed := range kubeNamespaces {
		kubeCreate(t, "namespace "+name, func() error {
			_, err := e.cluster.admin.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
				Name: name, Annotations: map[string]string{"imds-proxy.io/allowed-tenants": allowed}}}, metav1.CreateOptions{})
			return err
		})
	}
	for _, sa := range []string{"team-a/app", "team-a/runner", "team-b/batch", "team-b/runner"} {
		ns, name, _ := strings.Cut(sa, "/")
		kubeServiceAccount(t, e, ns, name)
	}
}

func kubeServiceAccount(t *testing.T, e *kubeEnv, ns, name string) {
	t.Helper()
	kubeCreate(t, "serviceaccount "+ns+"/"+name, func() error {
		_, err := e.cluster.admin.CoreV1().ServiceAccounts(ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		return err
	})
}

func kubeCreate(t *testing.T, what string, create func() error) {
	t.Helper()
	if err := create(); err != nil {
		t.Fatalf("create %s: %v", what, err)
	}
}

// kubeRun creates p on the agent's node and makes it run on its guest's
// address, as a kubelet would report it.
func kubeRun(t *testing.T, e *kubeEnv, p kubePod) *corev1.Pod {
	t.Helper()
	pod := kubeCreatePod(t, e, p)
	return kubeMarkRunning(t, e, pod, p.guest)
}

func kubeCreatePod(t *testing.T, e *kubeEnv, p kubePod) *corev1.Pod {
	t.Helper()
	no := false
	pod, err := e.cluster.admin.CoreV1().Pods(p.ns).Create(e.ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Annotations: p.annotations},
		Spec: corev1.PodSpec{
			NodeName:                     kubeNode,
			ServiceAccountName:           p.sa,
			AutomountServiceAccountToken: &no,
			Containers:                   []corev1.Container{{Name: "app", Image: "registry.invalid/app:e2e"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", p.ns, p.name, err)
	}
	return pod
}

func kubeMarkRunning(t *testing.T, e *kubeEnv, pod *corev1.Pod, g kubeGuest) *corev1.Pod {
	t.Helper()
	patch := fmt.Sprintf(`{"status":{"phase":"Running","podIP":%q,"podIPs":[{"ip":%[1]q},{"ip":%q}],"hostIP":%q}}`, g.addr, g.addr6, kubeHost4)
	out, err := e.cluster.admin.CoreV1().Pods(pod.Namespace).Patch(e.ctx, pod.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
	if err != nil {
		t.Fatalf("patch the status of pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	return out
}

// kubeStartProxy runs the built binary in Kubernetes mode: its node's pods
// through kubeconfig, four tenants (one kube2iam's role template) assuming
// their roles with the static keys of the profile "moto", every endpoint on
// the addresses setup added.
func kubeStartProxy(t *testing.T, e *kubeEnv, motoURL, kubeconfig string) *e2eProcess {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `server:
  listen: ["169.254.169.254:80", "[fd00:ec2::254]:80"]
  admin_listen: "127.0.0.1:0"
  ecs_listen: "169.254.170.2:80"
  pod_identity_listen: ["169.254.170.23:80", "[fd00:ec2::23]:80"]
kubernetes:
  kubeconfig: %q
  node_name: %s
  role_template: legacy
defaults:
  credentials: {profile: moto}
tenants:
  - name: app
    sources: [{service_account: team-a/app}]
    credentials: {role_arn: "arn:aws:iam::%[3]s:role/kube-app"}
  - name: worker
    credentials: {role_arn: "arn:aws:iam::%[3]s:role/kube-worker"}
  - name: batch
    sources: [{service_account: team-b/batch}]
    credentials: {role_arn: "arn:aws:iam::%[3]s:role/kube-batch"}
  - name: legacy
    credentials: {role_arn: "arn:aws:iam::%[3]s:role/kube-legacy-template"}
`, kubeconfig, kubeNode, kubeAccount)
	config := motoWriteFile(t, t.TempDir(), "imds-proxy.yaml", b.String(), 0o600)
	creds := fmt.Sprintf("[moto]\naws_access_key_id = %s\naws_secret_access_key = %s\n", kubeKeyID, kubeSecret)
	env := motoEnv(t, t.TempDir(), motoURL, "[profile moto]\nregion = us-east-1\n", creds)
	return e2eStart(t, env, "--config", config)
}

// kubeCurl runs curl in g's namespace and returns the status and body.
func kubeCurl(t *testing.T, e *kubeEnv, g kubeGuest, url string, headers ...string) (string, string) {
	t.Helper()
	args := []string{"curl", "-sg", "--max-time", "5", "-w", "\n%{http_code}"}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	out, err := netnsExec(&e.netnsEnv, g.ns, nil, append(args, url)...)
	if err != nil {
		t.Fatalf("curl %s in %s: %v\n%s", url, g.ns, err, out)
	}
	i := strings.LastIndexByte(out, '\n')
	return out[i+1:], out[:i]
}

// kubeWaitServed waits until p's address is served its tenant: the agent
// learns of a pod through its watch, a moment after the patch.
func kubeWaitServed(t *testing.T, e *kubeEnv, p kubePod) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := kubeCurl(t, e, p.guest, "http://169.254.169.254/latest/meta-data/iam/security-credentials/")
		if status == "200" && body == kubeRoles[p.tenant] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s at %s not served %s within 10s: %s %q", p.ns, p.name, p.guest.addr, p.tenant, status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kubeCheckIMDS checks what p's namespace gets from IMDS: the instance of
// its own UID (id, hostname) and its tenant's role through curl and boto3,
// or 403 and no credentials.
func kubeCheckIMDS(t *testing.T, e *kubeEnv, p kubePod, pod *corev1.Pod) {
	status, id := kubeCurl(t, e, p.guest, "http://169.254.169.254/latest/meta-data/instance-id")
	status6, id6 := kubeCurl(t, e, p.guest, "http://[fd00:ec2::254]/latest/meta-data/instance-id")
	if status6 != status || id6 != id {
		t.Errorf("instance-id from %s: %s %q, but from %s: %s %q; want the same pod's answer", p.guest.addr, status, id, p.guest.addr6, status6, id6)
	}
	if p.tenant == "" {
		if status != "403" {
			t.Errorf("instance-id from %s (%s/%s): %s %q, want 403", p.guest.addr, p.ns, p.name, status, id)
		}
	} else {
		want := tenants.PodInstance(tenants.Instance{}, tenants.Pod{UID: string(pod.UID), Name: pod.Name})
		if status != "200" || id != want.ID {
			t.Errorf("instance-id from %s (%s/%s, uid %s): %s %q, want 200 %s", p.guest.addr, p.ns, p.name, pod.UID, status, id, want.ID)
		}
		if status, host := kubeCurl(t, e, p.guest, "http://169.254.169.254/latest/meta-data/local-hostname"); status != "200" || host != pod.Name {
			t.Errorf("local-hostname from %s: %s %q, want 200 %s (the pod's name)", p.guest.addr, status, host, pod.Name)
		}
		who := p.ns + "/" + p.name + " " + string(pod.UID)
		e.mu.Lock()
		if other, ok := e.ids[id]; ok && other != who {
			t.Errorf("instance id %s served to both %s and %s: each pod is its own instance", id, other, who)
		}
		e.ids[id] = who
		e.mu.Unlock()
		t.Logf("%s (%s, uid %s): instance %s", p.guest.addr, p.ns+"/"+p.name, pod.UID, id)
	}
	kubeCheckClient(t, e, p.guest, "imds boto3", e.python, nil, p.tenant)
}

// kubePython asks boto3's default chain for credentials and whose they are.
const kubePython = `import boto3, json
s = boto3.Session()
try:
    c = s.get_credentials()
except Exception as e:
    print(json.dumps({"method": None, "error": type(e).__name__ + ": " + str(e)}))
else:
    if c is None:
        print(json.dumps({"method": None}))
    else:
        print(json.dumps({"method": c.method, "arn": s.client("sts").get_caller_identity()["Arn"]}))
`

// kubeCheckClient runs an unmodified client in g's namespace with extra
// in its environment — /usr/bin/aws when python is "", else boto3 — and
// checks that it gets tenant's role, or no credentials when tenant is "".
func kubeCheckClient(t *testing.T, e *kubeEnv, g kubeGuest, what, python string, extra []string, tenant string) {
	t.Helper()
	env := append([]string{"PATH=/usr/bin:/bin", "HOME=" + e.home, "AWS_DEFAULT_REGION=us-east-1", "AWS_ENDPOINT_URL=" + e.relay}, extra...)
	begin := time.Now()
	var arn, fail string
	if python == "" {
		out, err := netnsExec(&e.netnsEnv, g.ns, env, "/usr/bin/aws", "sts", "get-caller-identity", "--endpoint-url", e.relay, "--output", "json")
		var id struct{ Arn string }
		if err == nil && json.Unmarshal([]byte(out), &id) == nil {
			arn = id.Arn
		} else {
			fail = strings.TrimSpace(out)
		}
	} else {
		out, err := netnsExec(&e.netnsEnv, g.ns, env, python, "-c", kubePython)
		var got struct {
			Method *string
			ARN    string `json:"arn"`
			Error  string
		}
		if err != nil || json.Unmarshal([]byte(lastLine(out)), &got) != nil {
			t.Errorf("%s in %s: %v\n%s", what, g.ns, err, out)
			return
		}
		arn, fail = got.ARN, got.Error
		if got.Method != nil {
			fail = *got.Method + " " + fail
		}
	}
	took := time.Since(begin).Round(time.Millisecond)
	if tenant == "" {
		if arn != "" {
			t.Errorf("%s in %s got %s, want no credentials", what, g.ns, arn)
		}
		t.Logf("%s in %s: no credentials (%s) in %s", what, g.ns, motoTail(fail, 200), took)
		return
	}
	want := fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/", kubeAccount, kubeRoles[tenant])
	if !strings.HasPrefix(arn, want) {
		t.Errorf("%s in %s: %q (%s), want %s...", what, g.ns, arn, fail, want)
		return
	}
	t.Logf("%s in %s: %s in %s", what, g.ns, arn, took)
}

// kubeCheckContainer runs boto3 and the AWS CLI in g's namespace with the
// container credentials variables of extra, IMDS disabled so that nothing
// else can answer.
func kubeCheckContainer(t *testing.T, e *kubeEnv, g kubeGuest, form string, extra []string, tenant string) {
	t.Helper()
	extra = append(extra, "AWS_EC2_METADATA_DISABLED=true")
	kubeCheckClient(t, e, g, form+" boto3", e.python, extra, tenant)
	kubeCheckClient(t, e, g, form+" aws cli", "", extra, tenant)
}

// kubePodIdentity checks the EKS Pod Identity endpoint from app's
// namespace: a projected-style token of app's service account for
// pods.eks.amazonaws.com gets app's role, one of batch's gets batch's
// (the token, not the address, chooses), and a token of a service account
// no tenant lists, one for another audience or none at all get nothing.
func kubePodIdentity(t *testing.T, e *kubeEnv, app, batch kubePod, pods map[string]*corev1.Pod) {
	dir := t.TempDir()
	tokens := []struct {
		name, token, tenant string
	}{
		{"app", e.cluster.token(t, e.ctx, app.ns, app.sa, pods[app.name], kubePodIdentityAudience), "app"},
		{"batch", e.cluster.token(t, e.ctx, batch.ns, batch.sa, pods[batch.name], kubePodIdentityAudience), "batch"},
		{"unlisted service account", e.cluster.token(t, e.ctx, "team-a", "runner", pods["worker-1"], kubePodIdentityAudience), ""},
		{"wrong audience", e.cluster.token(t, e.ctx, app.ns, app.sa, pods[app.name]), ""},
		{"garbage", "eyJhbGciOiJSUzI1NiJ9.bm90IGEgdG9rZW4.c2lnbmF0dXJl", ""},
	}
	const url, url6 = "http://169.254.170.23/v1/credentials", "http://[fd00:ec2::23]/v1/credentials"
	cliPodIdentity := kubeCLIHasPodIdentity(t)
	for _, tk := range tokens {
		e.leaks.add(tk.token)
		t.Run(tk.name, func(t *testing.T) {
			status, body := kubeCurl(t, e, app.guest, url, "Authorization: "+tk.token)
			switch {
			case tk.tenant == "" && (status == "200" || strings.Contains(body, "AccessKeyId")):
				t.Errorf("curl %s with the %s token: %s, want no credentials", url, tk.name, status)
			case tk.tenant != "" && (status != "200" || !strings.Contains(body, "AccessKeyId")):
				t.Errorf("curl %s with the %s token: %s %s, want credentials", url, tk.name, status, motoTail(body, 300))
			}
			status6, body6 := kubeCurl(t, e, app.guest, url6, "Authorization: "+tk.token)
			if (status6 == "200") != (status == "200") || strings.Contains(body6, "AccessKeyId") != strings.Contains(body, "AccessKeyId") {
				t.Errorf("curl %s with the %s token: %s, but %s over IPv4", url6, tk.name, status6, status)
			}
			file := motoWriteFile(t, dir, strings.ReplaceAll(tk.name, " ", "-")+".token", tk.token, 0o600)
			env := []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + url, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=" + file}
			if tk.tenant != "" {
				env6 := []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + url6, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=" + file, "AWS_EC2_METADATA_DISABLED=true"}
				kubeCheckClient(t, e, app.guest, "pod identity (IPv6) boto3", e.python, env6, tk.tenant)
			}
			if cliPodIdentity {
				kubeCheckContainer(t, e, app.guest, "pod identity", env, tk.tenant)
			} else {
				kubeCheckClient(t, e, app.guest, "pod identity boto3", e.python, append(env, "AWS_EC2_METADATA_DISABLED=true"), tk.tenant)
			}
		})
	}
}

// kubeCLIHasPodIdentity reports whether /usr/bin/aws reads Pod Identity's
// endpoint. Debian 12's AWS CLI (2.9.19) predates it: its botocore takes
// container credentials from 169.254.170.2 and loopback only and knows no
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE. That CLI is still checked
// through the ECS form; boto3 alone carries the Pod Identity checks then.
func kubeCLIHasPodIdentity(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command("/usr/bin/aws", "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("aws --version: %v\n%s", err, out)
	}
	root := "/usr/lib/python3/dist-packages/awscli/botocore/utils.py"
	b, err := os.ReadFile(root)
	if err == nil && !bytes.Contains(b, []byte("169.254.170.23")) {
		t.Logf("%s: its botocore (%s) does not accept 169.254.170.23: the Pod Identity checks run with boto3 only",
			strings.TrimSpace(string(out)), filepath.Dir(root))
		return false
	}
	return true
}

// kubeDeleted deletes p (at once, as a kubelet confirms it) and checks that
// its address stops resolving as soon as the agent's watch brings the
// deletion: IMDS and the ECS endpoint answer 403 from then on. Its Pod
// Identity token, used (and so reviewed) just before, gets nothing
// afterwards, not even from other's address.
func kubeDeleted(t *testing.T, e *kubeEnv, p kubePod, pod *corev1.Pod, other kubePod) {
	const pi = "http://169.254.170.23/v1/credentials"
	token := e.cluster.token(t, e.ctx, p.ns, p.sa, pod, kubePodIdentityAudience)
	e.leaks.add(token)
	if status, body := kubeCurl(t, e, other.guest, pi, "Authorization: "+token); status != "200" {
		t.Fatalf("%s with %s/%s's token before its delete: %s %s, want 200", pi, p.ns, p.name, status, motoTail(body, 200))
	}
	zero := int64(0)
	if err := e.cluster.admin.CoreV1().Pods(p.ns).Delete(e.ctx, p.name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	var answers []string
	for {
		status, _ := kubeCurl(t, e, p.guest, "http://169.254.169.254/latest/meta-data/instance-id")
		answers = append(answers, fmt.Sprintf("%s at %s", status, time.Since(deleted).Round(time.Millisecond)))
		if status == "403" {
			break
		}
		if status != "200" || time.Since(deleted) > 5*time.Second {
			t.Fatalf("%s, of deleted pod %s/%s, answered %v after the delete, want 403", p.guest.addr, p.ns, p.name, answers)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("deleted %s/%s: its address %s answered %s after the delete returned (curl in the namespace included)",
		p.ns, p.name, p.guest.addr, strings.Join(answers, ", "))
	for _, url := range []string{"http://169.254.169.254/latest/meta-data/instance-id", "http://169.254.170.2/v2/credentials/e2e"} {
		if status, body := kubeCurl(t, e, p.guest, url); status != "403" {
			t.Errorf("%s from deleted pod %s/%s's address: %s %s, want 403", url, p.ns, p.name, status, motoTail(body, 200))
		}
	}
	if status, body := kubeCurl(t, e, other.guest, pi, "Authorization: "+token); status == "200" || strings.Contains(body, "AccessKeyId") {
		t.Errorf("%s with deleted pod %s/%s's token: %s, want no credentials", pi, p.ns, p.name, status)
	}
}

// kubeStartRace asks for an instance id from p's address before p exists,
// and, once the agent holds that request (it has read it and not
// answered), creates p and patches its status: the request must be
// answered with p's instance, not refused.
func kubeStartRace(t *testing.T, e *kubeEnv, p kubePod) {
	done := make(chan string, 1)
	go func() {
		out, _ := netnsExec(&e.netnsEnv, p.guest.ns, nil, "curl", "-s", "--max-time", "5",
			"-w", " %{http_code} %{time_total}", "http://169.254.169.254/latest/meta-data/instance-id")
		done <- out
	}()
	held := kubeWaitHeld(t, e, p.guest.addr, done)
	begin := time.Now()
	pod := kubeRun(t, e, p)
	running := time.Since(begin)
	out := <-done
	want := tenants.PodInstance(tenants.Instance{}, tenants.Pod{UID: string(pod.UID), Name: pod.Name}).ID
	f := strings.Fields(out)
	if len(f) != 3 || f[1] != "200" || f[0] != want {
		t.Fatalf("the racer %s/%s's request, held from before the pod existed: %q, want %s 200", p.ns, p.name, out, want)
	}
	t.Logf("the racer %s/%s (uid %s): held (%s), pod created and running %s later; answered %q (instance, status, curl's seconds)",
		p.ns, p.name, pod.UID, held, running.Round(time.Millisecond), out)
}

// kubeWaitHeld waits until the agent has read a request from addr and not
// answered it: on the host, a connection from addr to 169.254.169.254:80
// that has received bytes, has none left unread and has sent none.
func kubeWaitHeld(t *testing.T, e *kubeEnv, addr string, done <-chan string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := netnsMust(t, &e.netnsEnv, "ss", "-Htin", "state", "established", "src", "169.254.169.254:80", "dst", addr)
		f := strings.Fields(out)
		received := 0
		for _, w := range f {
			if v, ok := strings.CutPrefix(w, "bytes_received:"); ok {
				received, _ = strconv.Atoi(v)
			}
		}
		if len(f) > 2 && f[0] == "0" && received > 0 && !strings.Contains(out, "bytes_sent:") {
			return fmt.Sprintf("%d bytes read from %s", received, f[3])
		}
		select {
		case out := <-done:
			t.Fatalf("the request from %s was answered before any pod had its address: %q", addr, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request from %s held within 5s; ss: %q", addr, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kubeTopology builds the bridge and a namespace per guest, each with a
// veth on the bridge, its address and routes to the three link-local
// endpoints only. Everything is deleted when the test ends.
func kubeTopology(t *testing.T, e *kubeEnv) {
	if out := netnsMust(t, &e.netnsEnv, "ip", "-o", "addr", "show", "to", kubeHost4+"/24"); strings.TrimSpace(out) != "" {
		need(t, "the network "+kubeHost4+"/24 free on this host", fmt.Errorf("in use: %s", out))
	}
	t.Cleanup(kubeClean)
	must := func(args ...string) { netnsMust(t, &e.netnsEnv, args...) }
	must("ip", "link", "add", kubeBridge, "type", "bridge")
	must("ip", "addr", "add", kubeHost4+"/24", "dev", kubeBridge)
	must("ip", "addr", "add", kubeHost6+"/64", "dev", kubeBridge, "nodad")
	must("ip", "link", "set", kubeBridge, "up")
	for _, g := range kubeGuests {
		must("ip", "netns", "add", g.ns)
		must("ip", "link", "add", g.veth, "type", "veth", "peer", "name", "eth0", "netns", g.ns)
		must("ip", "link", "set", g.veth, "master", kubeBridge, "up")
		in := func(args ...string) { must(append([]string{"ip", "netns", "exec", g.ns}, args...)...) }
		in("ip", "link", "set", "lo", "up")
		in("ip", "addr", "add", g.addr+"/24", "dev", "eth0")
		in("ip", "addr", "add", g.addr6+"/64", "dev", "eth0", "nodad")
		in("ip", "link", "set", "eth0", "up")
		for _, dst := range []string{"169.254.169.254/32", "169.254.170.2/32", "169.254.170.23/32"} {
			in("ip", "route", "add", dst, "via", kubeHost4)
		}
		for _, dst := range []string{"fd00:ec2::254/128", "fd00:ec2::23/128"} {
			in("ip", "-6", "route", "add", dst, "via", kubeHost6)
		}
	}
}

// kubeClean deletes the namespaces and links of kubeTopology. The host's
// end of each veth goes first: a namespace's links are deleted only some
// time after the namespace, and a next run would find them.
func kubeClean() {
	for _, g := range kubeGuests {
		_ = exec.Command("ip", "link", "del", g.veth).Run()
		_ = exec.Command("ip", "netns", "del", g.ns).Run()
	}
	_ = exec.Command("ip", "link", "del", kubeBridge).Run()
}
