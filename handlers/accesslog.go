package handlers

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// maxLoggedPath keeps a hostile client's path from bloating the log.
const maxLoggedPath = 256

// Lines about sources no tenant lists, the access line of each request and
// the warning about each new address, are rate-limited across all of them.
// The log goes through a bounded buffer that drops lines when its reader is
// slow, and a flood of unknown addresses (a few thousand loopback addresses
// cost an attacker nothing) must not push the tenants' access lines out of
// it. A few lines a second still name the addresses.
const (
	quietLinesPerSecond = 20
	quietBurst          = 100
)

// lineBudget lets lines through at its limiter's rate and counts the ones
// held back since the last line let through, which that line reports.
type lineBudget struct {
	lim  *rate.Limiter
	held atomic.Uint64
}

// quietly returns e if the budget of lines about unknown sources allows
// one more, nil otherwise (counted in imds_proxy_log_lines_suppressed_total).
func (s *Server) quietly(e *zerolog.Event) *zerolog.Event {
	if e == nil {
		return nil // not logged at all: nothing is suppressed
	}
	if !s.quiet.lim.AllowN(s.opts.Now(), 1) {
		s.quiet.held.Add(1)
		s.metrics.suppressed.Add(1)
		e.Discard()
		e.Send() // writes nothing once discarded, and returns the event to zerolog's pool
		return nil
	}
	if n := s.quiet.held.Swap(0); n > 0 {
		e.Uint64("suppressed", n)
	}
	return e
}

// logAccess writes one line per request: who (tenant, src), what (method,
// path, IMDS version), and how it went (status, bytes, dur). Never a header
// value: tokens travel in headers. A request served no tenant is logged
// within the budget of lines about unknown sources.
func (s *Server) logAccess(x *exchange, r *http.Request) {
	s.logAccessOn(x, r, s.conn(r))
}

// logAccessOn is logAccess for a request on c, which may be nil.
func (s *Server) logAccessOn(x *exchange, r *http.Request, c *limitedConn) {
	e := s.log.Info()
	if x.site == nil {
		e = s.quietly(e)
	}
	if e == nil {
		return
	}
	path := r.URL.Path
	if len(path) > maxLoggedPath {
		path = path[:maxLoggedPath]
	}
	var dur [24]byte
	took := s.since(x.start)
	end := x.start.Add(took)
	k := accessKey{site: x.site, src: x.src, method: r.Method, path: path, status: x.answered(), bytes: x.bytes, version: x.version()}
	var fields []byte
	if c != nil {
		e = e.Ctx(c.memo.stamp(end))
		if x.site != nil {
			// The connection's client asks the same again and again
			// (an SDK polling its credentials, a benchmark): the fields
			// it shares with the line before are copied, not encoded.
			fields = c.memo.accessFields(k)
		}
	}
	if fields != nil {
		e = e.RawJSON("tenant", fields)
	} else {
		e = k.fields(e)
	}
	e.RawJSON("dur_ms", appendMillis(dur[:0], took)).Msg("")
}

// accessKey is what an access line says of a request but its time and
// duration.
type accessKey struct {
	site                   *site
	src                    netip.Addr
	method, path           string
	status, bytes, version int
}

// fields adds k's fields to e: tenant, src, method, path, status, bytes,
// imds, in that order.
func (k *accessKey) fields(e *zerolog.Event) *zerolog.Event {
	var src [64]byte // the address, written without allocating
	tenant := ""
	if k.site != nil {
		tenant = k.site.tenant.Name
	}
	return e.Str("tenant", tenant).
		Bytes("src", appendAddr(src[:0], k.src)).
		Str("method", k.method).
		Str("path", k.path).
		Int("status", k.status).
		Int("bytes", k.bytes).
		Str("imds", versionNames[k.version])
}

// accessFields returns k's fields as JSON, the value of "tenant" and the
// fields that follow it ("web","src":"10.0.0.2",...,"imds":"v1"), encoded
// by zerolog once for as long as the connection's requests repeat k; nil
// if zerolog's line is not of the shape expected.
func (m *connMemo) accessFields(k accessKey) []byte {
	if m.access.fields != nil && m.access.key == k {
		return m.access.fields
	}
	var line bytes.Buffer
	lg := zerolog.New(&line)
	k.fields(lg.Log()).Send()
	fields, ok := bytes.CutPrefix(bytes.TrimSuffix(line.Bytes(), []byte("}\n")), []byte(`{"tenant":`))
	if !ok {
		return nil
	}
	// Kept past the request: its own copies, not the request's strings.
	k.method, k.path = strings.Clone(k.method), strings.Clone(k.path)
	m.access.key, m.access.fields = k, fields
	return fields
}

// loggedAtKey is the context key of LoggedAt.
type loggedAtKey struct{}

// LoggedAt is when an access-log line was taken, if ctx is its event's
// context (zerolog's Event.GetCtx): a timestamp hook stamps the line with
// it rather than read the clock once more. A clock read is not free
// (measured: 0.26 to 0.86 µs on a busy VM, where the whole request takes
// a few µs of the proxy's own CPU), and the line has read it already for
// dur_ms.
func LoggedAt(ctx context.Context) (time.Time, bool) {
	if ctx == nil {
		return time.Time{}, false
	}
	at, ok := ctx.Value(loggedAtKey{}).(*time.Time)
	if !ok {
		return time.Time{}, false
	}
	return *at, true
}

// stamp sets the time of the connection's current access line and returns
// the context LoggedAt reads it from, made once a connection.
func (m *connMemo) stamp(at time.Time) context.Context {
	if m.atCtx == nil {
		m.atCtx = context.WithValue(context.Background(), loggedAtKey{}, &m.at)
	}
	m.at = at
	return m.atCtx
}

// appendMillis appends d in milliseconds as a JSON number, to the
// nanosecond, as zerolog's Dur writes it ("0.155666", "12", "-0.5") but
// without formatting a float, which was a tenth of the access line's cost.
func appendMillis(b []byte, d time.Duration) []byte {
	if d < 0 {
		b = append(b, '-')
		d = -d // the most negative Duration stays negative: uint64 below reads it right
	}
	ns := uint64(d)
	b = strconv.AppendUint(b, ns/1e6, 10)
	frac := ns % 1e6
	if frac == 0 {
		return b
	}
	digits := 6
	for frac%10 == 0 {
		frac /= 10
		digits--
	}
	b = append(b, '.')
	for p := uint64(1e5); digits > 0; p /= 10 {
		b = append(b, byte('0'+(ns%1e6)/p%10))
		digits--
	}
	return b
}

// appendAddr appends a as a.String() writes it ("invalid IP" for the zero
// Addr, which AppendTo writes as nothing).
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, a.String()...)
	}
	return a.AppendTo(b)
}
