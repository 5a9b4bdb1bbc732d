package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/cache"
	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// sdkRegion is where STS is called when neither the profile nor the
// environment names a region.
const sdkRegion = "us-east-1"

// sdkOptions are the aws-sdk-go-v2/config options for a profile. The
// "default" profile is loaded without naming it, so the SDK's standard
// chain (environment credentials first) applies, as for the AWS CLI.
func sdkOptions(profile string) []func(*config.LoadOptions) error {
	opts := []func(*config.LoadOptions) error{
		config.WithDefaultRegion(sdkRegion),
		// Never fall back to instance metadata: on this host, that may be
		// imds-proxy itself.
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
	}
	if profile != "" && profile != "default" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	return opts
}

// loadProfile is the tenants.ProfileLoader of production: everything about
// a profile — static keys, source_profile chains, credential_process, SSO
// sessions, endpoint settings — is the SDK's business, read afresh each
// time so that edits and new SSO logins apply without a restart.
func loadProfile(ctx context.Context, profile string) (*tenants.Profile, error) {
	cfg, err := config.LoadDefaultConfig(ctx, sdkOptions(profile)...)
	if err != nil {
		return nil, fmt.Errorf("load profile %q: %w", profile, err)
	}
	p := &tenants.Profile{Name: profile, Credentials: cfg.Credentials, STS: sts.NewFromConfig(cfg)}
	if sc, err := sharedConfigProfile(ctx, profile); err == nil {
		p.SSOSession = sc.SSOSessionName
		p.SSO = sc.SSOSessionName != "" || sc.SSOStartURL != "" || sc.SSORoleName != ""
	}
	return p, nil
}

// sharedConfigProfile reads a profile from the files LoadDefaultConfig
// reads: config.LoadSharedConfigProfile on its own ignores AWS_CONFIG_FILE
// and AWS_SHARED_CREDENTIALS_FILE, which would leave an SSO profile
// unrecognised (no `aws sso login` advice) and roles unnamed.
func sharedConfigProfile(ctx context.Context, profile string) (config.SharedConfig, error) {
	env, err := config.NewEnvConfig()
	if err != nil {
		return config.SharedConfig{}, err
	}
	return config.LoadSharedConfigProfile(ctx, profileName(profile), func(o *config.LoadSharedConfigOptions) {
		if env.SharedConfigFile != "" {
			o.ConfigFiles = []string{env.SharedConfigFile}
		}
		if env.SharedCredentialsFile != "" {
			o.CredentialsFiles = []string{env.SharedCredentialsFile}
		}
	})
}

func profileName(p string) string {
	if p == "" {
		return "default"
	}
	return p
}

// nameRolesFromProfiles names the roles of tenants that gave neither
// role_name nor role_arn after the role their profile itself uses (its
// role_arn, or its SSO permission set), as an instance profile would be
// named after its role.
func nameRolesFromProfiles(ctx context.Context, cfg *tenants.Config) {
	for _, t := range cfg.Tenants {
		if t.Role == nil || !t.Role.FromProfile {
			continue
		}
		sc, err := sharedConfigProfile(ctx, t.Credentials.Profile)
		if err != nil {
			continue
		}
		switch {
		case sc.RoleARN != "":
			if a, err := arn.Parse(sc.RoleARN); err == nil {
				t.Role.Rename(a.Resource[strings.LastIndexByte(a.Resource, '/')+1:])
			}
		case sc.SSORoleName != "":
			t.Role.Rename(sc.SSORoleName)
		}
	}
}

// credentialCache is the handlers.CredentialSource of production: one
// refresh-ahead cache entry per distinct credential spec, reached from a
// tenant through a map swapped whole on reload.
type credentialCache struct {
	cache   *cache.Cache[*handlers.Credentials]
	load    tenants.ProfileLoader
	now     func() time.Time
	entries atomic.Pointer[map[*tenants.Tenant]*cache.Entry[*handlers.Credentials]]
	current []*tenants.Tenant // of the last Load; Load is not called concurrently
}

