package handlers

import "github.com/go-chi/chi/v5"

// routes is every route of the IMDS listener. The tenant is already
// resolved (ServeHTTP) when a request reaches them.
func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Put("/latest/api/token", s.handlePutToken)
	// The catch-all GET below would otherwise answer the token path with 404.
	r.Get("/latest/api/token", s.handleMethodNotAllowed)
	r.Head("/latest/api/token", s.handleMethodNotAllowed)
	r.Put("/{version}/api/token", s.handleTokenWrongVersion)
	r.Get("/*", s.handleGet)
	r.Head("/*", s.handleGet)
	r.MethodNotAllowed(s.handleMethodNotAllowed)
	r.NotFound(s.handleNotFound)
	return r
}
