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
	e.Str("tenant", tenant).
		Str("src", x.src.String()).
		Str("method", r.Method).
		Str("path", path).
		Int("status", x.answered()).
		Int("bytes", x.bytes).
		Str("imds", versionNames[x.version()]).
		Dur("dur", s.opts.Now().Sub(x.start)).
		Msg("")
}
