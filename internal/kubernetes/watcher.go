package kubernetes

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	"github.com/rs/zerolog"
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
	Log  zerolog.Logger
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
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, listThenWatch{}), &Pod{}, 0, cache.Indexers{})
	changes := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changes <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    poke,
		UpdateFunc: func(_, n any) { poke(n) },
		DeleteFunc: poke,
	}); err != nil {
		w.Log.Error().Err(err).Msg("pod informer")
		return
	}
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return
	}
	var last []RunningPod
	report := func() {
		now := snapshot(inf.GetStore().List())
		if last != nil && slices.EqualFunc(now, last, samePod) {
			return
		}
		last = now
		w.Changed(now)
	}
	report()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
			report()
		}
	}
}

// listThenWatch tells client-go's reflector to fill its cache with a plain
// list and then watch, never with a watch-list stream (the WatchListClient
// feature gate, on by default since client-go 0.35). A watch-list waits for
// a bookmark that marks the end of the initial events; a client that never
// sends one, as the fake clientset does not, leaves WaitForCacheSync waiting
// for ever. Declaring it here, on this one ListWatch, keeps the choice out
// of the process-wide feature gates; the list of one node's pods is small,
// and a plain list and watch is served by every API server version.
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
		out = append(out, RunningPod{UID: string(p.UID), Namespace: p.Namespace, Name: p.Name,
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
	if a.UID != b.UID || a.Namespace != b.Namespace || a.Name != b.Name || a.ServiceAccount != b.ServiceAccount ||
		!slices.Equal(a.Addrs, b.Addrs) || len(a.Annotations) != len(b.Annotations) {
		return false
	}
	for k, v := range a.Annotations {
		if w, ok := b.Annotations[k]; !ok || w != v {
			return false
		}
	}
	return true
}
