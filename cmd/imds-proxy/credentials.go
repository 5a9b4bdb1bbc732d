package main

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/cache"
	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// credentialCache is the handlers.CredentialSource of production: one
// refresh-ahead cache entry per distinct credential spec, reached from a
// tenant through a map swapped whole on reload.
type credentialCache struct {
	cache   *cache.Cache[*handlers.CredentialDocuments]
	load    awssource.ProfileLoader
	log     zerolog.Logger
	now     func() time.Time
	entries atomic.Pointer[map[*tenants.Tenant]*cache.Entry[*handlers.CredentialDocuments]]
	current []*tenants.Tenant // of the last Load; Load is not called concurrently
}

func newCredentialCache(ctx context.Context, load awssource.ProfileLoader, log zerolog.Logger, metrics *handlers.Metrics, opts cache.Options) *credentialCache {
	opts.OnFetch = func(ev cache.Event) {
		logFetch(log, ev)
		metrics.ObserveUpstream("credentials", ev.Took, errorCode(ev.Err))
	}
	cc := &credentialCache{load: load, log: log, now: time.Now}
	cc.cache = cache.New[*handlers.CredentialDocuments](ctx, opts)
	empty := map[*tenants.Tenant]*cache.Entry[*handlers.CredentialDocuments]{}
	cc.entries.Store(&empty)
	return cc
}

// errorCode is the Code of a credential failure, "" for success.
func errorCode(err error) string {
	if err == nil {
		return ""
	}
	var ce *tenants.UpstreamError
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
	var ce *tenants.UpstreamError
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
	entries := make(map[*tenants.Tenant]*cache.Entry[*handlers.CredentialDocuments], len(cfg.Tenants))
	keep := map[string]bool{}
	for _, t := range cfg.Tenants {
		if t.Role == nil {
			continue
		}
		key := t.Credentials.Key()
		src := &awssource.ProfileCredentials{Spec: t.Credentials, Load: cc.load, Now: cc.now, Log: cc.log}
		entries[t] = cc.cache.Entry(key, t.Credentials.RefreshBefore, func(ctx context.Context) (*handlers.CredentialDocuments, time.Time, error) {
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
	mapped := make(map[*tenants.Tenant]*cache.Entry[*handlers.CredentialDocuments], len(entries)+len(cc.current))
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
func (cc *credentialCache) Credentials(ctx context.Context, t *tenants.Tenant) (*handlers.CredentialDocuments, error) {
	e := (*cc.entries.Load())[t]
	if e == nil {
		return nil, &tenants.UpstreamError{Code: "NoRole", Message: "this tenant has no credentials configured"}
	}
	return e.Get(ctx)
}
