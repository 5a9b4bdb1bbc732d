package handlers

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/imds-proxy/imds-proxy/resolver"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// Options are the Server's dependencies; every one has a working default.
type Options struct {
	// Logger receives the access log and warnings. If zero, nothing is logged.
	Logger zerolog.Logger
	// Now is the clock. If nil, time.Now is used.
	Now func() time.Time
	// Rand is the entropy tokens are minted from. If nil, crypto/rand.Reader
	// is used; anything else is for tests.
	Rand io.Reader
	// Signer signs identity documents. If nil, the signature, pkcs7 and
	// rsa2048 paths answer 404.
	Signer *Signer
	// Credentials vends role credentials. If nil, credential paths answer
	// the IMDS failure shape with Code "CredentialsUnavailable".
	Credentials CredentialStore
	// MaxTokensPerTenant bounds each tenant's live IMDSv2 tokens. If 0,
	// DefaultMaxTokens is used.
	MaxTokensPerTenant int
	// MaxTokensPerSource bounds the live IMDSv2 tokens minted by one
	// source address, so that a client minting in a loop evicts only its
	// own tokens, never those of the tenant's other sources. If 0,
	// DefaultMaxTokensPerSource is used (at most MaxTokensPerTenant).
	MaxTokensPerSource int
	// MaxConnections is the ceiling of connections open at once through
	// every listener Listener wraps, so that no flood of sources can take
	// all the process's file descriptors; sources no tenant lists may hold
	// a quarter of it. If 0, DefaultMaxConnections() is used: half the
	// process's RLIMIT_NOFILE, at most 16,384.
	MaxConnections int
	// View returns what to serve for a configured tenant when a
	// configuration is loaded, such as its last mirrored copy, so that a
	// reload never shows it unmirrored. If nil, or when it returns nil,
	// the tenant is served as configured until Publish.
	View func(t *tenants.Tenant) *tenants.Tenant
	// Metrics receives the server's metrics. If nil, new ones are made;
	// either way Server.Metrics returns them.
	Metrics *Metrics
	// Status reports tenants' credentials and mirrors for /readyz,
	// /status and /metrics. If nil, every tenant counts as ready.
	Status StatusSource
	// MFA takes MFA codes for profiles with mfa_serial (POST /mfa on the
	// admin listener). If nil, POST /mfa answers 404.
	MFA MFAAcceptor
	// WarnEvery is how often an unknown source is logged again. If 0, ten
	// minutes.
	WarnEvery time.Duration
	// WaitForSource is asked about a request from an address no tenant
	// lists: it blocks until the address may be served now (true: the
	// request is resolved again against the configuration then loaded) or
	// ctx ends (false). The server bounds the wait by SourceWaitBound and
	// holds at most MaxSourceWaiters requests at once. Followed Docker
	// containers use it to close the start race (sourcewait.go). If nil,
	// an unknown address is refused at once.
	WaitForSource func(ctx context.Context, addr netip.Addr) bool
	// TokenReviewer authenticates the tokens of the EKS Pod Identity
	// endpoint (PodIdentityCredentials). If nil, that endpoint answers
	// every plausible token 503.
	TokenReviewer TokenReviewer
}

// DefaultMaxTokens is how many live IMDSv2 tokens a tenant may hold: far
// more than any set of real clients (each SDK holds one, for hours).
const DefaultMaxTokens = 5000

// DefaultMaxTokensPerSource is how many live IMDSv2 tokens one source
// address may hold: a fifth of a tenant's, and still room for hundreds of
// SDK processes behind one address (botocore mints a token per refresh, a
// few live at a time).
const DefaultMaxTokensPerSource = 1000

// Server answers IMDS requests for every tenant of a configuration.
type Server struct {
	opts    Options
	log     zerolog.Logger
	state   atomic.Pointer[state]
	unknown warnLimiter
	quiet   lineBudget // lines about unknown sources
	metrics *Metrics
	sources *sources
	ceiling ceiling
	reload  sync.Mutex // serialises Load; readers never take it
	waiters sourceWaiters
	shapes  *layouts                      // catalogue layouts shared by tenants of one shape
	since   func(time.Time) time.Duration // time since a reading of opts.Now
	dates   dateHeader
	// podReviews are the Pod Identity endpoint's token reviews.
	podReviews *podReviews
}

