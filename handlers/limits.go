package handlers

import (
	"errors"
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// Per-source state is sharded so that requests from different sources
// rarely meet on a lock, and bounded so that a flood of distinct sources
// (spoofed or not) cannot grow it without limit.
const (
	sourceShards    = 64
	sourcesPerShard = 1024 // 65,536 sources in all
	// unknownConnections caps connections from addresses no tenant lists:
	// they only ever get 403, and need no more.
	unknownConnections = 8
	idleSource         = time.Minute
)

// unknownLimits bound a source no tenant lists. Its answers are all 403:
// enough of them for a misconfigured client's retries or someone polling
// while a container starts; past them, 429. (Its log lines have a budget of
// their own, shared by every unknown source: accesslog.go.)
func unknownLimits() tenants.Limits {
	return tenants.Limits{RequestsPerSecond: 5, Burst: 60, Connections: unknownConnections}
}

// Refusals of the container credentials endpoint (a wrong or missing token,
// or a token from an address that is not its tenant's) are limited per
// source: a client with the right token fails a few times at most, and a
// guesser gets a handful of tries a minute.
const (
	containerFailureBurst = 10
	containerFailureEvery = 6 * time.Second
)

// sources tracks, per source address, its request rate, its refused
// container requests and its open connections.
type sources struct {
	seed    maphash.Seed
	now     func() time.Time
	shards  [sourceShards]sourceShard
	evicted atomic.Uint64
}

type sourceShard struct {
	mu sync.Mutex
	m  map[netip.Addr]*source
}

type source struct {
	limiter  *rate.Limiter
	limits   tenants.Limits
	failures *rate.Limiter // refused container requests; nil until one
	lastSeen time.Time
	conns    int
}

func newSources(now func() time.Time) *sources {
	s := &sources{seed: maphash.MakeSeed(), now: now}
	for i := range s.shards {
		s.shards[i].m = make(map[netip.Addr]*source)
	}
	return s
}

func (s *sources) shard(a netip.Addr) *sourceShard {
	b := a.As16()
	return &s.shards[maphash.Bytes(s.seed, b[:])%sourceShards]
}

// get returns the state of a source, creating it with the given limits
// (and updating them after a reload). The shard's lock is held by the
// caller.
func (sh *sourceShard) get(s *sources, a netip.Addr, l tenants.Limits, now time.Time) *source {
	src := sh.m[a]
	if src == nil {
		if len(sh.m) >= sourcesPerShard {
			s.evict(sh, now)
		}
		src = &source{limiter: rate.NewLimiter(rate.Limit(l.RequestsPerSecond), l.Burst), limits: l}
		sh.m[a] = src
	} else if src.limits != l {
		src.limiter.SetLimitAt(now, rate.Limit(l.RequestsPerSecond))
		src.limiter.SetBurstAt(now, l.Burst)
		src.limits = l
	}
	src.lastSeen = now
	return src
}

// evict makes room in a full shard: sources idle for a minute go first;
// if none is, any source without open connections does. A source pushed
// out merely starts again with a full bucket.
func (s *sources) evict(sh *sourceShard, now time.Time) {
	for a, src := range sh.m {
		if src.conns == 0 && now.Sub(src.lastSeen) > idleSource {
			delete(sh.m, a)
			s.evicted.Add(1)
		}
	}
	for a, src := range sh.m {
		if len(sh.m) < sourcesPerShard {
			return
		}
		if src.conns == 0 {
			delete(sh.m, a)
			s.evicted.Add(1)
		}
	}
}

// allow takes one request from the source's budget.
func (s *sources) allow(a netip.Addr, l tenants.Limits) bool {
	now := s.now()
	sh := s.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.get(s, a, l, now).limiter.AllowN(now, 1)
}

// failureWait is how long a source must wait before the container endpoint
// looks at its next request: zero unless its refusals used up its budget.
func (s *sources) failureWait(a netip.Addr) time.Duration {
	now := s.now()
	sh := s.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	src := sh.m[a]
	if src == nil || src.failures == nil {
		return 0
	}
	missing := 1 - src.failures.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing * float64(containerFailureEvery))
}

// fail counts a refused container request of a source.
func (s *sources) fail(a netip.Addr) {
	now := s.now()
	sh := s.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	src := sh.m[a]
	if src == nil {
		src = sh.get(s, a, unknownLimits(), now)
	}
	if src.failures == nil {
		src.failures = rate.NewLimiter(rate.Every(containerFailureEvery), containerFailureBurst)
	}
	src.failures.AllowN(now, 1)
}

// open counts a new connection from a source, refusing it past limit.
func (s *sources) open(a netip.Addr, l tenants.Limits, limit int) bool {
	now := s.now()
	sh := s.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	src := sh.get(s, a, l, now)
	if src.conns >= limit {
		return false
	}
	src.conns++
	return true
}

func (s *sources) close(a netip.Addr) {
	sh := s.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if src := sh.m[a]; src != nil && src.conns > 0 {
		src.conns--
	}
}

// Len is the number of sources tracked.
func (s *sources) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Listener wraps an IMDS listener so that no source holds more than its
// tenant's limits.connections open connections (unknown sources: a few).
// Connections past the cap are closed at once: the other sources keep
// being served while one client opens connections in a loop.
func (s *Server) Listener(l net.Listener) net.Listener {
	return &limitListener{Listener: l, s: s}
}

type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil {
			return c, nil
		}
		a := ap.Addr().Unmap()
		st := l.s.state.Load()
		if st.resolver.Trusted(a) {
			return c, nil // a trusted proxy carries many clients
		}
		limits, conns := unknownLimits(), unknownConnections
		if t, _, ok := st.resolver.Lookup(a); ok {
			limits, conns = t.Limits, t.Limits.Connections
		}
		if !l.s.sources.open(a, limits, conns) {
			l.s.metrics.refused.Add(1)
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: c, s: l.s.sources, src: a}, nil
	}
}

// limitedConn gives its slot back when closed, once.
type limitedConn struct {
	net.Conn
	s      *sources
	src    netip.Addr
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.s.close(c.src)
	}
	return c.Conn.Close()
}

// SyscallConn reaches the socket beneath, for SetHopLimit.
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a socket")
	}
	return sc.SyscallConn()
}
