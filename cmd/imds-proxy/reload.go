package main

import (
	"bytes"
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

	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// reloadDebounce lets an editor finish writing (truncate, write, rename)
// before the file is read: one reload per save.
const reloadDebounce = 150 * time.Millisecond

// reloader applies a changed configuration file to the running server:
// parse and validate it fully, then swap it in; an invalid file is logged
// with file:line and the running configuration stays.
type reloader struct {
	o       *options
	log     zerolog.Logger
	current *tenants.Config
	apply   func(*tenants.Config) // swaps the new configuration in
	digest  [32]byte
}

// run reloads on SIGHUP and whenever the file changes, until ctx ends.
func (rl *reloader) run(ctx context.Context) {
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
		if err := w.Add(filepath.Dir(rl.o.config)); err != nil {
			rl.log.Warn().Err(err).Msg("cannot watch the configuration's directory; reload with SIGHUP")
		}
		events, errs = w.Events, w.Errors
	}
	// The file may have changed between loading and watching: look once
	// now. An unchanged file (the same digest as loaded) is not reloaded.
	rl.digest = rl.o.configDigest
	rl.reload("file changed before the watch began", false)

	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			rl.reload("SIGHUP", true)
		case ev := <-events:
			if sameFile(ev.Name, rl.o.config) || filepath.Base(ev.Name) == "..data" {
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

// reload reads the file and, if it is valid and (unless forced) different
// from what runs, swaps it in.
func (rl *reloader) reload(reason string, force bool) {
	data, err := os.ReadFile(rl.o.config)
	if err != nil {
		rl.log.Error().Err(err).Str("reason", reason).Msg("configuration not reloaded; still serving the previous one")
		return
	}
	digest := sha256.Sum256(data)
	if !force && bytes.Equal(digest[:], rl.digest[:]) {
		return
	}
	cfg, err := tenants.Parse(rl.o.config, data, time.Now())
	if err == nil {
		err = applyFlagOverrides(rl.o, cfg)
	}
	if err != nil {
		rl.log.Error().Str("reason", reason).Str("errors", err.Error()).
			Msg("configuration rejected; still serving the previous one")
		return
	}
	rl.digest = digest
	// Once per file: every configuration applied from it (a container's
	// addresses added) copies the names.
	awssource.NameRoles(context.Background(), cfg)
	if !slices.Equal(cfg.Server.Listen, rl.current.Server.Listen) || cfg.Server.AdminListen != rl.current.Server.AdminListen ||
		cfg.Server.ContainerListen != rl.current.Server.ContainerListen {
		rl.log.Warn().Msg("listen addresses changed: they apply at the next restart; tenants are reloaded now")
	}
	rl.apply(cfg)
	rl.current = cfg
	rl.log.Info().Str("reason", reason).Int("tenants", len(cfg.Tenants)).Msg("configuration reloaded")
}
