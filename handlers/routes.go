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
	return r
}

// route dispatches an IMDS request; the tenant is already resolved
// (ServeHTTP). IMDS has four routes, and this switch is its whole router:
// chi, which routes the admin listener, cost four allocations and half the
// handler's time per request here (measured: see the benchmarks).
//
//	PUT      /latest/api/token     mint a token
//	GET|HEAD /latest/api/token     405, Allow: OPTIONS, PUT
//	PUT      /<other>/api/token    403, as IMDS answers other versions
//	GET|HEAD anything else         the catalogue (or 404)
//	any other method               405
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
			s.methodNotAllowed(x, allowTokenHeader)
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
			s.handleGet(x, r)
		default:
			s.methodNotAllowed(x, allowGetHeader)
		}
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.handleGet(x, r)
	default:
		s.methodNotAllowed(x, allowGetHeader)
	}
}

func (s *Server) methodNotAllowed(x *exchange, allow []string) {
	x.Header()["Allow"] = allow
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