func newCredentialCache(ctx context.Context, load tenants.ProfileLoader, log zerolog.Logger, metrics *handlers.Metrics, opts cache.Options) *credentialCache {
	opts.OnFetch = func(ev cache.Event) {
		logFetch(log, ev)
		metrics.ObserveUpstream("credentials", ev.Took, errorCode(ev.Err))
	}
	cc := &credentialCache{load: load, now: time.Now}
	cc.cache = cache.New[*handlers.Credentials](ctx, opts)
	empty := map[*tenants.Tenant]*cache.Entry[*handlers.Credentials]{}
	cc.entries.Store(&empty)
	return cc
}

// errorCode is the Code of a credential failure, "" for success.
func errorCode(err error) string {
	if err == nil {
		return ""
	}
	var ce *tenants.CredentialError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return "Unknown"
}

// logFetch reports each refresh: successes at info, failures as warnings
// with what to do. Never a secret: errors from the SDK carry none, and
// credentials print masked.
func logFetch(log zerolog.Logger, ev cache.Event) {
	if ev.Err == nil {
		log.Info().Str("spec", ev.Key).Time("expires", ev.Expiry).Time("next_refresh", ev.Next).
			Dur("took", ev.Took).Msg("credentials refreshed")
		return
	}
	e := log.Warn().Str("spec", ev.Key).Int("failures", ev.Failure).Time("retry_at", ev.Next)
	if !ev.Expiry.IsZero() {
		e = e.Time("serving_until", ev.Expiry)
	}
	var ce *tenants.CredentialError
	if errors.As(ev.Err, &ce) {
		e = e.Str("code", ce.Code)
		if ce.Err != nil {
			e = e.Str("cause", ce.Cause())
		}
		e.Msg(ce.Message)
		return
	}
	e.Str("error", tenants.Redact(ev.Err.Error())).Msg("credential refresh failed")
}

// Load makes the tenants' entries current: new specs start fetching at
// once (the prefetch, which does not hold up the listeners), unchanged ones
// keep their credentials, unused ones stop. The previous configuration's
// tenants stay mapped until the next Load, so requests still in flight on
// the old configuration during a reload are answered, not refused.
func (cc *credentialCache) Load(cfg *tenants.Config) {
	entries := make(map[*tenants.Tenant]*cache.Entry[*handlers.Credentials], len(cfg.Tenants))
	keep := map[string]bool{}
	for _, t := range cfg.Tenants {
		if t.Role == nil {
			continue
		}
		key := t.Credentials.Key()
		src := &tenants.CredentialSource{Spec: t.Credentials, Load: cc.load, Now: cc.now}
		entries[t] = cc.cache.Entry(key, t.Credentials.RefreshBefore, func(ctx context.Context) (*handlers.Credentials, time.Time, error) {
			c, err := src.Retrieve(ctx)
			if err != nil {
				return nil, time.Time{}, err
			}
			return handlers.RenderCredentials(c), c.Expiration, nil
		})
		keep[key] = true
	}
	for _, t := range cc.current {
		keep[t.Credentials.Key()] = true
	}
	mapped := make(map[*tenants.Tenant]*cache.Entry[*handlers.Credentials], len(entries)+len(cc.current))
	for _, t := range cc.current {
		if e := (*cc.entries.Load())[t]; e != nil {
			mapped[t] = e
		}
	}
	for t, e := range entries {
		mapped[t] = e
	}
	cc.entries.Store(&mapped)
	cc.cache.Retain(keep)
	cc.current = cfg.Tenants
}

// Credentials implements handlers.CredentialSource.
func (cc *credentialCache) Credentials(ctx context.Context, t *tenants.Tenant) (*handlers.Credentials, error) {
	e := (*cc.entries.Load())[t]
	if e == nil {
		return nil, &tenants.CredentialError{Code: "NoRole", Message: "this tenant has no credentials configured"}
	}
	return e.Get(ctx)
}
