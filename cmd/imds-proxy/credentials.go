package main

import (
	"context"
	"errors"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/cache"
	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/internal/mocksource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// credentialCache is the handlers.CredentialStore of production: the
// credential store of package cache, whose sources are the profiles load
// reads, seen through the handlers' types.
type credentialCache struct {
	store *cache.Store[*handlers.CredentialDocuments]
}

func newCredentialCache(ctx context.Context, load awssource.ProfileLoader, mfa *awssource.MFASessions, log zerolog.Logger, metrics *handlers.Metrics, opts cache.Options) *credentialCache {
	opts.OnFetch = func(ev cache.Event) {
		metrics.ObserveUpstream("credentials", ev.Took, errorCode(ev.Err))
	}
	source := func(spec tenants.CredentialSpec) tenants.CredentialSource {
		if spec.Mock {
			return &mocksource.Credentials{Spec: spec}
		}
		return &awssource.ProfileCredentials{Spec: spec, Load: load, Log: log, MFA: mfa}
	}
	return &credentialCache{store: cache.NewCredentials(ctx, opts, log, source, handlers.RenderCredentials)}
}

// Load makes cfg's tenants the ones served: new specs start fetching at
// once, unchanged ones keep their credentials, unused ones stop.
func (cc *credentialCache) Load(cfg *tenants.Config) { cc.store.Load(cfg.Tenants) }

// Credentials implements handlers.CredentialStore. A request still in
// flight on a previous configuration gets the entry its tenant's name has
// now.
func (cc *credentialCache) Credentials(ctx context.Context, t *tenants.Tenant) (*handlers.CredentialDocuments, error) {
	e := cc.store.Entry(t.Name)
	if e == nil {
		return nil, &tenants.UpstreamError{Code: "NoRole", Message: "this tenant has no credentials configured"}
	}
	return e.Get(ctx)
}

// State describes a tenant's credentials without their secrets; nil when
// the tenant has no role.
func (cc *credentialCache) State(t *tenants.Tenant) *handlers.CredentialState {
	e := cc.store.Entry(t.Name)
	if e == nil {
		return nil
	}
	st := e.Status()
	cs := &handlers.CredentialState{Valid: st.Valid, Refreshed: st.Refreshed, Fetches: st.Fetches, Failures: st.Failures,
		LastError: summary(st.LastError)}
	if c, ok := e.Peek(); ok {
		cs.Expiration, cs.KeyID = c.Expiration, c.KeyID
	}
	return cs
}

// errorCode is the Code of an upstream failure, "" for success.
func errorCode(err error) string {
	if err == nil {
		return ""
	}
	var ue *tenants.UpstreamError
	if errors.As(err, &ue) {
		return ue.Code
	}
	return "Unknown"
}

// summary is what /status and /readyz show of a failure: its code and what
// to do, never its cause.
func summary(err error) string {
	var ue *tenants.UpstreamError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ue):
		return ue.Summary()
	}
	return tenants.Redact(err.Error()) // not from awssource: redact here
}

// mfaDesk is the handlers.MFAAcceptor of production: it starts a
// profile's MFA session and has the credentials of every tenant that
// depends on it fetched at once, rather than after their backoff.
type mfaDesk struct {
	sessions *awssource.MFASessions
	creds    *credentialCache
	// mfaProfile names the profile with the mfa_serial a profile depends
	// on, "" for none (awssource.MFAProfile).
	mfaProfile func(ctx context.Context, profile string) string
}

func (d *mfaDesk) AcceptMFA(ctx context.Context, profile, code string) (handlers.MFAAccepted, error) {
	started, err := d.sessions.Start(ctx, profile, code)
	if err != nil {
		return handlers.MFAAccepted{}, err
	}
	roots := map[string]string{} // by tenant profile: each profile's files read once
	refreshing := d.creds.store.Refresh(func(t *tenants.Tenant) bool {
		p := t.Credentials.Profile
		root, ok := roots[p]
		if !ok {
			root = d.mfaProfile(ctx, p)
			roots[p] = root
		}
		return root == started.Profile
	})
	return handlers.MFAAccepted{Profile: started.Profile, Serial: started.Serial, Expiration: started.Expiration,
		Tenants: refreshing}, nil
}
