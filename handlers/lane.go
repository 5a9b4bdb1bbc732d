package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Lane serves the IMDS listener: it reads each connection's requests
// itself, as long as they are the plain GETs every client sends for
// metadata and credentials, and gives the connection to net/http (its
// http.Server) from the first request that is anything else.
//
// Why: net/http's per-request machinery (a Request, a Header map, a URL, a
// cancelable context and a response per request, headers sorted through a
// pool) costs about as much CPU as the proxy's own handler plus its access
// line. The lane parses a GET's head in place, keeps one Request, header
// map and buffer per connection, and writes a response in one write; the
// handler (Server.ServeHTTP) is the same on both sides and sees the same
// Request fields.
//
// What the lane takes: "GET", a path of characters that url.ParseRequestURI
// leaves as they are (no escapes, no query), "HTTP/1.1", CRLF line ends, a
// single valid Host header, valid header names and values, and no header
// that changes how net/http reads or answers a request (Content-Length,
// Transfer-Encoding, Expect, Connection other than keep-alive or close,
// Pragma, Upgrade, Trailer, HTTP2-Settings). Anything else, from any client, is
// read by net/http, bytes already read included, so every request is
// parsed by exactly one parser. The responses are the bytes net/http would
// write (a differential fuzz test holds the two lanes to it).
type Lane struct {
	s       *Server
	hs      *http.Server
	handoff handoffListener

	mu      sync.Mutex
	ln      net.Listener
	conns   map[*limitedConn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup
}

// Lane returns the lane serving s on a listener, handing connections to hs
// (whose Handler must be s). Its timeouts are hs's.
func (s *Server) Lane(hs *http.Server) *Lane {
	return &Lane{s: s, hs: hs, conns: make(map[*limitedConn]struct{}), handoff: handoffListener{
		conns: make(chan net.Conn),
		done:  make(chan struct{}),
	}}
}

// Serve accepts connections from l until Shutdown, serving them in the
// lane and in hs. l is the Server's Listener (its limits), as for any
// server of the Server: a connection it did not admit is hs's alone. It
// returns http.ErrServerClosed after Shutdown, like http.Server.Serve.
func (f *Lane) Serve(l net.Listener) error {
	f.handoff.addr = l.Addr()
	f.mu.Lock()
	if f.closing.Load() {
		f.mu.Unlock()
		_ = l.Close()
		return http.ErrServerClosed
	}
	f.ln = l
	f.mu.Unlock()
	go func() { _ = f.hs.Serve(&f.handoff) }()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if f.closing.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				f.handoff.Close()
				return err
			}
			// As net/http: out of descriptors and the like pass.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			f.logf("http: Accept error: %v; retrying in %v", err, delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c, ok := nc.(*limitedConn)
		if !ok || c.s != f.s {
			go func() {
				if !f.handoff.give(nc) {
					_ = nc.Close()
				}
			}()
			continue
		}
		f.mu.Lock()
		if f.closing.Load() {
			f.mu.Unlock()
			_ = c.Close()
			continue
		}
		f.conns[c] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		go f.serve(c)
	}
}

// Shutdown stops accepting, closes the lane's idle connections, lets the
// busy ones finish their response (then close), and shuts hs down; it
// returns when all are closed or ctx ends.
func (f *Lane) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.closing.Store(true)
	if f.ln != nil {
		_ = f.ln.Close()
	}
	for c := range f.conns {
		if c.claimIdle() {
			_ = c.Close()
		}
	}
	f.mu.Unlock()
	err := f.hs.Shutdown(ctx)
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *Lane) logf(format string, args ...any) {
	if f.hs.ErrorLog != nil {
		f.hs.ErrorLog.Printf(format, args...)
	}
}

// laneBufSize bounds the head of a request the lane reads: a GET of any
// client is a few hundred bytes; a longer head is net/http's (up to its
// MaxHeaderBytes).
const laneBufSize = 4096

// laneConn is what the lane keeps for one connection, reused request after
// request and pooled across connections.
type laneConn struct {
	buf       [laneBufSize]byte
	base, req http.Request // base: the connection's context and address
	url       url.URL
	header    [2]http.Header // this request's, the last one's (for its strings)
	keys      map[string]string
	host, uri string // the last request's
	w         laneWriter
}

var lanePool = sync.Pool{New: func() any {
	lc := &laneConn{keys: make(map[string]string)}
	lc.header[0], lc.header[1] = make(http.Header), make(http.Header)
	lc.w.header = make(http.Header)
	return lc
}}

