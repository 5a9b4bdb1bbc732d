package kubernetes_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/imds-proxy/imds-proxy/internal/kubernetes"
	"github.com/imds-proxy/imds-proxy/internal/kubernetes/kubetest"
)

// bound keeps a lost event from hanging a test; no wait is an assertion
// about time.
const bound = 10 * time.Second

// next waits for the next report.
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

func pod(ns, name, uid, ip, tenant string) *corev1.Pod {
	if tenant == "" {
		return kubetest.Pod(ns, name, uid, "sa-"+name, ip)
	}
	return kubetest.Pod(ns, name, uid, "sa-"+name, ip, "imds-proxy.io/tenant", tenant)
}

func TestWatcherFollowsPods(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := fake.NewClientset(pod("web", "a", "uid-a", "10.1.0.5", "web"))
	reports := make(chan []kubernetes.RunningPod, 16)
	f := kubetest.NewPods(cs)
	w := &kubernetes.Watcher{Pods: f, Node: "node-1", Changed: func(ps []kubernetes.RunningPod) { reports <- ps }}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	for _, call := range []string{"list", "watch"} {
		select {
		case sel := <-f.Selectors:
			if sel != "spec.nodeName=node-1" {
				t.Fatalf("%s: field selector %q, want spec.nodeName=node-1", call, sel)
			}
		case <-time.After(bound):
			t.Fatalf("no %s within %v (a watch-list stream instead of list and watch?)", call, bound)
		}
	}
	ps := next(t, reports, "first list")
	if len(ps) != 1 || ps[0].UID != "uid-a" || ps[0].Annotations["imds-proxy.io/tenant"] != "web" ||
		ps[0].ServiceAccount != "sa-a" || !addrsEqual(ps[0].Addrs, "10.1.0.5") {
		t.Fatalf("first report %+v", ps)
	}
	next(t, f.Watching, "watch")
	pods := cs.CoreV1().Pods("web")

	// Relabelled: the new annotation is reported.
	if _, err := pods.Update(ctx, pod("web", "a", "uid-a", "10.1.0.5", "batch"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ps := next(t, reports, "relabel"); len(ps) != 1 || ps[0].Annotations["imds-proxy.io/tenant"] != "batch" {
		t.Fatalf("after relabel %+v", ps)
	}

	// Deleted: gone from the next report.
	if err := pods.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ps := next(t, reports, "delete"); len(ps) != 0 {
		t.Fatalf("after delete %+v", ps)
	}

	// A new pod reusing the address is a new UID with its own annotations.
	reuse := pod("web", "b", "uid-b", "10.1.0.5", "")
	reuse.Spec.Hostname = "host-b"
	if _, err := pods.Create(ctx, reuse, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ps := next(t, reports, "reuse"); len(ps) != 1 || ps[0].UID != "uid-b" || len(ps[0].Annotations) != 0 || ps[0].Hostname != "host-b" {
		t.Fatalf("after reuse %+v", ps)
	}

	// A pending pod without an address, and a host-network pod, hold none.
	hn := pod("web", "h", "uid-h", "192.168.0.1", "web")
	hn.Spec.HostNetwork = true
	for _, p := range []*corev1.Pod{pod("web", "c", "uid-c", "", "web"), hn} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pods.Update(ctx, pod("web", "b", "uid-b", "10.1.0.5", "web"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ps := next(t, reports, "pending and host network"); len(ps) != 1 || ps[0].UID != "uid-b" {
		t.Fatalf("after pending and host-network pods %+v", ps)
	}
	cancel()
	<-done
}

// TestNamespaceWatcher: namespaces and their annotations, as they are
// created, annotated and deleted; a change of anything else is not
// reported.
func TestNamespaceWatcher(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const allowed = "imds-proxy.io/allowed-tenants"
	cs := fake.NewClientset(kubetest.Namespace("team-a", allowed, "app"))
	f := kubetest.NewNamespaces(cs)
	reports := make(chan []kubernetes.RunningNamespace, 16)
	w := &kubernetes.NamespaceWatcher{Namespaces: f, Changed: func(ns []kubernetes.RunningNamespace) { reports <- ns }}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	if ns := next(t, reports, "first list"); len(ns) != 1 || ns[0].Name != "team-a" || ns[0].Annotations[allowed] != "app" {
		t.Fatalf("first report %+v", ns)
	}
	next(t, f.Watching, "watch")
	api := cs.CoreV1().Namespaces()
	if _, err := api.Create(ctx, kubetest.Namespace("team-b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ns := next(t, reports, "create"); len(ns) != 2 || ns[1].Name != "team-b" || len(ns[1].Annotations) != 0 {
		t.Fatalf("after create %+v", ns)
	}
	// A label is not an annotation: no report. The annotation that
	// follows is the next report.
	labelled := kubetest.Namespace("team-b")
	labelled.Labels = map[string]string{"tier": "dev"}
	if _, err := api.Update(ctx, labelled, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Update(ctx, kubetest.Namespace("team-b", allowed, "batch,web"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ns := next(t, reports, "annotate"); len(ns) != 2 || ns[1].Annotations[allowed] != "batch,web" {
		t.Fatalf("after annotate %+v", ns)
	}
	if err := api.Delete(ctx, "team-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ns := next(t, reports, "delete"); len(ns) != 1 || ns[0].Name != "team-b" {
		t.Fatalf("after delete %+v", ns)
	}
	cancel()
	<-done
}

func addrsEqual(as []netip.Addr, want ...string) bool {
	if len(as) != len(want) {
		return false
	}
	for i, w := range want {
		if as[i] != netip.MustParseAddr(w) {
			return false
		}
	}
	return true
}
