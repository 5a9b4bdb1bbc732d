package handlers

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

type connKey struct{}

// ConnContext is the http.Server ConnContext hook that lets the token
// handler reach the connection a PUT arrived on, to set its hop limit.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func connFrom(ctx context.Context) net.Conn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	return c
}

// ConnState is the http.Server ConnState hook of the servers that accept
// from Server.Listener: it tells the listener which connections sit idle
// between requests. An idle keep-alive connection holds a file descriptor
// and serves nobody, so when a source's cap or the server's ceiling is
// reached, the one idle longest is closed to admit the new connection
// rather than refuse it. Without the hook no connection counts as idle.
//
// net/http calls it twice a request (active, idle): it takes no lock and
// touches no shared list, only the connection's own state. The rare
// search for a connection to close (at a limit) walks the shard's
// connections instead.
func (s *Server) ConnState(nc net.Conn, cs http.ConnState) {
	c, ok := nc.(*limitedConn)
	if !ok || c.s != s {
		return
	}
	switch cs {
	case http.StateIdle:
		// The order of idleness first, then the state that publishes it.
		c.idleSeq.Store(s.sources.idleSeq.Add(1))
		c.state.CompareAndSwap(connBusy, connIdle)
	case http.StateActive, http.StateClosed, http.StateHijacked:
		c.state.CompareAndSwap(connIdle, connBusy)
	}
}

// What the listener knows of a connection.
const (
	connBusy   int32 = iota // new, or serving a request
	connIdle                // waiting for its next request: may be closed for another
	connReaped              // closed to make room
)

// limitedConn is a connection admitted by Server.Listener: it holds a slot
// of its source (unless a trusted proxy) and of the ceiling, given back
// when it closes.
type limitedConn struct {
	net.Conn
	s       *Server
	src     netip.Addr // the peer, unmapped: parsed once, not per request
	unknown bool       // no tenant lists src: counted in the unknown sources' share
	capped  bool       // counted against src's connection cap
	state   atomic.Int32
	idleSeq atomic.Uint64 // when it last went idle, in the order of all connections
	closed  atomic.Bool

	// On the list of its source's shard from admission to Close, guarded
	// by the shard's lock.
	prev, next *limitedConn
	listed     bool

	// The peer's request limiter, found at admission (capped connections
	// only): it stays in its shard while this connection counts in its
	// conns, so requests use it without a lookup.
	shard  *sourceShard
	source *source

	// What the requests of this connection share, read and written only
	// by the goroutine that serves it (one request at a time).
	memo connMemo

	// Bytes the Lane read and handed to net/http with the connection,
	// read before the socket.
	pending []byte
}

// connMemo is what one request on a connection worked out that the next
// can reuse while the configuration is the same: the Host header checked
// and the tenant the peer resolved to.
type connMemo struct {
	st     *state // the configuration the rest was worked out in
	host   string // a Host header allowed in st, if hostOK
	hostOK bool
	tenant *tenants.Tenant // the peer's tenant in st; nil: not known yet

	// The time of the connection's current access line (stamp), and the
	// context LoggedAt finds it in; kept across configurations.
	at    time.Time
	atCtx context.Context

	// The token TTL header of the connection's last request, and its
	// seconds (exchange.ttlHeader).
	ttl     []string
	ttlSecs int64

	// The fields of the connection's last access line (accessFields);
	// its key names the tenant's site, which a reload replaces.
	access struct {
		key    accessKey
		fields []byte
	}
}

// Read marks an idle connection busy as soon as its next request arrives,
// before net/http has read it whole and said so: a connection with a
// request on the way is not closed as idle.
func (c *limitedConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		if c.pending = c.pending[n:]; len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	n, err := c.Conn.Read(b)
	if n > 0 && c.state.Load() == connIdle {
		c.state.CompareAndSwap(connIdle, connBusy)
	}
	return n, err
}

// claimIdle marks an idle connection as closed to make room (or at
// shutdown); false if it is busy, its next request having just arrived.
// The caller closes it.
func (c *limitedConn) claimIdle() bool {
	return c.state.CompareAndSwap(connIdle, connReaped)
}

