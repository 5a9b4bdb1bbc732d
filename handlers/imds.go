package handlers

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

const (
	headerToken    = "X-Aws-Ec2-Metadata-Token"
	headerTokenTTL = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	maxTokenTTL    = 21600
)

// Header values shared by every response; net/http only reads them.
var (
	serverHeader     = []string{"EC2ws"}
	textPlainHeader  = []string{textPlain}
	textHTMLHeader   = []string{"text/html"}
	octetHeader      = []string{octetStream}
	allowTokenHeader = []string{"OPTIONS, PUT"}
	allowGetHeader   = []string{"OPTIONS, GET, HEAD"}
	closeHeader      = []string{"close"} // Connection: the connection ends with the answer
)

// exchange is one request in flight: the ResponseWriter, carrying what the
// access log and the metrics report.
type exchange struct {
	http.ResponseWriter
	start     time.Time
	peer, src netip.Addr
	site      *site // the tenant as configured: name, tokens
	view      *view // the tenant as served now: identity, options, catalogue
	status    int
	bytes     int
	v2        bool
	container bool      // served by the container credentials endpoint
	route     route     // for metrics
	memo      *connMemo // of the request's connection; nil: none known
}

// version is the index in versionNames of how the request was made: v1,
// v2 (it carried or minted a token) or the container endpoint.
func (x *exchange) version() int {
	switch {
	case x.container:
		return 2
	case x.v2:
		return 1
	}
	return 0
}

// answered is the status sent, 200 when the handler only wrote a body.
func (x *exchange) answered() int {
	if x.status == 0 {
		return http.StatusOK
	}
	return x.status
}

func (x *exchange) WriteHeader(code int) {
	if x.status == 0 {
		x.status = code
	}
	x.ResponseWriter.WriteHeader(code)
}

func (x *exchange) Write(b []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	n, err := x.ResponseWriter.Write(b)
	x.bytes += n
	return n, err
}

// reply writes a whole response with an exact Content-Length: IMDS never
// sends chunked bodies, and HEAD must announce the GET's length.
func (x *exchange) reply(status int, contentType []string, body []byte) {
	x.replyLength(status, contentType, body, []string{strconv.Itoa(len(body))})
}

// replyLength is reply with the Content-Length already rendered, as the
// catalogue keeps it for every entry.
func (x *exchange) replyLength(status int, contentType []string, body []byte, length []string) {
	h := x.Header()
	if contentType != nil {
		h["Content-Type"] = contentType
	}
	h["Content-Length"] = length
	x.WriteHeader(status)
	if len(body) > 0 {
		_, _ = x.Write(body)
	}
}

var (
	page400 = page("400 - Bad Request")
	page403 = page("403 - Forbidden")
)

// refuse answers a request the server will not serve (403, 429) and closes
// its connection. Real IMDS closes every connection; this server keeps a
// tenant's open between requests (measured: 2.7 times less CPU per request
// than a connection each), but a refused client has nothing more to ask,
// and its idle connection would only hold a file descriptor.
func (x *exchange) refuse(status int) {
	x.Header()["Connection"] = closeHeader
	x.page(status)
}

// page answers an error status with the page real IMDS sends for it.
func (x *exchange) page(status int) {
	switch status {
	case http.StatusUnauthorized:
		x.reply(status, textHTMLHeader, page401)
	case http.StatusNotFound:
		x.reply(status, textHTMLHeader, page404)
	case http.StatusBadRequest:
		x.reply(status, textHTMLHeader, page400)
	case http.StatusForbidden:
		x.reply(status, textHTMLHeader, page403)
	default:
		x.reply(status, nil, nil)
	}
}

