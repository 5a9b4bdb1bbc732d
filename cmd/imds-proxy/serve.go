package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/cache"
	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/internal/kubernetes"
	"github.com/imds-proxy/imds-proxy/internal/liveconfig"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// Server limits. IMDS requests are tiny and answered from memory: anything
// slow or large is a broken or hostile client.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	shutdownGrace     = 10 * time.Second
	// maxTenantLines is how many "serving tenant" lines start logs at info.
	maxTenantLines = 100
)

// newLogger builds the one logger of the process. Lines gather in a
// bounded buffer written out every few milliseconds (logBuffer), so a
// request never waits on a slow terminal or pipe; if the buffer fills,
// lines are dropped and the drop is counted in the log, rather than
// slowing clients.
func newLogger(o *options, stderr io.Writer) (zerolog.Logger, func(), error) {
	level, err := zerolog.ParseLevel(o.logLevel)
	if err != nil || o.logLevel == "" {
		return zerolog.Logger{}, nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", o.logLevel)
	}
	f, isFile := stderr.(*os.File)
	terminal := isFile && isatty.IsTerminal(f.Fd())
	format := o.logFormat
	if format == "" {
		format = "json"
		if terminal {
			format = "console"
		}
	}
	// Closing the buffer writes what is left and leaves stderr open for
	// main to report the error serve returns.
	buf := newLogBuffer(stderr, logFlushInterval, logBufferMax)
	var w io.Writer = buf
	switch format {
	case "json":
	case "console":
		// Colour codes only for a terminal: in a journal or a file they
		// are noise.
		w = zerolog.ConsoleWriter{Out: buf, TimeFormat: logTimeFormat, NoColor: !terminal}
	default:
		_ = buf.Close()
		return zerolog.Logger{}, nil, fmt.Errorf("--log-format %q: use json or console", format)
	}
	logger := zerolog.New(w).Level(level).Hook(&timestampMs{})
	return logger, func() { _ = buf.Close() }, nil
}

// logTimeFormat is RFC 3339 with milliseconds: lines a few milliseconds
// apart (a request and its refresh) keep their order when read.
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// timestampMs stamps every line with the time in logTimeFormat. zerolog's
// own Timestamp() formats with the package variable TimeFieldFormat
// (whole seconds by default), and changing that would be global state, so
// the logger carries its own hook instead. The ConsoleWriter reads this
// field back: time.Parse accepts the fraction under zerolog's RFC 3339.
//
// Formatting a time was half the access log's cost per request (measured:
// pprof of BenchmarkMetadataGET): the hook formats each second once and
// writes only the milliseconds of each line into it.
type timestampMs struct{ second atomic.Pointer[stampedSecond] }

// stampedSecond is one second in logTimeFormat, its milliseconds at
// msAt.
type stampedSecond struct {
	unix  int64
	loc   *time.Location
	stamp []byte
	msAt  int
}

func (h *timestampMs) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	var b [48]byte
	now, ok := handlers.LoggedAt(e.GetCtx()) // an access line has read the clock already
	if !ok {
		now = time.Now()
	}
	e.Bytes(zerolog.TimestampFieldName, h.appendStamp(b[:0], now))
}

// appendStamp appends now in logTimeFormat to b.
func (h *timestampMs) appendStamp(b []byte, now time.Time) []byte {
	s := h.second.Load()
	if s == nil || s.unix != now.Unix() || s.loc != now.Location() {
		stamp := now.Truncate(time.Second).AppendFormat(nil, logTimeFormat)
		s = &stampedSecond{unix: now.Unix(), loc: now.Location(), stamp: stamp, msAt: len("2006-01-02T15:04:05.")}
		h.second.Store(s)
	}
	i := len(b) + s.msAt
	b = append(b, s.stamp...)
	ms := now.Nanosecond() / int(time.Millisecond)
	b[i], b[i+1], b[i+2] = byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10)
	return b
}

