package liveconfig

import (
	"context"
	"crypto/sha256"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// reloadDebounce lets an editor finish writing (truncate, write, rename)
// before the file is read: one reload per save.
const reloadDebounce = 150 * time.Millisecond

// settleWindow and maxSettleRounds: a changed file is applied only once two
// loads settleWindow apart read the same bytes, so that a file written in
// place with a pause inside (a slow script, a copy over the network) is
// not applied half-written: valid YAML one tenant short would answer its
// clients 403. A file still changing after maxSettleRounds is left for the
// write events still to come.
const (
	settleWindow    = 500 * time.Millisecond
	maxSettleRounds = 20
)

// Loaded is one configuration as the caller's pipeline made it, with the
// digest of the file it was made from.
type Loaded struct {
	Config *tenants.Config
	Digest [32]byte
}

// Reloader applies a changed configuration file to the running server:
// Load reads, validates and completes it fully, then Apply swaps it in; an
// invalid file is logged with file:line and the running configuration
// stays.
//
// Replace the file atomically — write a temporary file in the same
// directory, then rename it over the configuration (mv, or what editors,
// configuration management and Kubernetes' ..data link do) — and every
// read sees one whole version. A file written in place can be read
// between two writes; the reloader waits until two reads agree
// (settleWindow), which catches a pause shorter than that, not every one.
type Reloader struct {
	path    string // watched through its directory
	load    func() (Loaded, error)
	apply   func(*tenants.Config)
	log     zerolog.Logger
	current Loaded // what runs
	// wait sleeps for d, false if ctx ends first; tests replace it.
	wait func(ctx context.Context, d time.Duration) bool
}

// NewReloader returns the reloader of path, whose configuration running
// is already applied. load is the configuration pipeline the server
// started with, so that a reload never reads a file differently; apply
// swaps a new configuration in.
func NewReloader(path string, running Loaded, load func() (Loaded, error), apply func(*tenants.Config), log zerolog.Logger) *Reloader {
	return &Reloader{path: path, load: load, apply: apply, log: log, current: running, wait: sleep}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Run reloads on SIGHUP and whenever the file changes, until ctx ends.
func (rl *Reloader) Run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var events <-chan fsnotify.Event
	var errs <-chan error
	if w, err := fsnotify.NewWatcher(); err != nil {
		rl.log.Warn().Err(err).Msg("cannot watch the configuration file; reload with SIGHUP")
	} else {
		defer w.Close()
		// The directory, not the file: editors and Kubernetes replace
		// files by renaming, which ends a watch on the file itself.
		if err := w.Add(filepath.Dir(rl.path)); err != nil {
			rl.log.Warn().Err(err).Msg("cannot watch the configuration's directory; reload with SIGHUP")
		}
		events, errs = w.Events, w.Errors
	}
	// The file may have changed between loading and watching, by any
	// means: look once now, waiting for it to settle. An unchanged file
	// (the same digest as loaded) is not reloaded.
	rl.reload(ctx, "file changed before the watch began", false, true)

	var debounce <-chan time.Time
	inPlace := false // a write to the file itself since the last reload
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			// The operator says the file is ready: load it as it is.
			rl.reload(ctx, "SIGHUP", true, false)
		case ev := <-events:
			if sameFile(ev.Name, rl.path) || filepath.Base(ev.Name) == "..data" {
				debounce = time.After(reloadDebounce)
				// A file renamed into place (Create) is whole; one
				// written in place (Write) may be read between writes.
				inPlace = inPlace || ev.Has(fsnotify.Write) && sameFile(ev.Name, rl.path)
			}
		case err := <-errs:
			rl.log.Warn().Err(err).Msg("configuration watch error")
		case <-debounce:
			debounce = nil
			rl.reload(ctx, "file changed", false, inPlace)
			inPlace = false
		}
	}
}

// unchanged reports whether the file holds the bytes that run.
func (rl *Reloader) unchanged() bool {
	data, err := os.ReadFile(rl.path)
	return err == nil && sha256.Sum256(data) == rl.current.Digest
}

func sameFile(a, b string) bool {
	ca, errA := filepath.Abs(a)
	cb, errB := filepath.Abs(b)
	return errA == nil && errB == nil && ca == cb
}

// reload loads the file and, if it is valid and (unless forced) different
// from what runs, swaps it in; with settle, only once it reads the same
// twice.
func (rl *Reloader) reload(ctx context.Context, reason string, force, settle bool) {
	if !force && rl.unchanged() {
		return // the bytes that run: no parse (10,000 tenants take most of a second)
	}
	next, err := rl.load()
	if !force && err == nil && next.Digest == rl.current.Digest {
		return // unchanged: nothing being written either
	}
	if settle {
		var ok bool
		if next, ok, err = rl.settled(ctx, next, err); !ok {
			return
		}
	}
	if err != nil {
		rl.log.Error().Str("reason", reason).Str("errors", err.Error()).
			Msg("configuration rejected; still serving the previous one")
		return
	}
	cur, cfg := rl.current.Config.Server, next.Config.Server
	if !slices.Equal(cfg.Listen, cur.Listen) || cfg.AdminListen != cur.AdminListen || cfg.ContainerListen != cur.ContainerListen || cfg.ECSListen != cur.ECSListen ||
		!slices.Equal(cfg.PodIdentityListen, cur.PodIdentityListen) {
		rl.log.Warn().Msg("listen addresses changed: they apply at the next restart; tenants are reloaded now")
	}
	for _, w := range next.Config.Warnings {
		rl.log.Warn().Msg(w.Error())
	}
	rl.apply(next.Config)
	rl.current = next
	rl.log.Info().Str("reason", reason).Int("tenants", len(next.Config.Tenants)).Msg("configuration reloaded")
}

// settled loads the file again until two loads settleWindow apart read
// the same bytes (the same digest, both valid or both not), starting from
// the load next, err, and returns the last. ok is false when the file is
// still changing or ctx ended.
func (rl *Reloader) settled(ctx context.Context, next Loaded, err error) (Loaded, bool, error) {
	for range maxSettleRounds {
		if !rl.wait(ctx, settleWindow) {
			return next, false, err
		}
		again, againErr := rl.load()
		if again.Digest == next.Digest && (againErr == nil) == (err == nil) {
			return again, true, againErr
		}
		next, err = again, againErr
	}
	rl.log.Warn().Msg("the configuration file is still being written; it is loaded once it stays the same " + settleWindow.String())
	return next, false, err
}