// Close gives the connection's slots back, once, after its descriptor is
// closed: a slot is never handed out while the descriptor it stands for is
// still open.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.s.sources.close(c)
		c.s.ceiling.release(c.unknown)
	}
	return err
}

// SyscallConn reaches the socket beneath, for SetHopLimit.
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a socket")
	}
	return sc.SyscallConn()
}

// connList is a shard's open connections, in the order they were admitted.
type connList struct{ head, tail *limitedConn }

func (l *connList) pushBack(c *limitedConn) {
	c.prev, c.next, c.listed = l.tail, nil, true
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *connList) remove(c *limitedConn) {
	if !c.listed {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next, c.listed = nil, nil, false
}

// oldest is the connection of l idle longest that ok accepts, or nil. It
// walks every connection of the shard: it runs only at a limit, and keeps
// ConnState, which runs twice a request, free of any list.
func (l *connList) oldest(ok func(*limitedConn) bool) *limitedConn {
	var best *limitedConn
	var bestSeq uint64
	for c := l.head; c != nil; c = c.next {
		if c.state.Load() != connIdle || !ok(c) {
			continue
		}
		if seq := c.idleSeq.Load(); best == nil || seq < bestSeq {
			best, bestSeq = c, seq
		}
	}
	return best
}

// ceiling bounds the connections open through every listener a Server
// wraps, so that no flood of sources can take all the process's file
// descriptors: past it, every accept fails and every tenant, the container
// endpoint and /healthz with them stop being served. Sources no tenant
// lists may hold only a share of it; the rest is the tenants' headroom.
type ceiling struct {
	max, maxUnknown int
	mu              sync.Mutex // taken per connection, never per request
	open, unknown   int
}

func (c *ceiling) take(unknown bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open >= c.max || (unknown && c.unknown >= c.maxUnknown) {
		return false
	}
	c.open++
	if unknown {
		c.unknown++
	}
	return true
}

func (c *ceiling) release(unknown bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	if unknown {
		c.unknown--
	}
}

func (c *ceiling) counts() (open, unknown int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open, c.unknown
}

// reapAttempts bounds how often one accept closes an idle connection and
// tries again: another listener accepting at the same moment may take the
// slot freed, and a new connection is refused rather than wait.
const reapAttempts = 3

// admit counts a new connection against its source's cap and the ceiling,
// closing idle connections to make room; nil: refused. A source may only
// displace its own idle connections at its cap; at the ceiling, a tenant's
// connection may displace any idle one, an unknown source's only another
// unknown source's, so that a flood of unknown sources never closes a
// tenant's connection.
func (s *Server) admit(nc net.Conn) *limitedConn {
	c := &limitedConn{Conn: nc, s: s, unknown: true}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.src = ap.Addr().Unmap()
	}
	st := s.state.Load()
	limits, limit := unknownLimits(), unknownConnections
	if t, _, ok := st.resolver.Lookup(c.src); ok {
		c.unknown, c.capped = false, true
		limits, limit = t.Limits, t.Limits.Connections
	} else if st.resolver.Trusted(c.src) {
		c.unknown = false // a trusted proxy carries many clients: no cap of its own
	} else {
		c.capped = true
	}
	if c.capped && !s.reapUntil(func() (bool, *limitedConn) { return s.sources.open(c, limits, limit) }) {
		return nil
	}
	if !c.capped {
		s.sources.list(c) // open listed the others
	}
	displaceable := func(v *limitedConn) bool { return v.unknown || !c.unknown }
	if !s.reapUntil(func() (bool, *limitedConn) {
		if s.ceiling.take(c.unknown) {
			return true, nil
		}
		return false, s.sources.oldestIdle(displaceable)
	}) {
		s.sources.close(c) // listed either way: a refused c is never closed itself
		return nil
	}
	return c
}

// reapUntil calls try until it admits, closing the idle connection it
// offers each time it does not; false when it offers none.
func (s *Server) reapUntil(try func() (ok bool, victim *limitedConn)) bool {
	for range reapAttempts {
		ok, victim := try()
		if ok {
			return true
		}
		if victim == nil {
			return false
		}
		s.metrics.reaped.Add(1)
		_ = victim.Close()
	}
	return false
}
