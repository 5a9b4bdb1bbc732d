package handlers

import (
	"crypto/sha256"
	"errors"
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
// tenant allows any.
func (s *Server) ContainerCredentials() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := &exchange{ResponseWriter: w, start: s.opts.Now(), container: true, route: routeContainer}
		s.serveContainer(x, r)
		s.logAccess(x, r)
		if x.site != nil {
			x.site.counts.add(x)
		}
	})
}

func (s *Server) serveContainer(x *exchange, r *http.Request) {
	st := s.state.Load()
	if peer, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		x.peer = peer.Addr().Unmap()
		x.src = x.peer
	}
	switch {
	case r.URL.Path != ContainerPath:
		x.jsonError(http.StatusNotFound, "NotFound", "the credentials are at "+ContainerPath)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		x.Header()["Allow"] = []string{"GET, HEAD"}
		x.jsonError(http.StatusMethodNotAllowed, "MethodNotAllowed", "use GET")
		return
	}
	auth := r.Header.Get("Authorization")
	si := st.byToken[sha256.Sum256([]byte(auth))]
	if auth == "" || si == nil {
		x.jsonError(http.StatusUnauthorized, "AccessDenied", "send the tenant's token as the Authorization header (AWS_CONTAINER_AUTHORIZATION_TOKEN)")
		return
	}
	x.site = si
	if !si.tenant.ContainerAnySource {
		if t, _, ok := st.resolver.Lookup(x.src); !ok || t != si.tenant {
			x.jsonError(http.StatusForbidden, "AccessDenied", "this token belongs to a tenant whose sources do not include this address")
			return
		}
	}
	if si.tenant.Role == nil || !si.tenant.Paths.Permits("meta-data/iam/security-credentials/"+si.tenant.Role.Name) {
		x.jsonError(http.StatusForbidden, "AccessDenied", "this tenant's path policy hides its role credentials")
		return
	}
	limits := si.tenant.Limits
	if !s.sources.allow(x.src, limits) {
		x.jsonError(http.StatusTooManyRequests, "Throttled", "too many requests from this address")
		return
	}
	c, err := s.credentials(r.Context(), si.tenant)
	if err != nil {
		var ce *tenants.UpstreamError
		if !errors.As(err, &ce) {
			ce = &tenants.UpstreamError{Code: "CredentialsNotReady", Message: "credentials are being fetched; retry in a moment"}
		}
		x.jsonError(http.StatusServiceUnavailable, ce.Code, ce.Message)
		return
	}
	x.reply(http.StatusOK, jsonHeader, c.Container)
}

// jsonError is the container provider's error shape: {"code", "message"}.
func (x *exchange) jsonError(status int, code, message string) {
	x.reply(status, jsonHeader, append(append(append(append([]byte(`{"code":`), jsonString(code)...), `,"message":`...), jsonString(message)...), '}'))
}
