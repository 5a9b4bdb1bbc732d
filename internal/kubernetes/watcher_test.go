package kubernetes

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
)

// fakePods adapts client-go's fake clientset to PodClient: its core/v1
// pods, converted to the narrow Pod through JSON as the API server's
// answer would be. The fake ignores field selectors, so it records them;
// and since its tracker drops the changes made before a watch is
// registered, it reports each watch it has opened.
type fakePods struct {
	cs        *fake.Clientset
	selectors chan string // of each List and Watch
	watching  chan struct{}
}

func newFakePods(cs *fake.Clientset) fakePods {
	return fakePods{cs: cs, selectors: make(chan string, 64), watching: make(chan struct{}, 64)}
}

func (f fakePods) record(sel string) {
	select {
	case f.selectors <- sel:
	default: // the test reads the first few
	}
}

func narrow(o *corev1.Pod) *Pod {
	b, _ := json.Marshal(o)
	p := &Pod{}
	_ = json.Unmarshal(b, p)
	return p
}

func (f fakePods) List(ctx context.Context, o metav1.ListOptions) (*PodList, error) {
	f.record(o.FieldSelector)
	l, err := f.cs.CoreV1().Pods("").List(ctx, o)
	if err != nil {
		return nil, err
	}
	out := &PodList{ListMeta: l.ListMeta}
	for i := range l.Items {
		out.Items = append(out.Items, *narrow(&l.Items[i]))
	}
	return out, nil
}

func (f fakePods) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	f.record(o.FieldSelector)
	w, err := f.cs.CoreV1().Pods("").Watch(ctx, o)
	if err != nil {
		return nil, err
	}
	select {
	case f.watching <- struct{}{}:
	default:
	}
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		if p, ok := e.Object.(*corev1.Pod); ok {
			e.Object = narrow(p)
		}
		return e, true
	}), nil
}

func pod(ns, name, uid, ip, tenant string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)},
		Spec:       corev1.PodSpec{NodeName: "node-1", ServiceAccountName: "sa-" + name},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
	if tenant != "" {
		p.Annotations = map[string]string{"imds-proxy.io/tenant": tenant}
	}
	return p
}

func TestWatcherFollowsPods(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := fake.NewClientset(pod("web", "a", "uid-a", "10.1.0.5", "web"))
	reports := make(chan []RunningPod, 16)
	f := newFakePods(cs)
	w := &Watcher{Pods: f, Node: "node-1", Log: zerolog.Nop(), Changed: func(ps []RunningPod) { reports <- ps }}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	// Every wait is bounded, so that a lost event fails the test rather
	// than hanging it; none is an assertion about time.
	const bound = 10 * time.Second
	next := func(what string) []RunningPod {
		t.Helper()
		select {
		case ps := <-reports:
			return ps
		case <-time.After(bound):
			t.Fatalf("%s: no report within %v", what, bound)
		}
		return nil
	}
	for _, call := range []string{"list", "watch"} {
		select {
		case sel := <-f.selectors:
			if sel != "spec.nodeName=node-1" {
				t.Fatalf("%s: field selector %q, want spec.nodeName=node-1", call, sel)
			}
		case <-time.After(bound):
			t.Fatalf("no %s within %v (a watch-list stream instead of list and watch?)", call, bound)
		}
	}
	ps := next("first list")
	if len(ps) != 1 || ps[0].UID != "uid-a" || ps[0].Annotations["imds-proxy.io/tenant"] != "web" ||
		ps[0].ServiceAccount != "sa-a" || !slicesEqual(ps[0].Addrs, "10.1.0.5") {
		t.Fatalf("first report %+v", ps)
	}
	select {
	case <-f.watching:
	case <-time.After(bound):
		t.Fatalf("no watch within %v", bound)
	}
	pods := cs.CoreV1().Pods("web")

	// Relabelled: the new annotation is reported.
	p := pod("web", "a", "uid-a", "10.1.0.5", "batch")
	if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ps := next("relabel"); len(ps) != 1 || ps[0].Annotations["imds-proxy.io/tenant"] != "batch" {
		t.Fatalf("after relabel %+v", ps)
	}

	// Deleted: gone from the next report.
	if err := pods.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ps := next("delete"); len(ps) != 0 {
		t.Fatalf("after delete %+v", ps)
	}

	// A new pod reusing the address is a new UID with its own annotations.
	if _, err := pods.Create(ctx, pod("web", "b", "uid-b", "10.1.0.5", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ps := next("reuse"); len(ps) != 1 || ps[0].UID != "uid-b" || len(ps[0].Annotations) != 0 {
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
	if ps := next("pending and host network"); len(ps) != 1 || ps[0].UID != "uid-b" {
		t.Fatalf("after pending and host-network pods %+v", ps)
	}
	cancel()
	<-done
}

func slicesEqual(as []netip.Addr, want ...string) bool {
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
