package handlers

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// adminRoutes is every route of the admin listener.
func (s *Server) adminRoutes() http.Handler {
	r := chi.NewRouter()
	r.Get("/healthz", s.handleHealthz)
	r.Get("/readyz", s.handleReady)
	r.Method(http.MethodGet, "/metrics", s.metricsHandler())
	r.Get("/status", s.handleStatusPage)
	r.Get("/status.json", s.handleStatusJSON)
	r.Post("/mfa", s.handleMFA)
	r.Get("/tenants/{name}/events", s.handleEventsGet)
	r.Post("/tenants/{name}/events", s.handleEventsPost)
	r.Delete("/tenants/{name}/events", s.handleEventsDelete)
	return r
}

// route dispatches an IMDS request; the tenant is already resolved
// (ServeHTTP). IMDS has four routes, and this switch is its whole router:
// chi, which routes the admin listener, cost four allocations and half the
// handler's time per request here (measured: see the benchmarks).
//
//	PUT      /latest/api/token     mint a token
//	OPTIONS  /latest/api/token     200, Allow: OPTIONS, PUT
//	other    /latest/api/token     405, Allow: OPTIONS, PUT
//	PUT      /<other>/api/token    403, as IMDS answers other versions
//	GET|HEAD anything else         the catalogue (or 404)
//	OPTIONS  anything else         200, Allow: OPTIONS, GET, HEAD
//	any other method               405, Allow: OPTIONS, GET, HEAD
//
// OPTIONS is answered because every 405 of IMDS lists it in Allow: a
// client that believes the header must not be refused. No SDK sends it,
// and a browser's preflight never gets here (ServeHTTP refuses requests
// with an Origin).
//
// Empty path segments are ignored, as IMDS ignores them: Amazon's own
// ec2-metadata script asks for "/latest//meta-data/..." when a base URL
// ends in a slash, and gets the answer of the path without the extra one.
func (s *Server) route(x *exchange, r *http.Request) {
	p := r.URL.Path
	if r.URL.RawPath != "" {
		p = r.URL.RawPath // an escaped "/" is not a separator
	}
	p = squashSlashes(p)
	if !strings.HasPrefix(p, "/") {
		x.page(http.StatusNotFound) // "*" and other non-path targets
		return
	}
	if version, rest, _ := strings.Cut(p[1:], "/"); rest == "api/token" && version != "" {
		switch {
		case r.Method == http.MethodPut && version == "latest":
			s.handlePutToken(x, r)
		case r.Method == http.MethodPut:
			x.page(http.StatusForbidden)
		case version == "latest":
			x.methods(r, allowTokenHeader)
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
			s.handleGet(x, r)
		default:
			x.methods(r, allowGetHeader)
		}
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.handleGet(x, r)
	default:
		x.methods(r, allowGetHeader)
	}
}

// methods answers a request whose method the path does not serve: OPTIONS
// with 200, anything else with 405; either way Allow names the methods
// that are served, and the body is empty. A valid token gets its remaining
// TTL, as on every response (IMDS.md).
func (x *exchange) methods(r *http.Request, allow []string) {
	if tok := r.Header[headerToken]; len(tok) > 0 {
		if left, ok := x.site.kept.tokens.Load().Remaining(tok[0]); ok {
			x.Header()[headerTokenTTL] = x.ttlHeader(left)
		}
	}
	x.Header()["Allow"] = allow
	if r.Method == http.MethodOptions {
		x.reply(http.StatusOK, nil, nil)
		return
	}
	x.reply(http.StatusMethodNotAllowed, nil, nil)
}

// squashSlashes drops the empty segments of a path: every run of slashes
// becomes one. Paths without one are returned as they are, without
// allocating, which is every path a client library builds.
func squashSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b = append(b, p[i])
	}
	return string(b)
}
