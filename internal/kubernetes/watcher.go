package kubernetes

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// RunningPod is a pod of the node as the tenants see it.
type RunningPod struct {
	UID            string
	Namespace      string
	Name           string
	Hostname       string // spec.hostname; empty: the pod's name
	ServiceAccount string
	Annotations    map[string]string
	Addrs          []netip.Addr
}

// Watcher follows the pods of one node and reports every change of the
// set that holds addresses.
type Watcher struct {
	Pods PodClient
	// Node is the node whose pods are followed (spec.nodeName, from the
	// NODE_NAME environment variable). Required: without it every pod of
	// the cluster would be listed.
	Node string
	// Changed receives every pod of the node that holds an address, after
	// the first full list and after each change; a deleted pod is absent
	// from the next report at once. It is called from one goroutine.
	Changed func([]RunningPod)
}

// Run follows the node's pods until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	sel := fields.OneTermEqualSelector("spec.nodeName", w.Node).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return w.Pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return w.Pods.Watch(ctx, o)
		},
	}
	var last []RunningPod
	follow(ctx, lw, &Pod{}, func(objs []any) {
		now := snapshot(objs)
		if last != nil && slices.EqualFunc(now, last, samePod) {
			return
		}
		last = now
		w.Changed(now)
	})
}

// NamespaceWatcher follows the cluster's namespaces, for their
// annotations (imds-proxy.io/allowed-tenants): it needs list and watch
// on namespaces.
type NamespaceWatcher struct {
	Namespaces NamespaceClient
	// Changed receives every namespace, after the first full list and
	// after each change of a name or an annotation. It is called from one
	// goroutine.
	Changed func([]RunningNamespace)
}

// RunningNamespace is a namespace as the tenants see it.
type RunningNamespace struct {
	Name        string
	Annotations map[string]string
}

// Run follows the namespaces until ctx ends.
func (w *NamespaceWatcher) Run(ctx context.Context) {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return w.Namespaces.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return w.Namespaces.Watch(ctx, o)
		},
	}
	var last []RunningNamespace
	follow(ctx, lw, &Namespace{}, func(objs []any) {
		now := make([]RunningNamespace, 0, len(objs))
		for _, o := range objs {
			if n, ok := o.(*Namespace); ok {
				now = append(now, RunningNamespace{Name: n.Name, Annotations: n.Annotations})
			}
		}
		slices.SortFunc(now, func(a, b RunningNamespace) int { return strings.Compare(a.Name, b.Name) })
		same := func(a, b RunningNamespace) bool { return a.Name == b.Name && maps.Equal(a.Annotations, b.Annotations) }
		if last != nil && slices.EqualFunc(now, last, same) {
			return
		}
		last = now
		w.Changed(now)
	})
}

// follow fills a store with the objects lw lists (each like obj) until ctx
// ends, and calls report with every stored object once the first list is
// in, then after each change, from this one goroutine. Changes that arrive
// while report runs are folded into one call. The store is filled by
// client-go's Reflector directly: with one reader that only asks for the
// whole set, an informer's queue (a DeltaFIFO or RealFIFO and the
// controller that pops it) would only copy each change once more, and it
// adds 120 KB to the binary.
func follow(ctx context.Context, lw *cache.ListWatch, obj runtime.Object, report func([]any)) {
	changes := make(chan struct{}, 1)
	store := notifyingStore{Store: cache.NewStore(cache.DeletionHandlingMetaNamespaceKeyFunc), changed: func() {
		select {
		case changes <- struct{}{}:
		default:
		}
	}}
	r := cache.NewReflectorWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, listThenWatch{}), obj, store,
		cache.ReflectorOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.RunWithContext(ctx)
	}()
	defer func() { <-done }()
	// The first change is the first list: the reflector lists before it
	// watches, and replaces the whole store with what it listed.
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
			report(store.List())
		}
	}
}

// notifyingStore is the reflector's store: client-go's, which calls
// changed after each change. It keeps what the proxy reads, not the
// server's field bookkeeping (managedFields is often most of an object).
type notifyingStore struct {
	cache.Store
	changed func()
}

func (s notifyingStore) Add(o any) error    { return s.done(s.Store.Add(trimmed(o))) }
func (s notifyingStore) Update(o any) error { return s.done(s.Store.Update(trimmed(o))) }
func (s notifyingStore) Delete(o any) error { return s.done(s.Store.Delete(o)) }

func (s notifyingStore) Replace(list []any, rv string) error {
	for i := range list {
		list[i] = trimmed(list[i])
	}
	return s.done(s.Store.Replace(list, rv))
}

func (s notifyingStore) done(err error) error {
	s.changed()
	return err
}

// trimmed is o without its managedFields.
func trimmed(o any) any {
	if m, err := meta.Accessor(o); err == nil {
		m.SetManagedFields(nil)
	}
	return o
}

// listThenWatch tells client-go's reflector to fill its cache with a plain
// list and then watch, never with a watch-list stream (the WatchListClient
// feature gate, on by default since client-go 0.35). A watch-list waits for
// a bookmark that marks the end of the initial events; a client that never
// sends one, as the fake clientset does not, leaves the first list
// unfinished, and follow without a first report, for ever. Declaring it here, on each ListWatch, keeps the choice out of
// the process-wide feature gates; the lists of one node's pods and of the
// namespaces are small, and a plain list and watch is served by every API
// server version.
type listThenWatch struct{}

func (listThenWatch) IsWatchListSemanticsUnSupported() bool { return true }

// snapshot is the pods that hold an address, in a stable order.
func snapshot(objs []any) []RunningPod {
	out := make([]RunningPod, 0, len(objs))
	for _, o := range objs {
		p, ok := o.(*Pod)
		if !ok {
			continue
		}
		addrs := p.Addrs()
		if len(addrs) == 0 {
			continue
		}
		out = append(out, RunningPod{UID: string(p.UID), Namespace: p.Namespace, Name: p.Name, Hostname: p.Spec.Hostname,
			ServiceAccount: p.Spec.ServiceAccountName, Annotations: p.Annotations, Addrs: addrs})
	}
	slices.SortFunc(out, func(a, b RunningPod) int {
		if c := strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.UID, b.UID)
	})
	return out
}

func samePod(a, b RunningPod) bool {
	return a.UID == b.UID && a.Namespace == b.Namespace && a.Name == b.Name && a.Hostname == b.Hostname &&
		a.ServiceAccount == b.ServiceAccount && slices.Equal(a.Addrs, b.Addrs) && maps.Equal(a.Annotations, b.Annotations)
}
