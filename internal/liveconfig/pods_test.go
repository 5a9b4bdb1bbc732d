package liveconfig_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/imds-proxy/imds-proxy/internal/kubernetes/kubetest"
	"github.com/imds-proxy/imds-proxy/internal/liveconfig"
	"github.com/imds-proxy/imds-proxy/tenants"
)

const (
	tenantKey  = tenants.PodTenantAnnotation
	allowedKey = tenants.AllowedTenantsAnnotation
)

// kubeConfig has a tenant claimed by annotation (web), one by service
// account (batch), and a static one.
const kubeConfig = `kubernetes: {node_name: node-1}
tenants:
  - name: web
    credentials: {profile: dev}
  - name: batch
    sources: [{service_account: jobs/runner}]
    credentials: {profile: dev}
  - name: static
    sources: [10.9.0.1]
`

// lines records the log's messages.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, string(p))
	return len(p), nil
}

func (l *lines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.all {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// connectTo returns ConnectKube over a fake clientset, and the adapters'
// watch signals.
func connectTo(cs *fake.Clientset) (liveconfig.ConnectKube, *kubetest.Pods, *kubetest.Namespaces) {
	pods, ns := kubetest.NewPods(cs), kubetest.NewNamespaces(cs)
	return func(string) (liveconfig.KubeClients, error) {
		return liveconfig.KubeClients{Pods: pods, Namespaces: ns}, nil
	}, pods, ns
}

func runPods(t *testing.T, live *liveconfig.Pods) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		live.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// TestPodSources drives the pod and namespace informers through client-go's
// fake clientset: pods added, relabelled, deleted, an address reused, and a
// namespace that refuses a claim until its annotation allows it.
func TestPodSources(t *testing.T) {
	cfg, err := tenants.Parse("c.yaml", []byte(kubeConfig), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset(
		kubetest.Namespace("team-a", allowedKey, "web"),
		kubetest.Namespace("jobs"),
		kubetest.Pod("team-a", "a", "uid-a", "default", "10.1.0.5", tenantKey, "web"),
	)
	connect, podsAPI, nsAPI := connectTo(cs)
	var applied appliedConfigs
	log := &lines{}
	live := liveconfig.NewPods(zerolog.New(log), "", connect, cfg, applied.apply)
	runPods(t, live)
	waitSources(t, &applied, "web[] batch[] static[10.9.0.1/32] web@team-a/a[10.1.0.5/32]")
	recv(t, podsAPI.Watching)
	recv(t, nsAPI.Watching)
	ctx := context.Background()
	teamA, jobs := cs.CoreV1().Pods("team-a"), cs.CoreV1().Pods("jobs")

	// By service account, whatever its namespace allows.
	if _, err := jobs.Create(ctx, kubetest.Pod("jobs", "j", "uid-j", "runner", "10.1.0.6"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSources(t, &applied, "web[] batch[] static[10.9.0.1/32] batch@jobs/j[10.1.0.6/32] web@team-a/a[10.1.0.5/32]")

	// Relabelled to a tenant team-a does not allow: refused, and said once.
	if _, err := teamA.Update(ctx, kubetest.Pod("team-a", "a", "uid-a", "default", "10.1.0.5", tenantKey, "batch"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSources(t, &applied, "web[] batch[] static[10.9.0.1/32] batch@jobs/j[10.1.0.6/32]")
	const refusal = "pod team-a/a claims tenant batch by annotation imds-proxy.io/tenant, which namespace team-a's imds-proxy.io/allowed-tenants does not allow"
	// Another pod comes and goes: the refusal, which still holds, is not
	// logged again.
	if _, err := jobs.Create(ctx, kubetest.Pod("jobs", "k", "uid-k", "runner", "10.1.0.7"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSources(t, &applied, "web[] batch[] static[10.9.0.1/32] batch@jobs/j[10.1.0.6/32] batch@jobs/k[10.1.0.7/32]")
	if n := log.count(refusal); n != 1 {
		t.Errorf("the refusal was logged %d times, want once", n)
	}
	// The namespace allows it now.
	if _, err := cs.CoreV1().Namespaces().Update(ctx, kubetest.Namespace("team-a", allowedKey, "web,batch"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSources(t, &applied, "web[] batch[] static[10.9.0.1/32] batch@jobs/j[10.1.0.6/32] batch@jobs/k[10.1.0.7/32] batch@team-a/a[10.1.0.5/32]")

	// Deleted: its address stops resolving with the next apply. A new pod
	// at the same address is served as its own tenant, never the old one's.
	if err := jobs.Delete(ctx, "j", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSources(t, &applied, "web[] batch[] static[10.9.0.1/32] batch@jobs/k[10.1.0.7/32] batch@team-a/a[10.1.0.5/32]")
	if _, err := teamA.Create(ctx, kubetest.Pod("team-a", "w", "uid-w", "default", "10.1.0.6", tenantKey, "web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSources(t, &applied, "web[] batch[] static[10.9.0.1/32] batch@jobs/k[10.1.0.7/32] batch@team-a/a[10.1.0.5/32] web@team-a/w[10.1.0.6/32]")

	// A reload without the kubernetes: block stops following.
	plain, err := tenants.Parse("c.yaml", []byte("tenants:\n  - {name: static, sources: [10.9.0.1]}\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	live.SetFile(plain)
	waitSources(t, &applied, "static[10.9.0.1/32]")
	if live.WaitForSource(ctx, netip.MustParseAddr("10.1.0.5")) {
		t.Error("WaitForSource is true with no pod followed")
	}
}

// TestPodsWaitForSource: the start race, in a synctest bubble. A request
// from a pod's address arrives before the informer has seen the pod — at
// start, before the first lists, and later, before the pod's event: it is
// held until the pod is applied, and no longer than its deadline.
func TestPodsWaitForSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, err := tenants.Parse("c.yaml", []byte(kubeConfig), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cs := fake.NewClientset(kubetest.Namespace("team-a", allowedKey, "web"),
			kubetest.Pod("team-a", "a", "uid-a", "default", "10.1.0.5", tenantKey, "web"))
		connect, _, _ := connectTo(cs)
		var applied appliedConfigs
		live := liveconfig.NewPods(zerolog.New(zerolog.NewTestWriter(t)), "", connect, cfg, applied.apply)
		addr := netip.MustParseAddr

		// Before the first lists: held, even for a pod already running,
		// until the deadline.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		start := time.Now()
		if live.WaitForSource(ctx, addr("10.1.0.5")) || time.Since(start) != time.Second {
			t.Fatalf("WaitForSource before any list: released after %v", time.Since(start))
		}
		cancel()

		type result struct {
			ok      bool
			sources string
			waited  time.Duration
		}
		wait := func(a string, d time.Duration) <-chan result {
			res := make(chan result, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), d)
				defer cancel()
				start := time.Now()
				ok := live.WaitForSource(ctx, addr(a))
				res <- result{ok, applied.sources(), time.Since(start)}
			}()
			return res
		}
		// The agent starts while a request of the running pod is held: it
		// is let go once the first lists are applied.
		early := wait("10.1.0.5", time.Second)
		synctest.Wait()
		runPods(t, live)
		if r := <-early; !r.ok || !strings.Contains(r.sources, "web@team-a/a[10.1.0.5/32]") {
			t.Fatalf("held at start: released with %v and %q", r.ok, r.sources)
		}

		// A pod's first request before its event: held until it is applied.
		raced := wait("10.1.0.6", time.Second)
		synctest.Wait()
		select {
		case r := <-raced:
			t.Fatalf("released with %v before the pod existed", r.ok)
		default:
		}
		if _, err := cs.CoreV1().Pods("team-a").Create(context.Background(),
			kubetest.Pod("team-a", "b", "uid-b", "default", "10.1.0.6", tenantKey, "web"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if r := <-raced; !r.ok || !strings.Contains(r.sources, "web@team-a/b[10.1.0.6/32]") || r.waited >= time.Second {
			t.Fatalf("the start race: released with %v after %v, %q applied", r.ok, r.waited, r.sources)
		}

		// A pod that claims what its namespace refuses holds its address:
		// not held, it is refused at once.
		if _, err := cs.CoreV1().Pods("team-a").Create(context.Background(),
			kubetest.Pod("team-a", "x", "uid-x", "default", "10.1.0.7", tenantKey, "batch"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if r := <-wait("10.1.0.7", time.Second); !r.ok || r.waited != 0 || strings.Contains(r.sources, "10.1.0.7") {
			t.Fatalf("a refused pod's address: %v after %v, %q applied", r.ok, r.waited, r.sources)
		}
		// An address no pod holds: held until the deadline, then refused.
		if r := <-wait("10.1.0.99", time.Second); r.ok || r.waited != time.Second {
			t.Fatalf("an unknown address: %v after %v", r.ok, r.waited)
		}
	})
}
