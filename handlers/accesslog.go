package handlers

import "net/http"

// maxLoggedPath keeps a hostile client's path from bloating the log.
const maxLoggedPath = 256

// logAccess writes one line per request: who (tenant, src), what (method,
// path, IMDS version), and how it went (status, bytes, dur). Never a header
// value: tokens travel in headers.
func (s *Server) logAccess(x *exchange, r *http.Request) {
	e := s.log.Info()
	if e == nil {
		return
	}
	path := r.URL.Path
	if len(path) > maxLoggedPath {
		path = path[:maxLoggedPath]
	}
	tenant := ""
	if x.site != nil {
		tenant = x.site.tenant.Name
	}
	version := "v1"
	switch {
	case x.container:
		version = "container"
	case x.v2:
		version = "v2"
	}
	status := x.status
	if status == 0 {
		status = http.StatusOK
	}
	e.Str("tenant", tenant).
		Str("src", x.src.String()).
		Str("method", r.Method).
		Str("path", path).
		Int("status", status).
		Int("bytes", x.bytes).
		Str("imds", version).
		Dur("dur", s.opts.Now().Sub(x.start)).
		Msg("")
}