// dateHeader is the Date header of responses, formatted once a second.
type dateHeader struct{ cur atomic.Pointer[stampedDate] }

type stampedDate struct {
	unix  int64
	value []string // read by net/http, never written
}

// at is the Date header value for t, in http.TimeFormat.
func (d *dateHeader) at(t time.Time) []string {
	unix := t.Unix()
	if c := d.cur.Load(); c != nil && c.unix == unix {
		return c.value
	}
	c := &stampedDate{unix: unix, value: []string{t.UTC().Format(http.TimeFormat)}}
	d.cur.Store(c)
	return c.value
}

// state is one configuration, ready to serve; swapped whole by Load.
type state struct {
	resolver *resolver.Snapshot
	sites    map[*tenants.Tenant]*site
	byName   map[string]*site
	byToken  map[[32]byte]*site    // container endpoint: SHA-256 of the token
	ordered  []*site               // in configuration order
	hosts    []string              // extra Host names accepted
	retired  map[string]retired    // removed tenants' tokens, by name, until they expire
	accounts serviceAccountTenants // Pod Identity: service account → tenant; nil: none
	pods     runningPods           // Pod Identity: whether a token's pod runs on this node
}

// retiredGrace is how long a removed tenant's IMDSv2 tokens outlive it. A
// configuration caught half-written, or an edit undone, removes a tenant
// and brings it back within moments; its clients, which hold a token for
// hours, must not all start failing. A tenant gone for longer, or one
// that never returns, loses them.
const retiredGrace = 5 * time.Minute

// retired is what a removed tenant leaves for a while: its tokens and
// request counts, taken back if it returns before until.
type retired struct {
	kept  *kept
	until time.Time
}

// site is everything served for one configured tenant.
type site struct {
	tenant *tenants.Tenant // as configured; the resolver's and the credentials' key
	view   atomic.Pointer[view]
	kept   *kept // kept by name across reloads
}

// view is a tenant as served at the moment: the configured tenant, or what
// a mirror of a live instance made of it, with its rendered catalogue.
type view struct {
	tenant *tenants.Tenant
	lazy   lazyCatalogue
	info   atomic.Pointer[renderedInfo] // iam/info, for the credentials last served
}

