package handlers

import "net/http"

// Admin returns the admin listener's handler: /healthz answers while the
// process serves.
func (s *Server) Admin() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = textPlainHeader
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
