package handlers

import (
	"crypto/sha256"
	"net/http"
	"net/netip"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// ContainerPath is where the container credentials endpoint answers:
// AWS_CONTAINER_CREDENTIALS_FULL_URI=http://<container_listen>/credentials.
const ContainerPath = "/credentials"

var jsonHeader = []string{"application/json"}

// ContainerCredentials returns the handler of the container credentials
// endpoint, the provider ECS and EKS Pod Identity use: a client sends its
// tenant's token as the Authorization header and receives that tenant's
// credentials. It reaches tenants where no packet to 169.254.169.254 can be
// redirected (Docker Desktop, host processes). The token chooses the
// tenant; the source address must still be one of the tenant's unless the
// tenant allows any, and the tenant's metadata service must be enabled, as
// on the IMDS path. Every refusal of a token gets the same 403, and a
// source refused more than a few times (containerFailureBurst) is answered
// 429 with Retry-After, whatever it sends, until it has waited.
func (s *Server) ContainerCredentials() http.Handler {
	return s.credentialsEndpoint(s.serveContainer, false)
}

// credentialsEndpoint is what the three credentials endpoints (container,
// ECS, Pod Identity) share around serve: the exchange, recovery from a
// panic, the access log line and the counts, of the tenant served or, with
// countUnknown, of the unknown sources.
func (s *Server) credentialsEndpoint(serve func(*exchange, *http.Request), countUnknown bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := &exchange{ResponseWriter: w, start: s.opts.Now(), container: true, route: routeContainer}
		defer s.recoverPanic(x, r)
		serve(x, r)
		s.logAccess(x, r)
		switch {
		case x.site != nil:
			x.site.kept.counts.add(x)
		case countUnknown:
			s.metrics.unknown.Add(1)
		}
	})
}

// refuseCredentialsRequest answers what the credentials endpoints refuse
// alike before anything else is looked at, and reports whether it did: a
// connection without a source address, a path other than the endpoint's
// (pathOK false; where says where the credentials are), a method other
// than GET or HEAD, a browser's request. It sets the exchange's source.
func refuseCredentialsRequest(x *exchange, r *http.Request, pathOK bool, where string) bool {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		x.jsonError(http.StatusForbidden, "AccessDenied", "no source address")
		return true
	}
	x.peer = peer.Addr().Unmap()
	x.src = x.peer
	switch {
	case !pathOK:
		x.jsonError(http.StatusNotFound, "NotFound", "the credentials are "+where)
		return true
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		x.Header()["Allow"] = []string{"GET, HEAD"}
		x.jsonError(http.StatusMethodNotAllowed, "MethodNotAllowed", "use GET")
		return true
	case fromBrowser(r):
		x.jsonError(http.StatusForbidden, "AccessDenied", "browsers are refused")
		return true
	}
	return false
}

// refuseFailingSource answers 429 with Retry-After, and reports whether it
// did, while x's source waits out its refusals (containerFailureBurst).
func (s *Server) refuseFailingSource(x *exchange) bool {
	wait := s.sources.failureWait(x.src, x.start)
	if wait <= 0 {
		return false
	}
	x.Header()["Retry-After"] = secondsHeader(wait)
	x.Header()["Connection"] = closeHeader
	x.jsonError(http.StatusTooManyRequests, "Throttled", "too many refused requests from this address; retry after the seconds in Retry-After")
	return true
}

// throttled answers 429 to a source past its rate, and ends the connection.
func (x *exchange) throttled() {
	x.Header()["Connection"] = closeHeader
	x.jsonError(http.StatusTooManyRequests, "Throttled", "too many requests from this address")
}

// refuseRoleCredentials answers 403, and reports whether it did, when t's
// metadata service is disabled (as its view v has it) or t has no role
// credentials its path policy shows.
func refuseRoleCredentials(x *exchange, v *view, t *tenants.Tenant) bool {
	switch {
	case !v.tenant.IMDS.Enabled:
		x.jsonError(http.StatusForbidden, "AccessDenied", "this tenant's instance metadata service is disabled (imds: {enabled: false}, or its mirrored instance's)")
		return true
	case t.Role == nil || !t.Paths().Permits("meta-data/iam/security-credentials/"+t.Role.Name):
		x.jsonError(http.StatusForbidden, "AccessDenied", "this tenant's path policy hides its role credentials")
		return true
	}
	return false
}

func (s *Server) serveContainer(x *exchange, r *http.Request) {
	st := s.state.Load()
	if refuseCredentialsRequest(x, r, r.URL.Path == ContainerPath, "at "+ContainerPath) {
		return
	}
	if s.refuseFailingSource(x) {
		// Checked before the token: a source that keeps failing learns
		// nothing more, not even when it finally sends the right one.
		return
	}
	auth := r.Header.Get("Authorization")
	si := st.byToken[sha256.Sum256([]byte(auth))]
	x.site = si // nil unless the token is a tenant's: the log names whose it was
	if auth == "" || si == nil || !si.tenant.ContainerAnySource() && !st.owns(si, x.src) {
		// One answer for every refusal: a different one for a valid
		// token from the wrong address would confirm the guess.
		s.sources.fail(x.src)
		x.Header()["Connection"] = closeHeader
		x.jsonError(http.StatusForbidden, "AccessDenied",
			"send the token of this address's tenant as the Authorization header (AWS_CONTAINER_AUTHORIZATION_TOKEN)")
		return
	}
	if refuseRoleCredentials(x, si.view.Load(), si.tenant) {
		return
	}
	if !s.sources.allow(x.src, si.tenant.Limits, x.start) {
		x.throttled()
		return
	}
	s.replyContainerDocument(x, r, si.tenant, "")
}

// replyContainerDocument answers with t's credentials in the container
// credentials format (with RoleArn when roleARN is set, as ECS does), or
// 503 with what is missing.
func (s *Server) replyContainerDocument(x *exchange, r *http.Request, t *tenants.Tenant, roleARN string) {
	c, err := s.credentials(r.Context(), t)
	if err != nil {
		ce := upstreamError(err)
		x.jsonError(http.StatusServiceUnavailable, ce.Code, ce.Message)
		return
	}
	x.reply(http.StatusOK, jsonHeader, withRoleARN(c.ContainerDocument(), roleARN))
}

// owns reports whether src is one of the tenant's sources.
func (st *state) owns(si *site, src netip.Addr) bool {
	t, _, ok := st.resolver.Lookup(src)
	return ok && t == si.tenant
}

// jsonError is the container provider's error shape: {"code", "message"}.
func (x *exchange) jsonError(status int, code, message string) {
	x.reply(status, jsonHeader, append(append(append(append([]byte(`{"code":`), jsonString(code)...), `,"message":`...), jsonString(message)...), '}'))
}