// New returns a Server for cfg; nil cfg: a server that refuses every
// source until its first Load.
func New(cfg *tenants.Config, opts Options) (*Server, error) {
	since := time.Since // reads only the monotonic clock: half a time.Now
	if opts.Now == nil {
		opts.Now = time.Now
	} else {
		now := opts.Now
		since = func(t time.Time) time.Duration { return now().Sub(t) }
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.MaxTokensPerTenant <= 0 {
		opts.MaxTokensPerTenant = DefaultMaxTokens
	}
	if opts.MaxTokensPerSource <= 0 {
		opts.MaxTokensPerSource = min(DefaultMaxTokensPerSource, opts.MaxTokensPerTenant)
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = DefaultMaxConnections()
	}
	if opts.WarnEvery <= 0 {
		opts.WarnEvery = 10 * time.Minute
	}
	s := &Server{opts: opts, log: opts.Logger, since: since}
	s.unknown = warnLimiter{every: opts.WarnEvery, max: 4096}
	s.waiters = make(sourceWaiters, MaxSourceWaiters)
	s.shapes = &layouts{}
	s.sources = newSources(opts.Now)
	s.podReviews = newPodReviews(opts.TokenReviewer, opts.Now)
	s.ceiling = ceiling{max: opts.MaxConnections, maxUnknown: max(1, opts.MaxConnections/unknownShare)}
	s.metrics = opts.Metrics
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	s.quiet.lim = rate.NewLimiter(quietLinesPerSecond, quietBurst)
	if err := s.metrics.attach(s); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	// Until the first Load every source is unknown (403).
	s.state.Store(&state{resolver: resolver.New(nil, nil)})
	if cfg != nil {
		if err := s.Load(cfg); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Load swaps in a new configuration atomically. A tenant present before and
// after keeps its IMDSv2 tokens; a removed tenant's tokens are kept for
// retiredGrace, and taken back if it returns by then.
func (s *Server) Load(cfg *tenants.Config) error {
	if cfg == nil || len(cfg.Tenants) == 0 {
		return errors.New("handlers: a configuration needs at least one tenant")
	}
	s.reload.Lock()
	defer s.reload.Unlock()
	old := s.state.Load()
	now := s.opts.Now()
	st := &state{
		resolver: resolver.New(cfg.Tenants, cfg.Server.TrustedProxies),
		sites:    make(map[*tenants.Tenant]*site, len(cfg.Tenants)),
		byName:   make(map[string]*site, len(cfg.Tenants)),
		byToken:  make(map[[32]byte]*site),
		hosts:    cfg.Server.Hosts,
		retired:  make(map[string]retired),
	}
	st.accounts, _ = any(cfg).(serviceAccountTenants)
	st.pods = cfg
	for _, t := range cfg.Tenants {
		si := &site{tenant: t}
		prev := old.site(t.Name)
		r, back := old.retired[t.Name]
		switch {
		case prev != nil:
			si.kept = prev.kept
		case back && now.Before(r.until):
			si.kept = r.kept
		default:
			si.kept = new(kept)
		}
		if b := si.kept.events.Load(); b != nil || len(t.Events()) > 0 {
			si.kept.board().configure(t.Events(), now, s.opts.Rand)
		}
		if prev != nil && reflect.DeepEqual(prev.tenant, t) {
			// Unchanged: keep what is served, a mirrored identity included.
			si.view.Store(prev.view.Load())
		} else {
			served := t
			if s.opts.View != nil {
				if v := s.opts.View(t); v != nil {
					served = v
				}
			}
			si.view.Store(newView(served, s.opts.Signer, s.shapes))
		}
		st.sites[t] = si
		st.byName[t.Name] = si
		st.ordered = append(st.ordered, si)
		if t.ContainerToken() != "" {
			// Keyed by digest: looking up a guess compares hashes, not
			// the secret itself.
			st.byToken[sha256.Sum256([]byte(t.ContainerToken()))] = si
		}
	}
	for name, r := range old.retired {
		if st.byName[name] == nil && now.Before(r.until) {
			st.retired[name] = r
		}
	}
	for _, si := range old.ordered {
		if st.byName[si.tenant.Name] == nil {
			st.retired[si.tenant.Name] = retired{kept: si.kept, until: now.Add(retiredGrace)}
		}
	}
	s.state.Store(st)
	return nil
}

func (st *state) site(name string) *site {
	if st == nil {
		return nil
	}
	return st.byName[name]
}

// ServeHTTP resolves the tenant from the connection's address, then serves
// it. Nothing in the request but the peer address (and, from a trusted
// proxy, X-Forwarded-For) chooses the tenant.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{ResponseWriter: w, start: s.opts.Now()}
	defer s.recoverPanic(x, r)
	h := w.Header()
	h["Server"] = serverHeader
	h["Date"] = s.dates.at(x.start) // else net/http reads the clock again and formats it
	st := s.state.Load()
	c := s.conn(r)
	var m *connMemo
	peerOK := true
	if c != nil {
		x.peer, m = c.src, &c.memo
		x.memo = m
		if m.st != st {
			m.st, m.host, m.hostOK, m.tenant = st, "", false, nil
		}
	} else {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		x.peer, peerOK = peer.Addr().Unmap(), err == nil
	}
	switch {
	case !peerOK || !m.hostAllowed(r.Host, st.hosts) || fromBrowser(r):
		x.src = x.peer // for the log: who sent it, as far as known
		x.refuse(http.StatusForbidden)
	default:
		var t *tenants.Tenant
		var ok, throttled bool
		st, t, ok, throttled = s.resolve(r, x, st, r.Header["X-Forwarded-For"], m)
		switch {
		case throttled:
			x.refuse(http.StatusTooManyRequests)
		case !ok:
			s.warnUnknown(x.src)
			x.refuse(http.StatusForbidden)
		case !x.serveAs(st.sites[t]):
			x.refuse(http.StatusForbidden)
		case !s.allow(c, x, t.Limits):
			x.refuse(http.StatusTooManyRequests)
		default:
			s.route(x, r)
		}
	}
	s.logAccessOn(x, r, c)
	if x.site != nil {
		x.site.kept.counts.add(x)
	} else {
		s.metrics.unknown.Add(1)
	}
}

// conn is the connection r arrived on, if this server's Listener admitted
// it (and ConnContext put it in the context); nil otherwise, as for a
// request made in a test.
func (s *Server) conn(r *http.Request) *limitedConn {
	c, ok := connFrom(r.Context()).(*limitedConn)
	if !ok || c.s != s {
		return nil
	}
	return c
}

// hostAllowed is the package's hostAllowed, remembered for the connection:
// a client sends the same Host with every request. m may be nil.
func (m *connMemo) hostAllowed(host string, extra []string) bool {
	if m != nil && m.hostOK && m.host == host {
		return true
	}
	if !hostAllowed(host, extra) {
		return false
	}
	if m != nil {
		m.host, m.hostOK = host, true
	}
	return true
}

// allow takes one request from the budget of x.src. A connection's own
// peer uses the limiter its admission found, without looking it up.
func (s *Server) allow(c *limitedConn, x *exchange, l tenants.Limits) bool {
	if c != nil && c.source != nil && x.src == c.src {
		return s.sources.allowSource(c.shard, c.source, l, x.start)
	}
	return s.sources.allow(x.src, l, x.start)
}

// resolve sets x.src, the client (x.peer, or whom a trusted proxy's
// X-Forwarded-For names), and finds its tenant. An unknown address within
// its rate is held for the Docker watch (waitForSource) and looked up again
// in the state that holds then; one past its rate (throttled) is not held,
// so that an address asking in a loop never takes the waiters a container
// just started needs. m is the memo of the request's connection (nil:
// none): a tenant found for the connection's own peer is remembered there
// for the connection's next requests in st.
func (s *Server) resolve(r *http.Request, x *exchange, st *state, xff []string, m *connMemo) (_ *state, t *tenants.Tenant, ok, throttled bool) {
	if m != nil && m.tenant != nil && len(xff) == 0 {
		x.src = x.peer
		return st, m.tenant, true, false
	}
	x.src = st.resolver.Client(x.peer, xff)
	if t, _, ok = st.resolver.Lookup(x.src); ok {
		if m != nil && x.src == x.peer {
			m.tenant = t
		}
		return st, t, true, false
	}
	if !s.sources.allow(x.src, unknownLimits(), x.start) {
		return st, nil, false, true
	}
	if s.waitForSource(r.Context(), x.src) {
		st = s.state.Load()
		x.src = st.resolver.Client(x.peer, xff)
		t, _, ok = st.resolver.Lookup(x.src)
	}
	return st, t, ok, false
}

// serveAs binds the exchange to a tenant and reports whether its metadata
// service is enabled.
func (x *exchange) serveAs(si *site) bool {
	x.site, x.view = si, si.view.Load()
	return x.view.tenant.IMDS.Enabled
}

// Publish replaces what is served for the configured tenant named name:
// how a refreshed mirror of a live instance reaches clients. t must be the
// configured tenant or one derived from it (same name, sources and
// credentials). It reports false when no such tenant is configured.
func (s *Server) Publish(name string, t *tenants.Tenant) bool {
	s.reload.Lock() // a Load in progress must not copy the view being replaced
	defer s.reload.Unlock()
	si := s.state.Load().site(name)
	if si == nil {
		return false
	}
	si.view.Store(newView(t, s.opts.Signer, s.shapes))
	return true
}

// recoverPanic turns a handler's panic into a 500 and a log line with the
// stack, instead of a dropped connection and a message on stderr.
func (s *Server) recoverPanic(x *exchange, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.log.Error().Str("src", x.src.String()).Str("path", r.URL.Path).Interface("panic", v).
		Bytes("stack", debug.Stack()).Msg("handler panic")
	if x.status == 0 {
		x.reply(http.StatusInternalServerError, nil, nil)
	}
}

func (s *Server) warnUnknown(a netip.Addr) {
	if !s.unknown.allow(a, s.opts.Now()) {
		return
	}
	if e := s.quietly(s.log.Warn()); e != nil {
		e.Str("src", a.String()).
			Msg("request from an address that no tenant lists: answered 403; add it to a tenant's sources to serve it")
	}
}

// warnLimiter lets one warning per address through every so often, holding
// at most max addresses (a flood of sources resets it rather than grow it).
type warnLimiter struct {
	mu    sync.Mutex
	every time.Duration
	max   int
	last  map[netip.Addr]time.Time
}

func (l *warnLimiter) allow(a netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[a]; ok && now.Sub(t) < l.every {
		return false
	}
	if l.last == nil || len(l.last) >= l.max {
		l.last = make(map[netip.Addr]time.Time)
	}
	l.last[a] = now
	return true
}