func (s *Server) handlePutToken(x *exchange, r *http.Request) {
	// A PUT relayed by a proxy carries X-Forwarded-For: refusing it is what
	// keeps an SSRF-able web proxy on the instance from minting tokens.
	if _, relayed := r.Header["X-Forwarded-For"]; relayed && !s.state.Load().resolver.Trusted(x.peer) {
		x.refuse(http.StatusForbidden)
		return
	}
	raw := r.Header.Get(headerTokenTTL)
	ttl, err := strconv.Atoi(raw)
	if err != nil || ttl < 1 || ttl > maxTokenTTL || raw[0] == '+' {
		x.page(http.StatusBadRequest)
		return
	}
	tok, err := s.tokens(x.site).Mint(x.src, time.Duration(ttl)*time.Second)
	if err != nil {
		s.log.Error().Err(err).Str("tenant", x.site.tenant.Name).Msg("cannot mint an IMDSv2 token")
		x.reply(http.StatusInternalServerError, nil, nil)
		return
	}
	if c := connFrom(r.Context()); c != nil {
		if err := SetHopLimit(c, x.view.tenant.IMDS.HopLimit); err != nil {
			s.log.Debug().Err(err).Msg("hop limit not applied")
		}
	}
	x.v2, x.route = true, routeToken
	// Real IMDS closes every connection; here it matters for the PUT, whose
	// packets carry the hop limit: later answers must not inherit it.
	x.Header()["Connection"] = closeHeader
	x.Header()[headerTokenTTL] = []string{raw}
	x.reply(http.StatusOK, textPlainHeader, []byte(tok))
}

// authorize applies the tenant's token policy to a GET. A token, when sent,
// must be one this tenant minted and still valid, whether or not tokens are
// required; without one, the request is IMDSv1, allowed only when optional.
func (x *exchange) authorize(r *http.Request) bool {
	tok := r.Header[headerToken]
	if len(tok) == 0 {
		if x.view.tenant.IMDS.TokensRequired {
			x.page(http.StatusUnauthorized)
			return false
		}
		return true
	}
	left, ok := x.site.kept.tokens.Load().Remaining(tok[0])
	if !ok {
		x.page(http.StatusUnauthorized)
		return false
	}
	x.v2 = true
	x.Header()[headerTokenTTL] = x.ttlHeader(left)
	return true
}

// ttlHeader is secondsHeader(left), the one the connection's last request
// sent when equal: a client asking in a loop gets a new value once a
// second, and nothing allocated in between.
func (x *exchange) ttlHeader(left time.Duration) []string {
	m := x.memo
	if m == nil {
		return secondsHeader(left)
	}
	secs := int64((left + time.Second - 1) / time.Second)
	if m.ttl == nil || m.ttlSecs != secs {
		m.ttl, m.ttlSecs = secondsHeader(left), secs
	}
	return m.ttl
}

// secondsHeader is a duration as a header says it, in whole seconds rounded
// up: a token's remaining TTL (in its last second it is still valid, never
// "0"), or a Retry-After.
func secondsHeader(left time.Duration) []string {
	return []string{strconv.Itoa(int((left + time.Second - 1) / time.Second))}
}

func (s *Server) handleGet(x *exchange, r *http.Request) {
	if !x.authorize(r) {
		return
	}
	p := squashSlashes(r.URL.Path)
	if p == "/" {
		x.route = routeListing
		x.reply(http.StatusOK, textPlainHeader, versionListing)
		return
	}
	if strings.Contains(r.URL.RawPath, "%2F") || strings.Contains(r.URL.RawPath, "%2f") {
		// An escaped slash is not a path separator to IMDS: %2F never
		// names an entry (and %2E%2E never climbs).
		x.page(http.StatusNotFound)
		return
	}
	version, rest, _ := strings.Cut(p[1:], "/")
	if !knownVersion(version) {
		x.page(http.StatusNotFound)
		return
	}
	// A directory asked for with or without its slash answers its listing;
	// a value asked for with a slash answers the value. One slash only:
	// anything else is not a path IMDS has.
	e, ok := x.site.kept.events.Load().catalogue(x.view, x.start).lookup(strings.TrimSuffix(rest, "/"), version)
	if !ok {
		x.page(http.StatusNotFound)
		return
	}
	x.route = e.route(rest)
	switch e.kind {
	case roleCredentials:
		s.serveCredentials(x, r)
	case iamInfo:
		s.serveIAMInfo(x, r)
	case signatureDoc, pkcs7Doc, rsa2048Doc:
		body := e.signed()
		if body == "" { // signing failed: nothing malformed is served
			x.page(http.StatusNotFound)
			return
		}
		x.reply(http.StatusOK, textPlainHeader, []byte(body))
	default:
		x.replyLength(http.StatusOK, contentTypeHeader(e.octet), e.head, e.length)
		for _, b := range [4][]byte{e.body, e.run, e.body2, e.tail} {
			if len(b) > 0 {
				_, _ = x.Write(b)
			}
		}
	}
}

func contentTypeHeader(octet bool) []string {
	if octet {
		return octetHeader
	}
	return textPlainHeader
}