// serve is the lane's loop for one connection.
func (f *Lane) serve(c *limitedConn) {
	lc := lanePool.Get().(*laneConn)
	ctx, cancel := context.WithCancel(ConnContext(context.Background(), c))
	handedOff := false
	defer func() {
		cancel()
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			f.logf("http: panic serving %v: %v", c.RemoteAddr(), v)
		}
		if !handedOff {
			_ = c.Close()
		}
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		f.wg.Done()
		lc.reset()
		lanePool.Put(lc)
	}()
	// The connection's context, in every request it serves, as net/http's
	// is (ConnContext).
	lc.base = *(&http.Request{RemoteAddr: c.RemoteAddr().String()}).WithContext(ctx)
	idle, header, write := f.timeouts()
	var readDL, writeDL time.Time
	n := 0      // bytes of lc.buf read and not yet served
	served := 0 // requests answered
	for {
		// Wait for a whole head, as long as the idle timeout (then the
		// header timeout, from its first byte) allows. Deadlines move only
		// when a second stale: setting one costs more than a request.
		now := time.Now()
		if idle > 0 && now.Add(idle).Sub(readDL) > time.Second {
			readDL = now.Add(idle)
			_ = c.SetReadDeadline(readDL)
		}
		end, started := -1, n > 0
		for {
			if end = headEnd(lc.buf[:n]); end >= 0 || n == len(lc.buf) {
				break // a head, or one longer than the lane reads
			}
			if n > 0 && !started && header > 0 {
				started = true
				readDL = time.Now().Add(header)
				_ = c.SetReadDeadline(readDL)
			}
			m, err := c.Read(lc.buf[n:])
			n += m
			if err != nil {
				// A head cut short: net/http answers it 400, unless it
				// follows a request and is under 4 bytes (net/http peeks
				// at 4 before it reads another request).
				if n > 0 && errors.Is(err, io.EOF) && (served == 0 || n >= 4) {
					break
				}
				return // closed, timed out or reset: as net/http, silently
			}
		}
		if end < 0 || f.closing.Load() || !lc.parse(lc.buf[:end]) {
			c.pending = append([]byte(nil), lc.buf[:n]...)
			handedOff = f.handoff.give(c)
			return
		}
		// The write timeout counts from the request, as net/http's: the
		// handler's time and the write's.
		if at := time.Now(); write > 0 && at.Add(write).Sub(writeDL) > time.Second {
			writeDL = at.Add(write)
			_ = c.SetWriteDeadline(writeDL)
		}
		w := &lc.w
		w.begin(f.closing.Load(), lc.req.Close)
		f.s.ServeHTTP(w, &lc.req)
		closeAfter := w.finish()
		served++
		if _, err := c.Write(w.out); err != nil || closeAfter {
			return // closed at once, as net/http closes it
		}
		w.release()
		n = copy(lc.buf[:], lc.buf[end:n])
		lc.header[0], lc.header[1] = lc.header[1], lc.header[0]
		clear(lc.header[0])
		if n == 0 {
			// Idle until its next request, as net/http says it is.
			f.s.ConnState(c, http.StateIdle)
			if f.closing.Load() && c.claimIdle() {
				return
			}
		}
	}
}

// timeouts are hs's, as net/http applies them: idle falls back to the read
// timeout, and the header timeout too.
func (f *Lane) timeouts() (idle, header, write time.Duration) {
	idle, header = f.hs.IdleTimeout, f.hs.ReadHeaderTimeout
	if idle <= 0 {
		idle = f.hs.ReadTimeout
	}
	if header <= 0 {
		header = f.hs.ReadTimeout
	}
	return idle, header, f.hs.WriteTimeout
}

// reset drops what a connection left, before the laneConn is pooled.
func (lc *laneConn) reset() {
	clear(lc.header[0])
	clear(lc.header[1])
	if len(lc.keys) > maxLaneKeys {
		lc.keys = make(map[string]string)
	}
	lc.base, lc.req, lc.url = http.Request{}, http.Request{}, url.URL{}
	lc.host, lc.uri = "", ""
	lc.w.release()
}

// maxLaneKeys bounds the header names a connection's laneConn interns.
const maxLaneKeys = 64

// headEnd is the length of the request head at the start of b, through its
// blank line, or -1 if b holds no whole head.
func headEnd(b []byte) int {
	if i := bytes.Index(b, crlfcrlf); i >= 0 {
		return i + len(crlfcrlf)
	}
	return -1
}

