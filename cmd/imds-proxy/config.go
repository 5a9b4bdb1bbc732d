package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"time"

	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/internal/liveconfig"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// loadConfig is the one configuration pipeline: read the file (or, without
// --config, the seed's flags), decode, validate and derive every tenant
// (tenants.Parse, tenants.Build), name roles after the profiles that
// vend them, then lay the listen flags over the server: block. The server
// at start and at every reload, check and explain all use it, so they can
// never disagree about what a configuration means.
func loadConfig(ctx context.Context, o *options) (liveconfig.Loaded, error) {
	var l liveconfig.Loaded
	now := time.Now()
	if o.config == "" {
		f, err := o.seedFile()
		if err != nil {
			return l, usageError{err}
		}
		cfg, errs := tenants.Build(f, ".", now)
		if errs != nil {
			// The values are the command line's: a bad argument.
			return l, usageError{flagErrors(errs)}
		}
		l.Config = cfg
	} else {
		if len(o.seedSet) > 0 {
			return l, usagef("%v describe the single tenant of seed mode and cannot be combined with --config: set them in the file", o.seedSet)
		}
		data, err := os.ReadFile(o.config)
		if err != nil {
			return l, configError{err}
		}
		l.Digest = sha256.Sum256(data)
		if l.Config, err = tenants.Parse(o.config, data, now); err != nil {
			return l, configError{err}
		}
	}
	if err := applyFlagOverrides(o, l.Config); err != nil {
		return l, usageError{err}
	}
	awssource.NameRoles(ctx, l.Config)
	return l, nil
}

// applyFlagOverrides lays the listen flags over the server: block, each
// checked as the file's own value would be.
func applyFlagOverrides(o *options, cfg *tenants.Config) error {
	if len(o.listen) > 0 {
		for _, l := range o.listen {
			if _, err := tenants.ParseListen(l); err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
		}
		cfg.Server.Listen = o.listen
	}
	if o.adminListen != "" {
		if _, err := tenants.ParseListen(o.adminListen); err != nil && o.adminListen != "off" {
			return fmt.Errorf("--admin-listen: %w (or \"off\")", err)
		}
		cfg.Server.AdminListen = o.adminListen
	}
	if o.containerListen != "" {
		if _, err := tenants.ParseListen(o.containerListen); err != nil {
			return fmt.Errorf("--container-listen: %w", err)
		}
		cfg.Server.ContainerListen = o.containerListen
	}
	if o.ecsListen != "" {
		if _, err := tenants.ParseListen(o.ecsListen); err != nil {
			return fmt.Errorf("--ecs-listen: %w", err)
		}
		cfg.Server.ECSListen = o.ecsListen
	}
	if len(o.podIdentity) > 0 {
		for _, l := range o.podIdentity {
			if _, err := tenants.ParseListen(l); err != nil {
				return fmt.Errorf("--pod-identity-listen: %w", err)
			}
		}
		cfg.Server.PodIdentityListen = o.podIdentity
	}
	return nil
}

// ignoredAWSEnvironment describes the AWS variables of the environment that
// a configuration file makes the proxy ignore: each tenant gets exactly the
// profile it names (awssource.Profiles), so the variables by which the AWS
// CLI would choose a profile or keys choose nothing. Said by check and
// logged at start, since an operator used to the CLI expects them to work.
func ignoredAWSEnvironment(getenv func(string) string) []string {
	var out []string
	for _, v := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE"} {
		if p := getenv(v); p != "" {
			out = append(out, fmt.Sprintf("%s=%s is ignored with --config: each tenant gets exactly the profile it names "+
				"(credentials.profile; none names the profile default)", v, p))
		}
	}
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"} {
		if k := getenv(v); k != "" {
			out = append(out, fmt.Sprintf("%s (%s) is ignored with --config: each tenant's credentials come from the profile it names; "+
				"to serve these keys, put them in a profile of ~/.aws/credentials and name it", v, tenants.MaskKeyID(k)))
		}
	}
	return out
}

// configWarnings says a configuration's warnings: located in the file, or,
// in seed mode (no file), by the flag that set the value.
func configWarnings(cfg *tenants.Config) []string {
	if len(cfg.Warnings) > 0 && cfg.Warnings[0].File == "" {
		return flagMessages(cfg.Warnings)
	}
	out := make([]string, len(cfg.Warnings))
	for i, w := range cfg.Warnings {
		out[i] = w.Error()
	}
	return out
}
