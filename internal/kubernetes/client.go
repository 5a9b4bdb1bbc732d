package kubernetes

import (
	"context"
	"fmt"
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// PodClient lists and watches pods of every namespace: the two calls a
// reflector makes. Tests satisfy it with client-go's fake clientset.
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

// API is one API server: its client configuration and the one HTTP client
// (one pool of connections, HTTP/2 when the server offers it) that the pod
// and namespace clients and the token reviewer made from it share.
type API struct {
	cfg  *rest.Config
	http *http.Client
	core restCore
}

// Connect is the API of the API server kubeconfig names; "": the pod's
// in-cluster service account (RESTConfig).
func Connect(kubeconfig string) (*API, error) {
	cfg, err := RESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	return NewAPI(cfg)
}

// NewAPI is the API of the API server cfg describes.
func NewAPI(cfg *rest.Config) (*API, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "imds-proxy"
	}
	hc, err := httpClient(cfg, time.Now)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	a := &API{cfg: cfg, http: hc}
	s := newScheme()
	rc, err := a.restClient("/api", coreV1(), s)
	if err != nil {
		return nil, err
	}
	a.core = restCore{c: rc, codec: runtime.NewParameterCodec(s)}
	return a, nil
}

// restClient is a REST client of the group-version gv under apiPath that
// decodes the types of s, over the API's HTTP client.
func (a *API) restClient(apiPath string, gv schema.GroupVersion, s *runtime.Scheme) (*rest.RESTClient, error) {
	c := rest.CopyConfig(a.cfg)
	c.GroupVersion = &gv
	c.APIPath = apiPath
	c.NegotiatedSerializer = serializer.NewCodecFactory(s).WithoutConversion()
	rc, err := rest.RESTClientForConfigAndClient(c, a.http)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return rc, nil
}

// restCore is a REST client of core/v1 that decodes only the narrow types
// of newScheme.
type restCore struct {
	c     rest.Interface
	codec runtime.ParameterCodec
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

// Pods is the API server's PodClient.
func (a *API) Pods() PodClient { return restPods{a.core} }

func (p restPods) List(ctx context.Context, opts metav1.ListOptions) (*PodList, error) {
	l := &PodList{}
	return l, p.list(ctx, "pods", opts, l)
}

func (p restPods) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return p.watch(ctx, "pods", opts)
}

// restNamespaces is NamespaceClient over restCore.
type restNamespaces struct{ restCore }

// Namespaces is the API server's NamespaceClient.
func (a *API) Namespaces() NamespaceClient { return restNamespaces{a.core} }

func (n restNamespaces) List(ctx context.Context, opts metav1.ListOptions) (*NamespaceList, error) {
	l := &NamespaceList{}
	return l, n.list(ctx, "namespaces", opts, l)
}

func (n restNamespaces) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return n.watch(ctx, "namespaces", opts)
}