var crlfcrlf = []byte("\r\n\r\n")

// parse fills lc.req from head (a whole head, through its blank line) if
// the lane takes the request (see Lane); false leaves it to net/http.
func (lc *laneConn) parse(head []byte) bool {
	line, rest, ok := bytes.Cut(head, crlf)
	if !ok {
		return false
	}
	target, ok := bytes.CutPrefix(line, []byte("GET "))
	if !ok {
		return false
	}
	target, ok = bytes.CutSuffix(target, []byte(" HTTP/1.1"))
	if !ok || len(target) == 0 || target[0] != '/' || !plainPath(target) {
		return false
	}
	h, prev := lc.header[0], lc.header[1]
	hosts, wantsClose := 0, false
	for len(rest) > len(crlf) {
		line, rest, _ = bytes.Cut(rest, crlf)
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !validName(name) {
			return false
		}
		value = bytes.Trim(value, " \t")
		if !validValue(value) {
			return false
		}
		key, ok := lc.key(name)
		if !ok {
			return false
		}
		switch key {
		case "Host":
			// r.Host, never one of r.Header (as net/http).
			hosts++
			if lc.host != string(value) {
				lc.host = string(value)
			}
			continue
		case "Content-Length", "Transfer-Encoding", "Expect", "Pragma", "Upgrade", "Trailer", "Http2-Settings":
			return false
		case "Connection":
			// One token, as clients send it; a list is net/http's.
			switch {
			case bytes.EqualFold(value, []byte("close")):
				wantsClose = true
			case !bytes.EqualFold(value, []byte("keep-alive")):
				return false
			}
		}
		if vs, ok := h[key]; ok {
			h[key] = append(vs[:len(vs):len(vs)], string(value))
			continue
		}
		// The last request's slice when equal: a client sends the same
		// headers request after request, and nothing is allocated then.
		if pv, ok := prev[key]; ok && len(pv) == 1 && pv[0] == string(value) {
			h[key] = pv
		} else {
			h[key] = []string{string(value)}
		}
	}
	if hosts != 1 || !httpguts.ValidHostHeader(lc.host) {
		return false
	}
	if lc.uri != string(target) {
		lc.uri = string(target)
	}
	lc.url = url.URL{Path: lc.uri}
	lc.req = lc.base
	lc.req.Method = http.MethodGet
	lc.req.URL = &lc.url
	lc.req.Proto, lc.req.ProtoMajor, lc.req.ProtoMinor = "HTTP/1.1", 1, 1
	lc.req.Header = h
	lc.req.Body = http.NoBody
	lc.req.Host = lc.host
	lc.req.RequestURI = lc.uri
	lc.req.Close = wantsClose
	return true
}

var crlf = []byte("\r\n")

// key is name in canonical form (textproto's), as an interned string.
func (lc *laneConn) key(name []byte) (string, bool) {
	var buf [64]byte
	if len(name) > len(buf) {
		return "", false
	}
	b := buf[:len(name)]
	upper := true
	for i, c := range name {
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if k, ok := lc.keys[string(b)]; ok {
		return k, true
	}
	k := string(b)
	if len(lc.keys) < maxLaneKeys {
		lc.keys[k] = k
	}
	return k, true
}

// plainPath reports whether a request target is a path that
// url.ParseRequestURI takes as it is: Path equal to it and no RawPath.
func plainPath(p []byte) bool {
	for _, c := range p {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '/', c == '-', c == '.', c == '_', c == '~':
		case c == '$', c == '&', c == '+', c == ',', c == ':', c == ';', c == '=', c == '@':
		default:
			return false
		}
	}
	return true
}

// validName is a header name of token characters (RFC 9110).
func validName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// validValue is a header value of visible ASCII, spaces and tabs: stricter
// than net/http, which leaves the rest to it.
func validValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c > '~' {
			return false
		}
	}
	return true
}

// handoffListener is what hs accepts from: the connections the lane gives
// it.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// give hands c to hs; false once hs has stopped accepting (c is then the
// caller's to close).
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

// laneWriter is the lane's http.ResponseWriter: it renders the response as
// net/http would (status line, the handler's headers sorted, then what
// net/http adds) into one buffer, written at the end.
type laneWriter struct {
	header http.Header
	status int
	length int64 // the handler's Content-Length; -1: none
	body   []byte
	out    []byte
	keys   []string
	wrote  bool
	// The connection closes after the response: the server is shutting
	// down (closing), the client asked (wantsClose) or the handler said
	// "Connection: close"; dropConn: as net/http, the handler's Connection
	// header is left out and "Connection: close" added after the others.
	closing, wantsClose, closeAfter, dropConn bool
}

