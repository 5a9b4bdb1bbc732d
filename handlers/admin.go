package handlers

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"net/http"
)

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})
}

// Metrics returns the server's metrics, for the upstream observations only
// the caller can make.
func (s *Server) Metrics() *Metrics { return s.metrics }

func itoa(n int) string { return strconv.Itoa(n) }
