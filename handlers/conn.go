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
func (s *Server) ConnState(nc net.Conn, cs http.ConnState) {
	c, ok := nc.(*limitedConn)
	if !ok || c.s != s {
		return
	}
	switch cs {
	case http.StateIdle:
		s.sources.idle(c)
	case http.StateActive, http.StateClosed, http.StateHijacked:
		s.sources.busy(c)
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
	src     netip.Addr
	unknown bool // no tenant lists src: counted in the unknown sources' share
	capped  bool // counted against src's connection cap
	state   atomic.Int32
	closed  atomic.Bool

	// Guarded by the lock of src's shard, whose idle list this connection
	// is on while idle.
	idleSeq    uint64 // when it went idle, in the order of all connections
	prev, next *limitedConn
	listed     bool
}

// Read marks an idle connection busy as soon as its next request arrives,
// before net/http has read it whole and said so: a connection with a
// request on the way is not closed as idle.
func (c *limitedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.state.Load() == connIdle {
		c.state.CompareAndSwap(connIdle, connBusy)
	}
	return n, err
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

// connList is a shard's idle connections, in the order they went idle.
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

// oldest is the connection of l idle longest that ok accepts, or nil.
func (l *connList) oldest(ok func(*limitedConn) bool) *limitedConn {
	for c := l.head; c != nil; c = c.next {
		if c.state.Load() == connIdle && ok(c) {
			return c
		}
	}
	return nil
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
	displaceable := func(v *limitedConn) bool { return v.unknown || !c.unknown }
	if !s.reapUntil(func() (bool, *limitedConn) {
		if s.ceiling.take(c.unknown) {
			return true, nil
		}
		return false, s.sources.oldestIdle(displaceable)
	}) {
		if c.capped {
			s.sources.close(c)
		}
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
