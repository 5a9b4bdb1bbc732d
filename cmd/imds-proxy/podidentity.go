package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/internal/kubernetes"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// podIdentityReviewer is the TokenReviewer of the EKS Pod Identity
// endpoint when the configuration listens for it (nil otherwise): the
// Kubernetes API server the agent runs against.
func podIdentityReviewer(cfg *tenants.Config) (handlers.TokenReviewer, error) {
	if len(cfg.Server.PodIdentityListen) == 0 {
		return nil, nil
	}
	rc, err := kubernetes.RESTConfig(podIdentityKubeconfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("server.pod_identity_listen: tokens are reviewed by the Kubernetes API server: %w", err)
	}
	r, err := kubernetes.NewTokenReviewer(rc, handlers.PodIdentityAudience)
	if err != nil {
		return nil, fmt.Errorf("server.pod_identity_listen: %w", err)
	}
	return podReviewer{r}, nil
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
