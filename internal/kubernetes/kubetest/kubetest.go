// Package kubetest adapts client-go's fake clientset to the narrow clients
// of package kubernetes, for tests: the fake's core/v1 objects are
// converted to the narrow types through JSON, as the API server's answers
// would be. It is imported by tests only, so that k8s.io/api stays out of
// the binary.
package kubetest

import (
	"context"
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/imds-proxy/imds-proxy/internal/kubernetes"
)

// Pods is a kubernetes.PodClient over a fake clientset. The fake ignores
// field selectors, so it records them; and since its tracker drops the
// changes made before a watch is registered, it reports each watch it has
// opened.
type Pods struct {
	CS        *fake.Clientset
	Selectors chan string   // of each List and Watch, the first 64
	Watching  chan struct{} // a watch is open, the first 64
}

// NewPods adapts cs's pods.
func NewPods(cs *fake.Clientset) *Pods {
	return &Pods{CS: cs, Selectors: make(chan string, 64), Watching: make(chan struct{}, 64)}
}

func (f *Pods) List(ctx context.Context, o metav1.ListOptions) (*kubernetes.PodList, error) {
	signal(f.Selectors, o.FieldSelector)
	l, err := f.CS.CoreV1().Pods("").List(ctx, o)
	if err != nil {
		return nil, err
	}
	out := &kubernetes.PodList{ListMeta: l.ListMeta}
	for i := range l.Items {
		out.Items = append(out.Items, *narrow(&l.Items[i], &kubernetes.Pod{}))
	}
	return out, nil
}

func (f *Pods) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	signal(f.Selectors, o.FieldSelector)
	w, err := f.CS.CoreV1().Pods("").Watch(ctx, o)
	if err != nil {
		return nil, err
	}
	signal(f.Watching, struct{}{})
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		if p, ok := e.Object.(*corev1.Pod); ok {
			e.Object = narrow(p, &kubernetes.Pod{})
		}
		return e, true
	}), nil
}

// Namespaces is a kubernetes.NamespaceClient over a fake clientset.
type Namespaces struct {
	CS       *fake.Clientset
	Watching chan struct{} // a watch is open, the first 64
}

// NewNamespaces adapts cs's namespaces.
func NewNamespaces(cs *fake.Clientset) *Namespaces {
	return &Namespaces{CS: cs, Watching: make(chan struct{}, 64)}
}

func (f *Namespaces) List(ctx context.Context, o metav1.ListOptions) (*kubernetes.NamespaceList, error) {
	l, err := f.CS.CoreV1().Namespaces().List(ctx, o)
	if err != nil {
		return nil, err
	}
	out := &kubernetes.NamespaceList{ListMeta: l.ListMeta}
	for i := range l.Items {
		out.Items = append(out.Items, *narrow(&l.Items[i], &kubernetes.Namespace{}))
	}
	return out, nil
}

func (f *Namespaces) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	w, err := f.CS.CoreV1().Namespaces().Watch(ctx, o)
	if err != nil {
		return nil, err
	}
	signal(f.Watching, struct{}{})
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		if n, ok := e.Object.(*corev1.Namespace); ok {
			e.Object = narrow(n, &kubernetes.Namespace{})
		}
		return e, true
	}), nil
}

func signal[T any](c chan T, v T) {
	select {
	case c <- v:
	default: // the test reads the first few
	}
}

// narrow converts a core/v1 object to the narrow type into.
func narrow[T runtime.Object](o any, into T) T {
	b, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		panic(err)
	}
	return into
}

// Pod is a running pod of node-1 at ip ("": pending, no address yet),
// with the service account sa and the given annotations (KEY, VALUE, ...).
func Pod(ns, name, uid, sa, ip string, annotations ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)},
		Spec:       corev1.PodSpec{NodeName: "node-1", ServiceAccountName: sa},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	if ip != "" {
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	if len(annotations) > 0 {
		p.Annotations = map[string]string{}
		for i := 0; i+1 < len(annotations); i += 2 {
			p.Annotations[annotations[i]] = annotations[i+1]
		}
	}
	return p
}

// Namespace is a namespace with the given annotations (KEY, VALUE, ...).
func Namespace(name string, annotations ...string) *corev1.Namespace {
	n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if len(annotations) > 0 {
		n.Annotations = map[string]string{}
		for i := 0; i+1 < len(annotations); i += 2 {
			n.Annotations[annotations[i]] = annotations[i+1]
		}
	}
	return n
}
