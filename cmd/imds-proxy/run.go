package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run is the whole program: main only wires the process to it, so tests
// drive exactly what users run.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return runCheck(args[1:], getenv, stdout, stderr)
		case "setup":
			return runSetup(args[1:], stdout, stderr)
		case "status":
			return runStatus(ctx, args[1:], getenv, stdout, stderr)
		case "explain":
			return runExplain(args[1:], stdout, stderr)
		case "version":
			fmt.Fprintln(stdout, versionString())
			return nil
		}
	}
	o, err := parseFlags("imds-proxy", args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintln(stdout, versionString())
		return nil
	}
	cfg, err := loadConfig(o, time.Now())
	if err != nil {
		return err
	}
	return serve(ctx, o, cfg, stderr)
}

// loadConfig reads --config or, without one, builds the seed's one tenant.
func loadConfig(o *options, now time.Time) (*tenants.Config, error) {
	if o.config == "" {
		f, err := o.seedFile()
		if err != nil {
			return nil, err
		}
		cfg, errs := tenants.Build(f, ".", now)
		if errs != nil {
			return nil, flagErrors(errs)
		}
		awssource.NameRoles(context.Background(), cfg)
		return cfg, nil
	}
	if len(o.seedSet) > 0 {
		return nil, fmt.Errorf("%v describe the single tenant of seed mode and cannot be combined with --config: set them in the file", o.seedSet)
	}
	data, err := os.ReadFile(o.config)
	if err != nil {
		return nil, err
	}
	o.configDigest = sha256.Sum256(data) // what runs: the reloader compares against it
	cfg, err := tenants.Parse(o.config, data, now)
	if err != nil {
		return nil, err
	}
	if err := applyFlagOverrides(o, cfg); err != nil {
		return nil, err
	}
	awssource.NameRoles(context.Background(), cfg)
	return cfg, nil
}

// applyFlagOverrides lets listen flags replace the file's server: block, at
// start and at every reload alike.
func applyFlagOverrides(o *options, cfg *tenants.Config) error {
	if len(o.listen) > 0 {
		cfg.Server.Listen = o.listen
	}
	for _, l := range cfg.Server.Listen {
		if _, err := tenants.ParseListen(l); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
	}
	if o.adminListen != "" {
		cfg.Server.AdminListen = o.adminListen
	}
	if o.containerListen != "" {
		if _, err := tenants.ParseListen(o.containerListen); err != nil {
			return fmt.Errorf("--container-listen: %w", err)
		}
		cfg.Server.ContainerListen = o.containerListen
	}
	return nil
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return "imds-proxy " + v
}

// programName is how usage lines call the binary.
func programName() string { return filepath.Base(os.Args[0]) }