// serve runs the listeners until ctx ends, then drains them.
func serve(ctx context.Context, d deps, o *options, loaded liveconfig.Loaded, stderr io.Writer) error {
	// Every goroutine serve starts (refreshers, the reloader) ends with
	// this context, which ends with serve.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	logger, closeLog, err := newLogger(o, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	cfg := loaded.Config

	// The signing key takes a moment to make: make it while the sockets
	// open and the credentials prefetch starts. Clients that connect
	// meanwhile wait in the accept queue rather than being refused.
	type signed struct {
		s   *handlers.Signer
		err error
	}
	signerc := make(chan signed, 1)
	go func() {
		s, err := handlers.NewSigner(nil, time.Now())
		signerc <- signed{s, err}
	}()

	if cfg.Kubernetes != nil && liveconfig.NodeName(cfg, o.nodeName) == "" {
		return configError{errors.New("kubernetes: no node to follow: set kubernetes.node_name, or NODE_NAME " +
			"(in a DaemonSet, from the downward API: fieldRef spec.nodeName)")}
	}
	// client-go logs through klog, to stderr unless told otherwise: into
	// the structured log, redacted, like every other upstream's text.
	kubernetes.RouteLogs(logger, tenants.Redact)
	reviewer, reviewerAPI, err := podIdentityReviewer(cfg)
	if err != nil {
		return err
	}
	listeners, err := openListeners(cfg.Server, logger)
	if err != nil {
		return err
	}
	p := newProxy(ctx, d, logger, o.config == "")
	p.reviewer = reviewer
	p.memory, p.goMemLimit = o.memoryLimit, o.goMemLimit
	if d.kube == nil {
		d.kube = connectKube(reviewerAPI, podIdentityKubeconfig(cfg))
	}
	// The live configuration is a chain: the file (reloads), then its
	// containers, then its pods, then the server.
	p.pods = liveconfig.NewPods(logger, o.nodeName, d.kube, cfg, p.applyLogged)
	p.live = liveconfig.NewContainers(logger, o.dockerHost, cfg, p.pods.SetFile)
	// Prefetch: credentials start fetching while the key is made; apply
	// loads the same configuration again, which keeps these entries.
	p.creds.Load(cfg)
	sig := <-signerc
	err = sig.err
	if err == nil {
		err = p.serve(sig.s, cfg)
		freeParseGarbage()
	}
	if err != nil {
		closeListeners(listeners)
		return err
	}
	for _, w := range append(configWarnings(cfg), o.ignoredEnv...) {
		logger.Warn().Msg(w)
	}
	// A line a tenant, at info while they can be read; a host of
	// thousands gets one line, and the rest at debug.
	level := zerolog.InfoLevel
	if len(cfg.Tenants) > maxTenantLines {
		level = zerolog.DebugLevel
		logger.Info().Int("tenants", len(cfg.Tenants)).Msg("serving tenants (one line each at --log-level debug)")
	}
	for _, t := range cfg.Tenants {
		logger.WithLevel(level).Str("tenant", t.Name).Str("instance", t.Instance.ID).Interface("sources", t.Sources).Msg("serving tenant")
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(listeners))
	servers := make([]server, len(listeners))
	for i, l := range listeners {
		servers[i] = newServer(p.srv, l.kind, logger)
		wg.Add(1)
		go func(hs server, l net.Listener) {
			defer wg.Done()
			if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}(servers[i], served(p.srv, l))
	}
	if o.config != "" {
		follow(ctx, &wg, o, loaded, p, logger)
	} else {
		// Seed mode has no file to reload; SIGHUP must not kill the proxy.
		signal.Ignore(syscall.SIGHUP)
	}
	if sd := (notifier{o.notifySocket}); sd.socket != "" {
		// Ready once the listeners accept and the credentials are
		// prefetched: a unit ordered after this one finds them served.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st := readyState(ctx, cfg, p.creds, 20*time.Millisecond); st != "" {
				sdNotify(sd, st, logger)
			}
		}()
		defer sdNotify(sd, "STOPPING=1", logger)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	logger.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, hs := range servers {
		_ = hs.Shutdown(sctx)
	}
	stop()
	wg.Wait()
	logger.Info().Msg("stopped")
	return runErr
}

// proxy is what a configuration is applied to: the credential and mirror
// stores and the server.
type proxy struct {
	metrics *handlers.Metrics
	logger  zerolog.Logger
	creds   *credentialCache
	mirrors *mirrors
	mfa     *mfaDesk
	srv     *handlers.Server
	live    *liveconfig.Containers // the file's tenants with the followed containers
	pods    *liveconfig.Pods       // ... and then with the node's pods
	// reviewer authenticates Pod Identity tokens; nil: no such endpoint.
	reviewer handlers.TokenReviewer
	// memory is --memory-limit, set again for each configuration's
	// count of tenants; goMemLimit: GOMEMLIMIT is set.
	memory     memoryLimit
	goMemLimit bool
}

