package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/internal/kubernetes"
	"github.com/imds-proxy/imds-proxy/internal/liveconfig"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// podIdentityReviewer is the TokenReviewer of the EKS Pod Identity
// endpoint when the configuration listens for it (nil otherwise): the
// Kubernetes API server the agent runs against, and the API it reaches it
// through, for the watchers to share (connectKube).
func podIdentityReviewer(cfg *tenants.Config) (handlers.TokenReviewer, *kubernetes.API, error) {
	if len(cfg.Server.PodIdentityListen) == 0 {
		return nil, nil, nil
	}
	api, err := kubernetes.Connect(podIdentityKubeconfig(cfg))
	if err != nil {
		return nil, nil, fmt.Errorf("server.pod_identity_listen: tokens are reviewed by the Kubernetes API server: %w", err)
	}
	r, err := kubernetes.NewTokenReviewer(api, handlers.PodIdentityAudience)
	if err != nil {
		return nil, nil, fmt.Errorf("server.pod_identity_listen: %w", err)
	}
	return podReviewer{r}, api, nil
}

// connectKube is liveconfig.Connect, except that the watchers of the
// kubeconfig the reviewer's API was made from (kubeconfig) share that API:
// one HTTP client, one pool of connections to the API server. api nil:
// there is no reviewer.
func connectKube(api *kubernetes.API, kubeconfig string) liveconfig.ConnectKube {
	return func(k string) (liveconfig.KubeClients, error) {
		if api == nil || k != kubeconfig {
			return liveconfig.Connect(k)
		}
		return liveconfig.KubeClients{Pods: api.Pods(), Namespaces: api.Namespaces()}, nil
	}
}

// podIdentityKubeconfig is the kubeconfig file the reviewer reaches the API
// server with, kubernetes.kubeconfig; empty: the pod's in-cluster service
// account.
func podIdentityKubeconfig(cfg *tenants.Config) string {
	if cfg.Kubernetes == nil {
		return ""
	}
	return cfg.Kubernetes.Kubeconfig
}

// podReviewer adapts the Kubernetes adapter's reviewer to the handlers':
// the same identity, and its refusals as handlers.ErrTokenRefused.
type podReviewer struct{ r *kubernetes.TokenReviewer }

func (p podReviewer) Review(ctx context.Context, token string) (handlers.PodIdentity, error) {
	id, err := p.r.Review(ctx, token)
	if errors.Is(err, kubernetes.ErrUnauthenticated) {
		return handlers.PodIdentity{}, fmt.Errorf("%w: %w", handlers.ErrTokenRefused, err)
	}
	return handlers.PodIdentity(id), err
}
