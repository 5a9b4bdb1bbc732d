package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// Identity is who an authenticated service account token belongs to: the
// service account, and the pod the token is bound to.
type Identity struct {
	Namespace      string
	ServiceAccount string
	PodName        string
	PodUID         string
}

// ErrUnauthenticated is the error of a token the API server does not
// authenticate for the reviewer's audience, or that is not a pod's service
// account token. Review wraps it with the reason, which never quotes the
// token.
var ErrUnauthenticated = errors.New("token not authenticated")

// Extra keys of a bound service account token's user info: the pod it is
// bound to.
const (
	extraPodName = "authentication.kubernetes.io/pod-name"
	extraPodUID  = "authentication.kubernetes.io/pod-uid"
)

// TokenReviewer asks the API server who a token belongs to with a
// TokenReview (POST /apis/authentication.k8s.io/v1/tokenreviews), for one
// audience. The RBAC it needs: create on tokenreviews.
type TokenReviewer struct {
	c        rest.Interface
	audience string
}

// tokenReview is the part of an authentication.k8s.io/v1 TokenReview the
// proxy sends and reads; k8s.io/api stays out of the binary.
type tokenReview struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Spec       tokenReviewSpec   `json:"spec"`
	Status     tokenReviewStatus `json:"status,omitempty"`
}

type tokenReviewSpec struct {
	Token     string   `json:"token"`
	Audiences []string `json:"audiences,omitempty"`
}

type tokenReviewStatus struct {
	Authenticated bool     `json:"authenticated,omitempty"`
	User          userInfo `json:"user,omitempty"`
	Audiences     []string `json:"audiences,omitempty"`
	Error         string   `json:"error,omitempty"`
}

type userInfo struct {
	Username string              `json:"username,omitempty"`
	Extra    map[string][]string `json:"extra,omitempty"`
}

func authenticationV1() schema.GroupVersion {
	return schema.GroupVersion{Group: "authentication.k8s.io", Version: "v1"}
}

// NewTokenReviewer returns a reviewer of tokens for audience (EKS Pod
// Identity's is pods.eks.amazonaws.com) on the API server of api.
func NewTokenReviewer(api *API, audience string) (*TokenReviewer, error) {
	if audience == "" {
		return nil, errors.New("token reviewer: an audience is required")
	}
	// Only the meta types: Status, in which the API server says why it
	// refused a request, comes as apiVersion v1. The review itself is sent
	// and read as JSON bytes.
	s := runtime.NewScheme()
	metav1.AddToGroupVersion(s, coreV1())
	rc, err := api.restClient("/apis", authenticationV1(), s)
	if err != nil {
		return nil, err
	}
	return &TokenReviewer{c: rc, audience: audience}, nil
}

// Review returns the identity of token: a service account token bound to a
// pod and authenticated for the reviewer's audience. A token the API
// server refuses, one for another audience, one not a service account's or
// not bound to a pod is ErrUnauthenticated; any other error means the API
// server could not be asked, and says nothing of the token.
func (r *TokenReviewer) Review(ctx context.Context, token string) (Identity, error) {
	body, err := json.Marshal(tokenReview{
		APIVersion: authenticationV1().String(),
		Kind:       "TokenReview",
		Spec:       tokenReviewSpec{Token: token, Audiences: []string{r.audience}},
	})
	if err != nil {
		return Identity{}, err
	}
	res := r.c.Post().Resource("tokenreviews").SetHeader("Content-Type", "application/json").Body(body).Do(ctx)
	// Error, unlike Raw, reads the API server's Status: why it refused
	// (such as RBAC without create on tokenreviews).
	if err := res.Error(); err != nil {
		return Identity{}, fmt.Errorf("TokenReview: %w", err)
	}
	raw, _ := res.Raw()
	var tr tokenReview
	if err := json.Unmarshal(raw, &tr); err != nil {
		return Identity{}, fmt.Errorf("TokenReview: the API server's answer: %w", err)
	}
	return identityOf(tr.Status, r.audience)
}

// identityOf reads a review's status: who, if anyone, the token is.
func identityOf(st tokenReviewStatus, audience string) (Identity, error) {
	switch {
	case !st.Authenticated:
		if st.Error != "" {
			return Identity{}, fmt.Errorf("%w: %s", ErrUnauthenticated, st.Error)
		}
		return Identity{}, ErrUnauthenticated
	case !slices.Contains(st.Audiences, audience):
		// An API server that ignores spec.audiences authenticates a token
		// for its own audience: that is not one meant for this endpoint.
		return Identity{}, fmt.Errorf("%w: not for audience %s", ErrUnauthenticated, audience)
	}
	rest, ok := strings.CutPrefix(st.User.Username, "system:serviceaccount:")
	ns, name, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ns == "" || name == "" || strings.Contains(name, ":") {
		return Identity{}, fmt.Errorf("%w: %q is not a service account", ErrUnauthenticated, st.User.Username)
	}
	id := Identity{Namespace: ns, ServiceAccount: name, PodName: first(st.User.Extra[extraPodName]), PodUID: first(st.User.Extra[extraPodUID])}
	if id.PodName == "" || id.PodUID == "" {
		return Identity{}, fmt.Errorf("%w: the token of service account %s/%s is not bound to a pod", ErrUnauthenticated, ns, name)
	}
	return id, nil
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}