// newProxy loads profiles the way the mode asks: in seed mode (no
// --config) the profile "default" is the SDK's default chain, environment
// credentials and AWS_PROFILE included, as the AWS CLI finds it; with a
// configuration file every tenant gets exactly the profile it names
// (awssource.Profiles).
func newProxy(ctx context.Context, d deps, logger zerolog.Logger, seed bool) *proxy {
	// One connection pool to AWS for every refresh.
	upstream := awssource.NewLoader(awssource.Profiles{DefaultChain: seed})
	if d.profiles == nil {
		d.profiles = upstream.Profile
	}
	if d.ec2 == nil {
		d.ec2 = upstream.EC2
	}
	metrics := handlers.NewMetrics()
	sessions := awssource.NewMFASessions(d.profiles, nil)
	creds := newCredentialCache(ctx, d.profiles, sessions, logger, metrics, cache.Options{})
	return &proxy{
		metrics: metrics,
		logger:  logger,
		creds:   creds,
		mirrors: newMirrors(ctx, d.ec2, logger, cache.Options{}),
		mfa:     &mfaDesk{sessions: sessions, creds: creds, mfaProfile: awssource.MFAProfile},
	}
}

// serve makes the server, signing identity documents with signer, and
// applies cfg.
func (p *proxy) serve(signer *handlers.Signer, cfg *tenants.Config) error {
	srv, err := handlers.New(nil, handlers.Options{Logger: p.logger, Signer: signer, Credentials: p.creds,
		Metrics: p.metrics, Status: tenantStates{creds: p.creds, mirror: p.mirrors.State}, View: p.mirrors.View, MFA: p.mfa,
		WaitForSource: waitForAny(p.live.WaitForSource, p.pods.WaitForSource), TokenReviewer: p.reviewer})
	if err != nil {
		return err
	}
	p.srv = srv
	return p.apply(cfg)
}

// apply makes cfg the configuration served, at start and at every reload
// alike.
func (p *proxy) apply(cfg *tenants.Config) error {
	p.mfa.sessions.SetDuration(cfg.Server.MFADuration)
	p.creds.Load(cfg) // first: the new tenants' credentials start fetching
	// The server seeds each mirrored tenant with its last copy
	// (handlers.Options.View: the mirrors' entries by name), so it is never
	// served unmirrored; then the mirrors switch to the new tenants and
	// publish into the new configuration.
	if err := p.srv.Load(cfg); err != nil {
		return err
	}
	p.mirrors.Load(cfg, p.srv.Publish)
	if l := p.memory.apply(len(cfg.Tenants), p.goMemLimit); l > 0 {
		p.logger.Debug().Int64("bytes", l).Msg("memory limit (--memory-limit)")
	}
	return nil
}

// freeParseGarbage hands back to the system what parsing the file left:
// many times the size of what it built (YAML nodes, the old
// configuration), which the runtime would return only over minutes, so
// that the process's resident size is what it serves from. It forces a
// full collection, so it follows a parse (start, reload), never a
// container's or a pod's event, which parses nothing.
func freeParseGarbage() { debug.FreeOSMemory() }

// applyLogged is apply for the live configuration, which has no caller
// to return an error to.
func (p *proxy) applyLogged(cfg *tenants.Config) {
	if err := p.apply(cfg); err != nil {
		p.logger.Error().Err(err).Msg("configuration not applied")
	}
}

// follow keeps the configuration current until ctx ends: the file's
// reloads, for tenants that name containers the Docker Engine's events,
// and in Kubernetes mode the node's pods, all applied through one path.
func follow(ctx context.Context, wg *sync.WaitGroup, o *options, loaded liveconfig.Loaded, p *proxy, logger zerolog.Logger) {
	live := p.live
	// A load that follows a SIGHUP (systemctl reload) is announced to the
	// service manager: RELOADING=1 before, READY=1 after, always in pairs.
	// The reloader hears SIGHUP on its own channel; this one only says
	// whether one came, and is registered here, before serve returns to
	// its caller, so that SIGHUP never finds the default action (exit).
	sd := notifier{o.notifySocket}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	load := func() (liveconfig.Loaded, error) {
		select {
		case <-hup:
			sdNotify(sd, stateReloading, logger)
			defer sdNotify(sd, "READY=1", logger)
		default:
		}
		return loadConfig(ctx, o)
	}
	reloaded := func(cfg *tenants.Config) {
		live.SetFile(cfg)
		freeParseGarbage()
	}
	rl := liveconfig.NewReloader(o.config, loaded, load, reloaded, logger)
	wg.Add(3)
	go func() {
		defer wg.Done()
		p.pods.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		defer signal.Stop(hup)
		rl.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		live.Run(ctx)
	}()
}

