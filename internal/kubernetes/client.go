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

// restPods is PodClient over a REST client that decodes only Pod and
// PodList.
type restPods struct {
	c     rest.Interface
	codec runtime.ParameterCodec
}

// NewPodClient returns a PodClient for the API server of cfg.
func NewPodClient(cfg *rest.Config) (PodClient, error) {
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
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return restPods{c: rc, codec: runtime.NewParameterCodec(s)}, nil
}

func (p restPods) List(ctx context.Context, opts metav1.ListOptions) (*PodList, error) {
	l := &PodList{}
	err := p.c.Get().Resource("pods").VersionedParams(&opts, p.codec).Do(ctx).Into(l)
	return l, err
}

func (p restPods) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return p.c.Get().Resource("pods").VersionedParams(&opts, p.codec).Watch(ctx)
}
