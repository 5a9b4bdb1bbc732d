package handlers

import (
	"bytes"
	"net/http"
	"strings"
)

// ECSPathPrefix is where the ECS-style credentials endpoint answers: any
// path below it, so that whatever AWS_CONTAINER_CREDENTIALS_RELATIVE_URI a
// client was given (ECS gives /v2/credentials/<uuid>) is served. The path
// chooses nothing: the source address alone chooses the tenant.
const ECSPathPrefix = "/v2/credentials"

// ECSCredentials returns the handler of the ECS-style credentials
// endpoint: what ECS's agent, "ECS local container endpoints" and docker
// compose setups serve on 169.254.170.2, read by every SDK from
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI. Unlike ContainerCredentials it
// takes no token: the connection's source address chooses the tenant,
// exactly as on the IMDS path (X-Forwarded-For is never read here), and a
// source no tenant lists gets 403. The answer is the container credentials
// document with the tenant's RoleArn, as ECS sends it.
func (s *Server) ECSCredentials() http.Handler {
	return s.credentialsEndpoint(s.serveECS, true)
}

func (s *Server) serveECS(x *exchange, r *http.Request) {
	st := s.state.Load()
	// x.src is set for the log of an early refusal; resolve sets it again.
	below := r.URL.Path == ECSPathPrefix || strings.HasPrefix(r.URL.Path, ECSPathPrefix+"/")
	if refuseCredentialsRequest(x, r, below, "below "+ECSPathPrefix+"/") {
		return
	}
	// No X-Forwarded-For: the ECS endpoint believes only the connection.
	st, t, ok, throttled := s.resolve(r, x, st, nil, nil)
	switch {
	case throttled:
		x.throttled()
		return
	case !ok:
		s.warnUnknown(x.src)
		x.jsonError(http.StatusForbidden, "AccessDenied", "no tenant lists this address as a source")
		return
	}
	si := st.sites[t]
	x.site, x.view = si, si.view.Load()
	if refuseRoleCredentials(x, x.view, t) {
		return
	}
	if !s.sources.allow(x.src, t.Limits, x.start) {
		x.throttled()
		return
	}
	s.replyContainerDocument(x, r, t, t.Role.ARN)
}

// withRoleARN adds "RoleArn" to a rendered container credentials document.
// Tenants that share credentials share the document, and the role's ARN is
// the tenant's, so it is spliced in per request (a copy) rather than
// rendered into the shared bytes.
func withRoleARN(doc []byte, arn string) []byte {
	if arn == "" {
		return doc
	}
	end := bytes.LastIndexByte(doc, '}')
	if end < 0 {
		return doc
	}
	out := make([]byte, 0, len(doc)+len(arn)+16)
	out = append(out, doc[:end]...)
	out = append(append(append(out, `,"RoleArn":`...), jsonString(arn)...), doc[end:]...)
	return out
}
