package kubernetes

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// PodClient lists and watches pods of every namespace: the two calls an
// informer makes. Tests satisfy it with client-go's fake clientset.
type PodClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*PodList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// NamespaceClient lists and watches the cluster's namespaces. Tests
// satisfy it with client-go's fake clientset.
type NamespaceClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*NamespaceList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// RESTConfig is the API server's client configuration: from the kubeconfig
// file when one is given (development), else the pod's in-cluster service
// account.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster configuration (set kubernetes.kubeconfig outside a cluster): %w", err)
	}
	return cfg, nil
}

// restCore is a REST client of core/v1 that decodes only the narrow types
// of newScheme.
type restCore struct {
	c     rest.Interface
	codec runtime.ParameterCodec
}

func newRESTCore(cfg *rest.Config) (restCore, error) {
	s := newScheme()
	c := rest.CopyConfig(cfg)
	gv := coreV1()
	c.GroupVersion = &gv
	c.APIPath = "/api"
	c.NegotiatedSerializer = serializer.NewCodecFactory(s).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = "imds-proxy"
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return restCore{}, fmt.Errorf("kubernetes client: %w", err)
	}
	return restCore{c: rc, codec: runtime.NewParameterCodec(s)}, nil
}

func (r restCore) list(ctx context.Context, resource string, opts metav1.ListOptions, into runtime.Object) error {
	return r.c.Get().Resource(resource).VersionedParams(&opts, r.codec).Do(ctx).Into(into)
}

func (r restCore) watch(ctx context.Context, resource string, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return r.c.Get().Resource(resource).VersionedParams(&opts, r.codec).Watch(ctx)
}

// restPods is PodClient over restCore.
type restPods struct{ restCore }

// NewPodClient returns a PodClient for the API server of cfg.
func NewPodClient(cfg *rest.Config) (PodClient, error) {
	c, err := newRESTCore(cfg)
	if err != nil {
		return nil, err
	}
	return restPods{c}, nil
}

func (p restPods) List(ctx context.Context, opts metav1.ListOptions) (*PodList, error) {
	l := &PodList{}
	return l, p.list(ctx, "pods", opts, l)
}

func (p restPods) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return p.watch(ctx, "pods", opts)
}

// restNamespaces is NamespaceClient over restCore.
type restNamespaces struct{ restCore }

// NewNamespaceClient returns a NamespaceClient for the API server of cfg.
func NewNamespaceClient(cfg *rest.Config) (NamespaceClient, error) {
	c, err := newRESTCore(cfg)
	if err != nil {
		return nil, err
	}
	return restNamespaces{c}, nil
}

func (n restNamespaces) List(ctx context.Context, opts metav1.ListOptions) (*NamespaceList, error) {
	l := &NamespaceList{}
	return l, n.list(ctx, "namespaces", opts, l)
}

func (n restNamespaces) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return n.watch(ctx, "namespaces", opts)
}