// waitForAny is handlers.Options.WaitForSource over every live source:
// true as soon as one of them serves addr, false once all have given up.
func waitForAny(waits ...func(context.Context, netip.Addr) bool) func(context.Context, netip.Addr) bool {
	return func(ctx context.Context, addr netip.Addr) bool {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // the others give up as one says yes
		res := make(chan bool, len(waits))
		for _, wait := range waits {
			go func() { res <- wait(ctx, addr) }()
		}
		for range waits {
			if <-res {
				return true
			}
		}
		return false
	}
}

// sdNotify sends state to the service manager, logging a failure.
func sdNotify(n notifier, state string, logger zerolog.Logger) {
	if err := n.notify(state); err != nil {
		logger.Warn().Err(err).Msg("cannot notify the service manager")
	}
}

// openListeners opens every listener of the server: block, or none.
func openListeners(s tenants.Server, logger zerolog.Logger) ([]listener, error) {
	var ls []listener
	listen := func(addr, kind string) error {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeListeners(ls)
			return listenError(kind, addr, err)
		}
		ls = append(ls, listener{l, kind})
		logger.Info().Str("addr", l.Addr().String()).Str("listener", kind).Msg("listening")
		if ap, err := tenants.ParseListen(addr); err == nil && ap.Addr().IsUnspecified() && kind != "admin" {
			logger.Warn().Str("addr", addr).Str("listener", kind).
				Msg("listening on every address of this host: only the configured tenants' sources are served; any other source still gets 403")
		}
		return nil
	}
	for _, addr := range s.Listen {
		if err := listen(addr, "imds"); err != nil {
			return nil, err
		}
	}
	if s.ContainerListen != "" {
		if err := listen(s.ContainerListen, "container"); err != nil {
			return nil, err
		}
	}
	if s.ECSListen != "" {
		if err := listen(s.ECSListen, "ecs"); err != nil {
			return nil, err
		}
	}
	for _, addr := range s.PodIdentityListen {
		if err := listen(addr, "podidentity"); err != nil {
			return nil, err
		}
	}
	if s.AdminListen != "off" {
		if err := listen(s.AdminListen, "admin"); err != nil {
			return nil, err
		}
	}
	return ls, nil
}

func closeListeners(ls []listener) {
	for _, l := range ls {
		_ = l.Close()
	}
}

// server is an http.Server, or the Lane in front of one.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// newServer serves one kind of listener: the IMDS listener through the
// Lane (handlers.Lane: plain GETs read without net/http's per-request
// machinery, everything else by net/http), the others by net/http.
func newServer(srv *handlers.Server, kind string, logger zerolog.Logger) server {
	hs := newHTTPServer(srv, kind, logger)
	if kind == "imds" {
		return srv.Lane(hs)
	}
	return hs
}

// newHTTPServer serves one kind of listener with the server limits. Its
// ConnState hook tells the listener wrapper (served) which connections are
// idle, so that one is closed rather than a new connection refused at a
// limit.
func newHTTPServer(srv *handlers.Server, kind string, logger zerolog.Logger) *http.Server {
	var h http.Handler = srv
	switch kind {
	case "container":
		h = srv.ContainerCredentials()
	case "ecs":
		h = srv.ECSCredentials()
	case "podidentity":
		h = srv.PodIdentityCredentials()
	case "admin":
		h = srv.Admin()
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext:       handlers.ConnContext,
		ConnState:         srv.ConnState,
		ErrorLog:          log.New(logWriter{logger}, "", 0),
	}
}

// listener is an open socket and what it serves: imds, container, ecs,
// podidentity, admin.
type listener struct {
	net.Listener
	kind string
}

// served is the listener a server accepts from: the IMDS and container
// listeners cap each source's open connections and, together, the
// server's (a share of RLIMIT_NOFILE: handlers.DefaultMaxConnections).
func served(srv *handlers.Server, l listener) net.Listener {
	if l.kind != "admin" {
		return srv.Listener(l.Listener)
	}
	return l.Listener
}

// logWriter carries net/http's own error messages (TLS noise, accept
// errors) into the structured log.
type logWriter struct{ l zerolog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warn().Str("from", "net/http").Msg(string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}
