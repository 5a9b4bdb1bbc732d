package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// NewCredentials returns the store of tenants' role credentials: one entry
// per distinct credential spec (tenants.CredentialSpec.Key), shared by the
// tenants that have it, each refreshed its spec's RefreshBefore ahead of
// expiry from a source made by source, and kept rendered by render
// (handlers.RenderCredentials in production) so that requests serve bytes.
// Tenants without a role have no entry. Every fetch is logged to log.
func NewCredentials[V any](ctx context.Context, opts Options, log zerolog.Logger,
	source func(tenants.CredentialSpec) tenants.CredentialSource, render func(tenants.Credentials) V) *Store[V] {
	opts = opts.withDefaults()
	onFetch := opts.OnFetch
	opts.OnFetch = func(ev Event) {
		logCredentials(log, ev)
		if onFetch != nil {
			onFetch(ev)
		}
	}
	clock := opts.Clock
	return NewStore(ctx, opts, func(t *tenants.Tenant) (Plan[V], bool) {
		if t.Role == nil {
			return Plan[V]{}, false
		}
		spec := t.Credentials
		src := source(spec)
		return Plan[V]{Key: spec.Key(), Policy: Policy{RefreshBefore: spec.RefreshBefore},
			Fetch: func(ctx context.Context) (V, time.Time, error) {
				var zero V
				c, err := src.Retrieve(ctx)
				if err == nil {
					err = checkLifetime(spec, c.Expiration, clock.Now())
				}
				if err != nil {
					return zero, time.Time{}, err
				}
				return render(c), c.Expiration, nil
			}}, true
	})
}

// minLifetime is how long fetched credentials must still be valid to be
// served: a quarter of how far ahead the operator wants them renewed, but
// at least a minute, below which SDKs already count credentials as expired
// and a request signed with them may arrive after they are, and at most
// five minutes, which is as close to expiry as real IMDS serves
// credentials (and leaves room for STS capping a chained role at one hour
// whatever refresh_before says).
func minLifetime(refreshBefore time.Duration) time.Duration {
	return min(max(refreshBefore/4, time.Minute), 5*time.Minute)
}

// checkLifetime fails credentials that arrive expired or about to be: a
// clock far off, or a credential_process handing out a stale cache. As a
// failure they are retried with backoff while the last valid credentials
// keep being served; as a success, they would be fetched again on every
// request.
func checkLifetime(spec tenants.CredentialSpec, expiry, now time.Time) error {
	need := minLifetime(spec.RefreshBefore)
	left := expiry.Sub(now)
	if left >= need {
		return nil
	}
	what := fmt.Sprintf("credentials from profile %q", cmp.Or(spec.Profile, "default"))
	if spec.RoleARN != "" {
		what = fmt.Sprintf("credentials for %s from profile %q", spec.RoleARN, cmp.Or(spec.Profile, "default"))
	}
	at := expiry.UTC().Format(time.RFC3339)
	var msg string
	switch {
	case expiry.IsZero():
		msg = what + " came without an expiry time: check what the profile returns (its credential_process)"
	case left <= 0:
		msg = fmt.Sprintf("%s expire at %s, which is in the past: check the clock of this host (it is %s) and what the profile returns (a credential_process's cache)",
			what, at, now.UTC().Format(time.RFC3339))
	default:
		msg = fmt.Sprintf("%s expire at %s, in %s: too soon to serve them (at least %s is needed): check the clock of this host and what the profile returns (a credential_process's cache)",
			what, at, left.Round(time.Second), need)
	}
	return &tenants.UpstreamError{Code: "ExpiredCredentials", Message: msg}
}

// logCredentials reports each refresh: successes at info, failures as
// warnings with what to do. Never a secret: errors from the sources carry
// none, and credentials are not logged at all.
func logCredentials(log zerolog.Logger, ev Event) {
	if ev.Err == nil {
		log.Info().Str("spec", ev.Key).Strs("tenants", ev.Tenants).Time("expires", ev.Expiry).
			Time("next_refresh", ev.Next).Dur("took_ms", ev.Took).Msg("credentials refreshed")
		return
	}
	e := log.Warn().Str("spec", ev.Key).Strs("tenants", ev.Tenants).Int("failures", ev.Failure).Time("retry_at", ev.Next)
	if !ev.Expiry.IsZero() {
		e = e.Time("serving_until", ev.Expiry)
	}
	logFailure(e, ev.Err, "credential refresh failed")
}

// logFailure finishes a failure's log line: an upstream error's code, its
// redacted cause and what to do as the message; any other error redacted
// under msg.
func logFailure(e *zerolog.Event, err error, msg string) {
	var ue *tenants.UpstreamError
	if errors.As(err, &ue) {
		e = e.Str("code", ue.Code)
		if ue.Err != nil {
			e = e.Str("cause", ue.Cause())
		}
		e.Msg(ue.Message)
		return
	}
	e.Str("error", tenants.Redact(err.Error())).Msg(msg)
}