func (w *laneWriter) begin(closing, wantsClose bool) {
	w.status, w.length, w.wrote = 0, -1, false
	w.closing, w.wantsClose, w.closeAfter, w.dropConn = closing, wantsClose, false, false
	w.body, w.out = w.body[:0], w.out[:0]
}

// release lets a large response's buffers go.
func (w *laneWriter) release() {
	clear(w.header)
	if cap(w.out) > 64<<10 {
		w.out = nil
	}
	if cap(w.body) > 64<<10 {
		w.body = nil
	}
}

func (w *laneWriter) Header() http.Header { return w.header }

// headerGet is net/http's Header.get: the first value of a canonical key.
func headerGet(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (w *laneWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	w.wrote, w.status = true, code
	if cl := headerGet(w.header, "Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.length = v
		} else {
			w.header.Del("Content-Length")
		}
	}
	conn := headerGet(w.header, "Connection")
	w.closeAfter = conn == "close" || w.closing || w.wantsClose
	w.dropConn = w.closeAfter && (w.closing || !httpguts.HeaderValuesContainsToken([]string{conn}, "close"))
	// The status line and the handler's headers, as they are now: later
	// changes to the map are not sent (as net/http).
	w.out = append(w.out, "HTTP/1.1 "...)
	if text := http.StatusText(code); text != "" {
		w.out = strconv.AppendInt(w.out, int64(code), 10)
		w.out = append(w.out, ' ')
		w.out = append(w.out, text...)
	} else {
		w.out = fmt.Appendf(w.out, "%03d status code %d", code, code)
	}
	w.out = append(w.out, "\r\n"...)
	w.keys = w.keys[:0]
	for k := range w.header {
		w.keys = append(w.keys, k)
	}
	slices.Sort(w.keys)
	for _, k := range w.keys {
		if w.suppressed(k) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range w.header[k] {
			w.out = append(w.out, k...)
			w.out = append(w.out, ": "...)
			w.out = append(w.out, headerValue(v)...)
			w.out = append(w.out, "\r\n"...)
		}
	}
}

// suppressed is a header net/http leaves out of this response.
func (w *laneWriter) suppressed(k string) bool {
	switch {
	case k == "Connection" && w.dropConn:
		return true // replaced by "Connection: close" below
	case !bodyAllowed(w.status) && (k == "Content-Length" || k == "Transfer-Encoding"):
		return true
	case w.status == http.StatusNotModified && k == "Content-Type":
		return true
	}
	return false
}

// headerValue is a value as net/http writes it (Header.writeSubset): line
// breaks become spaces and the ends are trimmed. Values a handler sets
// have neither, and are returned as they are.
func headerValue(v string) string {
	if strings.ContainsAny(v, "\r\n") {
		v = newlineToSpace.Replace(v)
	}
	return textproto.TrimString(v)
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == http.StatusNoContent || status == http.StatusNotModified)
}

func (w *laneWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.length >= 0 && int64(len(w.body)+len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// finish completes the response in w.out and reports whether the
// connection closes after it.
func (w *laneWriter) finish() (closeAfter bool) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	ok := bodyAllowed(w.status)
	if _, dated := w.header["Date"]; !dated {
		w.out = append(w.out, "Date: "...)
		w.out = time.Now().UTC().AppendFormat(w.out, http.TimeFormat)
		w.out = append(w.out, "\r\n"...)
	}
	if _, sized := w.header["Content-Length"]; ok && !sized {
		w.out = append(w.out, "Content-Length: "...)
		w.out = strconv.AppendInt(w.out, int64(len(w.body)), 10)
		w.out = append(w.out, "\r\n"...)
	}
	if _, typed := w.header["Content-Type"]; ok && !typed && len(w.body) > 0 && w.header.Get("Content-Encoding") == "" {
		w.out = append(w.out, "Content-Type: "...)
		w.out = append(w.out, http.DetectContentType(w.body)...)
		w.out = append(w.out, "\r\n"...)
	}
	if w.dropConn {
		w.out = append(w.out, "Connection: close\r\n"...)
	}
	w.out = append(w.out, "\r\n"...)
	w.out = append(w.out, w.body...)
	short := ok && w.length >= 0 && int64(len(w.body)) != w.length
	return w.closeAfter || short
}
