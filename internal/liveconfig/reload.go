package liveconfig

import (
	"context"
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
type Reloader struct {
	path    string // watched through its directory
	load    func() (Loaded, error)
	apply   func(*tenants.Config)
	log     zerolog.Logger
	current Loaded // what runs
}

// NewReloader returns the reloader of path, whose configuration running
// is already applied. load is the configuration pipeline the server
// started with, so that a reload never reads a file differently; apply
// swaps a new configuration in.
func NewReloader(path string, running Loaded, load func() (Loaded, error), apply func(*tenants.Config), log zerolog.Logger) *Reloader {
	return &Reloader{path: path, load: load, apply: apply, log: log, current: running}
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
	// The file may have changed between loading and watching: look once
	// now. An unchanged file (the same digest as loaded) is not reloaded.
	rl.reload("file changed before the watch began", false)

	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			rl.reload("SIGHUP", true)
		case ev := <-events:
			if sameFile(ev.Name, rl.path) || filepath.Base(ev.Name) == "..data" {
				debounce = time.After(reloadDebounce)
			}
		case err := <-errs:
			rl.log.Warn().Err(err).Msg("configuration watch error")
		case <-debounce:
			debounce = nil
			rl.reload("file changed", false)
		}
	}
}

func sameFile(a, b string) bool {
	ca, errA := filepath.Abs(a)
	cb, errB := filepath.Abs(b)
	return errA == nil && errB == nil && ca == cb
}

// reload loads the file and, if it is valid and (unless forced) different
// from what runs, swaps it in.
func (rl *Reloader) reload(reason string, force bool) {
	next, err := rl.load()
	if err != nil {
		rl.log.Error().Str("reason", reason).Str("errors", err.Error()).
			Msg("configuration rejected; still serving the previous one")
		return
	}
	if !force && next.Digest == rl.current.Digest {
		return
	}
	cur, cfg := rl.current.Config.Server, next.Config.Server
	if !slices.Equal(cfg.Listen, cur.Listen) || cfg.AdminListen != cur.AdminListen || cfg.ContainerListen != cur.ContainerListen {
		rl.log.Warn().Msg("listen addresses changed: they apply at the next restart; tenants are reloaded now")
	}
	for _, w := range next.Config.Warnings {
		rl.log.Warn().Msg(w.Error())
	}
	rl.apply(next.Config)
	rl.current = next
	rl.log.Info().Str("reason", reason).Int("tenants", len(next.Config.Tenants)).Msg("configuration reloaded")
}
