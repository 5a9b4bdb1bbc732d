package handlers

import (
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
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
	idleSeq atomic.Uint64
	evicted atomic.Uint64
}

type sourceShard struct {
	mu    sync.Mutex
	m     map[netip.Addr]*source
	conns connList // the open connections of the shard's sources
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
	}
	src.touch(l, now)
	return src
}

// touch updates the limits of src (after a reload) and when it was last
// seen. The lock of its shard is held by the caller.
func (src *source) touch(l tenants.Limits, now time.Time) {
	if src.limits != l {
		src.limiter.SetLimitAt(now, rate.Limit(l.RequestsPerSecond))
		src.limiter.SetBurstAt(now, l.Burst)
		src.limits = l
	}
	src.lastSeen = now
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

// allow takes one request from the source's budget at now, the request's
// arrival (read once a request: the clock is not free).
func (s *sources) allow(a netip.Addr, l tenants.Limits, now time.Time) bool {
	sh := s.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.get(s, a, l, now).limiter.AllowN(now, 1)
}

// allowSource is allow for a source already found, in its shard sh: a
// connection's peer, whose entry its open connection keeps in place.
func (s *sources) allowSource(sh *sourceShard, src *source, l tenants.Limits, now time.Time) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	src.touch(l, now)
	return src.limiter.AllowN(now, 1)
}

// failureWait is how long a source must wait at now, its request's arrival,
// before the container endpoint looks at the request: zero unless its
// refusals used up its budget.
func (s *sources) failureWait(a netip.Addr, now time.Time) time.Duration {
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

// open counts a new connection from c's source, refusing it past limit. At
// the limit it offers the source's connection idle longest, already marked
// as reaped, for the caller to close (Close takes this lock) before trying
// again. An admitted connection joins the shard's list.
func (s *sources) open(c *limitedConn, l tenants.Limits, limit int) (bool, *limitedConn) {
	now := s.now()
	sh := s.shard(c.src)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	src := sh.get(s, c.src, l, now)
	if src.conns < limit {
		src.conns++
		sh.conns.pushBack(c)
		c.shard, c.source = sh, src
		return true, nil
	}
	return false, sh.reap(sh.conns.oldest(func(v *limitedConn) bool { return v.src == c.src }))
}

// list puts a connection that counts against no source's cap (a trusted
// proxy's) on its shard's list, where the search for an idle connection
// to close finds it.
func (s *sources) list(c *limitedConn) {
	sh := s.shard(c.src)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.conns.pushBack(c)
}

// close gives back c's slot of its source and takes it off the list.
func (s *sources) close(c *limitedConn) {
	sh := s.shard(c.src)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.conns.remove(c)
	if !c.capped {
		return
	}
	if src := sh.m[c.src]; src != nil && src.conns > 0 {
		src.conns--
	}
}

// reap marks c, idle on this shard, as closed to make room; nil if c is
// nil or its next request has just arrived. The shard's lock is held by
// the caller.
func (sh *sourceShard) reap(c *limitedConn) *limitedConn {
	if c == nil || !c.claimIdle() {
		return nil
	}
	return c
}

// oldestIdle finds, among the idle connections ok accepts, the one idle
// longest anywhere, and reaps it; nil if there is none. It takes every
// shard's lock in turn: it runs only when the ceiling is reached.
func (s *sources) oldestIdle(ok func(*limitedConn) bool) *limitedConn {
	var best *sourceShard
	var bestSeq uint64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if c := sh.conns.oldest(ok); c != nil && (best == nil || c.idleSeq.Load() < bestSeq) {
			best, bestSeq = sh, c.idleSeq.Load()
		}
		sh.mu.Unlock()
	}
	if best == nil {
		return nil
	}
	best.mu.Lock()
	defer best.mu.Unlock()
	return best.reap(best.conns.oldest(ok))
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

// Listener wraps an IMDS or container listener so that no source holds
// more than its tenant's limits.connections open connections (unknown
// sources: a few), and the server as a whole no more than its ceiling
// (Options.MaxConnections), of which unknown sources get a quarter. At a
// limit, an idle keep-alive connection is closed to make room (see
// ConnState); past it, a new connection is closed at once: the other
// sources keep being served while one client opens connections in a loop.
// Every listener of a Server shares its ceiling.
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
		if lc := l.s.admit(c); lc != nil {
			return lc, nil
		}
		l.s.metrics.refused.Add(1)
		_ = c.Close()
	}
}

// DefaultMaxConnections is the ceiling of open connections when
// Options.MaxConnections is 0: half the process's file descriptor limit
// (RLIMIT_NOFILE), leaving the rest to the admin listener, the log and the
// calls to AWS, and at most maxDefaultConnections.
func DefaultMaxConnections() int {
	n := uint64(maxDefaultConnections)
	if nofile, ok := fileLimit(); ok {
		n = min(n, nofile/2)
	}
	return max(int(n), minConnections)
}

const (
	// maxDefaultConnections bounds the default ceiling where descriptors
	// are plentiful: each connection also costs memory (about 10 KiB of
	// buffers and goroutine stack while idle).
	maxDefaultConnections = 16384
	// minConnections is the least ceiling: one connection for every
	// unknown source's share and a few for tenants.
	minConnections = 16
	// unknownShare is the part of the ceiling sources no tenant lists may
	// hold: 1/unknownShare of it.
	unknownShare = 4
)
