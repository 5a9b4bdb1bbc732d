package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/diode"

	"github.com/imds-proxy/imds-proxy/cache"
	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/internal/awssource"
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
)

// newLogger builds the one logger of the process. Lines go through a diode:
// a lock-free ring buffer drained by one goroutine, so a request never
// waits on a slow terminal or pipe; if the buffer overflows, lines are
// dropped and the drop is counted in the log, rather than slowing clients.
func newLogger(o *options, stderr io.Writer) (zerolog.Logger, func(), error) {
	level, err := zerolog.ParseLevel(o.logLevel)
	if err != nil || o.logLevel == "" {
		return zerolog.Logger{}, nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", o.logLevel)
	}
	format := o.logFormat
	if format == "" {
		format = "json"
		if f, ok := stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "console"
		}
	}
	// The diode closes its writer on Close: the batch writer flushes then,
	// and leaves stderr open for main to report the error serve returns.
	d := diode.NewWriter(newBatchWriter(stderr, 10*time.Millisecond), 8192, 10*time.Millisecond, func(missed int) {
		fmt.Fprintf(stderr, "imds-proxy: log buffer full, %d lines dropped\n", missed)
	})
	var w io.Writer = d
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: d, TimeFormat: time.RFC3339}
	default:
		return zerolog.Logger{}, nil, fmt.Errorf("--log-format %q: use json or console", format)
	}
	logger := zerolog.New(w).Level(level).With().Timestamp().Logger()
	return logger, func() { _ = d.Close() }, nil
}

// serve runs the listeners until ctx ends, then drains them.
func serve(ctx context.Context, o *options, cfg *tenants.Config, stderr io.Writer) error {
	// Every goroutine serve starts (refreshers, the reloader) ends with
	// this context, which ends with serve.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	logger, closeLog, err := newLogger(o, stderr)
	if err != nil {
		return err
	}
	defer closeLog()

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

	var listeners []listener
	closeAll := func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}
	listen := func(addr, kind string) error {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("%s listener: %w", kind, err)
		}
		listeners = append(listeners, listener{l, kind})
		logger.Info().Str("addr", l.Addr().String()).Str("listener", kind).Msg("listening")
		return nil
	}
	for _, addr := range cfg.Server.Listen {
		if err := listen(addr, "imds"); err != nil {
			return err
		}
	}
	if cfg.Server.ContainerListen != "" {
		if err := listen(cfg.Server.ContainerListen, "container"); err != nil {
			return err
		}
	}
	if cfg.Server.AdminListen != "off" {
		if err := listen(cfg.Server.AdminListen, "admin"); err != nil {
			return err
		}
	}

	metrics := handlers.NewMetrics()
	upstream := awssource.NewLoader() // one connection pool to AWS for every refresh
	creds := newCredentialCache(ctx, upstream.Profile, logger, metrics, cache.Options{})
	creds.Load(cfg)
	mirrored := newMirrors(ctx, upstream.EC2, logger, cache.Options{})
	sig := <-signerc
	if sig.err != nil {
		closeAll()
		return sig.err
	}
	srv, err := handlers.New(cfg, handlers.Options{Logger: logger, Signer: sig.s, Credentials: creds,
		Metrics: metrics, Status: tenantStates{creds: creds, mirror: mirrored.State}, View: mirrored.View})
	if err != nil {
		closeAll()
		return err
	}
	mirrored.Load(cfg, srv.Publish)
	for _, t := range cfg.Tenants {
		logger.Info().Str("tenant", t.Name).Str("instance", t.Instance.ID).Interface("sources", t.Sources).Msg("serving tenant")
	}

	servers := make([]*http.Server, len(listeners))
	for i, l := range listeners {
		var h http.Handler = srv
		switch l.kind {
		case "container":
			h = srv.ContainerCredentials()
		case "admin":
			h = srv.Admin()
		}
		servers[i] = &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ConnContext:       handlers.ConnContext,
			ErrorLog:          log.New(logWriter{logger}, "", 0),
		}
	}

	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for i, hs := range servers {
		wg.Add(1)
		go func(hs *http.Server, l net.Listener) {
			defer wg.Done()
			if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}(hs, served(srv, listeners[i]))
	}

	if o.config != "" {
		rl := &reloader{o: o, log: logger, current: cfg, apply: func(next *tenants.Config) {
			creds.Load(next) // first: the new tenants' credentials start fetching
			// srv.Load seeds each mirrored tenant with its last copy
			// (handlers.Options.View: the mirrors' entries by name), so it
			// is never served unmirrored; then the mirrors switch to the new
			// tenants and publish into the new configuration.
			if err := srv.Load(next); err != nil {
				logger.Error().Err(err).Msg("configuration not applied")
			}
			mirrored.Load(next, srv.Publish)
		}}
		// Every later configuration, reloaded or changed by a container,
		// is applied through live, which adds the addresses of the
		// containers that tenants name.
		live := newContainerSources(logger, o.dockerHost, cfg, rl.apply)
		rl.apply = live.SetFile
		wg.Add(2)
		go func() {
			defer wg.Done()
			rl.run(ctx)
		}()
		go func() {
			defer wg.Done()
			live.run(ctx)
		}()
	} else {
		// Seed mode has no file to reload; SIGHUP must not kill the proxy.
		signal.Ignore(syscall.SIGHUP)
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

// listener is an open socket and what it serves: imds, container, admin.
type listener struct {
	net.Listener
	kind string
}

// served is the listener a server accepts from: the IMDS and container
// listeners cap each source's open connections.
func served(srv *handlers.Server, l listener) net.Listener {
	if l.kind == "imds" || l.kind == "container" {
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
