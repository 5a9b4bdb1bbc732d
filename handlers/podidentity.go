package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/netip"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// PodIdentityPath is where the EKS Pod Identity credentials endpoint
// answers: AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials.
const PodIdentityPath = "/v1/credentials"

// PodIdentityAudience is the audience a pod's token must be issued for, as
// on EKS: the projected service account token that
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names.
const PodIdentityAudience = "pods.eks.amazonaws.com"

// MaxPodIdentityToken is the longest Authorization header the endpoint
// reads: a projected service account token is about a kilobyte.
const MaxPodIdentityToken = 8 << 10

// PodIdentity is who an authenticated token belongs to: a service account
// and the pod the token is bound to.
type PodIdentity struct {
	Namespace      string
	ServiceAccount string
	PodName        string
	PodUID         string
}

// ErrTokenRefused is what a TokenReviewer's error wraps when the token is
// not authenticated for PodIdentityAudience (wrong, expired, for another
// audience, not a pod's service account token).
var ErrTokenRefused = errors.New("token refused")

// TokenReviewer authenticates a pod's token: a Kubernetes TokenReview
// for PodIdentityAudience. Review returns the token's identity, an error
// wrapping ErrTokenRefused when the token is not one, or any other error
// when the API server could not be asked.
type TokenReviewer interface {
	Review(ctx context.Context, token string) (PodIdentity, error)
}

// serviceAccountTenants is the configuration's table of service accounts:
// the tenant that lists {service_account: NAMESPACE/NAME} in its sources,
// nil if none does.
type serviceAccountTenants interface {
	ServiceAccountTenant(namespace, name string) *tenants.Tenant
}

// runningPods is the configuration's knowledge of the node's pods:
// following is false when it follows none, and running says whether the
// pod with that UID holds an address.
type runningPods interface {
	PodRunning(uid string) (following, running bool)
}

// The uniform refusal of a token: missing, too long, not a JWT, expired,
// for another audience or refused by the API server alike, so that no
// answer tells a guesser more than "no".
const tokenRefusal = "send the pod's service account token for audience " + PodIdentityAudience +
	" as the Authorization header (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)"

// PodIdentityCredentials returns the handler of the EKS Pod Identity
// endpoint: what the EKS Pod Identity agent serves on 169.254.170.23 and
// [fd00:ec2::23]. A pod's SDK sends its projected service account token
// as the Authorization header; the API server authenticates it with a
// TokenReview (Options.TokenReviewer) for PodIdentityAudience; the token's
// service account chooses the tenant that lists it in its sources, whose
// credentials are answered in the container credentials format. The
// source address chooses nothing, but bounds everything a peer without a
// valid token can spend: its rate, refusals and the reviews it may cause
// (podidentity_reviews.go). Errors are {"code","message"}: 401 for any
// refused token, 403 for a service account no tenant lists or a tenant
// whose IMDS is disabled, 429 past a rate, 503 when the API server or
// the credentials cannot be had (SDKs retry 5xx).
func (s *Server) PodIdentityCredentials() http.Handler {
	return s.credentialsEndpoint(s.servePodIdentity, false)
}

func (s *Server) servePodIdentity(x *exchange, r *http.Request) {
	if refuseCredentialsRequest(x, r, r.URL.Path == PodIdentityPath, "at "+PodIdentityPath) {
		return
	}
	if s.refuseFailingSource(x) {
		// Before the token is looked at: a source that keeps sending
		// refused tokens causes no more reviews until it has waited.
		return
	}
	st := s.state.Load()
	limits := unknownLimits()
	if t, _, ok := st.resolver.Lookup(x.src); ok {
		limits = t.Limits // a pod the configuration serves keeps its tenant's rate
	}
	if !s.sources.allow(x.src, limits, x.start) {
		x.throttled()
		return
	}
	id, err := s.podReviews.review(r.Context(), r.Header.Get("Authorization"))
	switch {
	case errors.Is(err, ErrTokenRefused):
		s.sources.fail(x.src)
		x.jsonError(http.StatusUnauthorized, "InvalidToken", tokenRefusal)
		return
	case errors.Is(err, errReviewsBusy):
		x.Header()["Retry-After"] = []string{"1"}
		x.jsonError(http.StatusServiceUnavailable, "ServiceUnavailable", "too many tokens are being reviewed; retry in a moment")
		return
	case err != nil:
		// The detail (the API server's answer, never the token) is
		// logged; the pod is told only to retry.
		s.log.Warn().Err(err).Str("src", x.src.String()).Msg("pod identity: the token could not be reviewed")
		x.jsonError(http.StatusServiceUnavailable, "ServiceUnavailable", "the token could not be reviewed by the Kubernetes API server; retry in a moment")
		return
	}
	if !s.podRunning(r.Context(), x.src, id.PodUID) {
		x.jsonError(http.StatusForbidden, "AccessDenied", "the token's pod "+id.Namespace+"/"+id.PodName+
			" is not running on this node: a deleted pod's token, or another node's, is worth nothing here")
		return
	}
	st = s.state.Load() // waiting for the pod may have brought a newer configuration
	si := st.serviceAccountSite(id.Namespace, id.ServiceAccount)
	if si == nil {
		x.jsonError(http.StatusForbidden, "AccessDenied", "no tenant lists service account "+id.Namespace+"/"+id.ServiceAccount+
			" in its sources ({service_account: "+id.Namespace+"/"+id.ServiceAccount+"})")
		return
	}
	x.site, x.view = si, si.view.Load()
	if refuseRoleCredentials(x, x.view, si.tenant) {
		return
	}
	// As the EKS Pod Identity agent answers: no RoleArn.
	s.replyContainerDocument(x, r, si.tenant, "")
}

// podRunning says whether the pod a token is bound to runs on this node,
// when the configuration follows the node's pods (otherwise every pod
// passes). A pod not seen yet may be starting, and asking from its new
// address: the request is held as a request from an unknown address is
// (waitForSource), then the newest configuration is asked again.
func (s *Server) podRunning(ctx context.Context, src netip.Addr, uid string) bool {
	running := func() (following, running bool) {
		if p := s.state.Load().pods; p != nil {
			return p.PodRunning(uid)
		}
		return false, false
	}
	if following, ok := running(); !following || ok {
		return true
	}
	if !s.waitForSource(ctx, src) {
		return false
	}
	_, ok := running()
	return ok
}

// serviceAccountSite is the site of the tenant that lists the service
// account, nil if none does (or the configuration has no such table).
func (st *state) serviceAccountSite(namespace, name string) *site {
	if st.accounts == nil {
		return nil
	}
	t := st.accounts.ServiceAccountTenant(namespace, name)
	if t == nil {
		return nil
	}
	return st.sites[t]
}
