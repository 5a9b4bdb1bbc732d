package main

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/cache"
	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// mirrors are the mirrors of package cache, copying through the EC2 API
// load returns, seen through the handlers' types.
type mirrors struct {
	*cache.Mirrors
}

func newMirrors(ctx context.Context, load awssource.EC2Loader, log zerolog.Logger, opts cache.Options) *mirrors {
	source := func(spec *tenants.MirrorSpec) tenants.InstanceSource {
		return &awssource.Mirror{Spec: spec, Load: load}
	}
	return &mirrors{cache.NewMirrors(ctx, opts, log, source)}
}

// Load makes cfg's mirrored tenants current; call it after the server's
// Load, with the server's Publish.
func (m *mirrors) Load(cfg *tenants.Config, publish func(name string, t *tenants.Tenant) bool) {
	m.Mirrors.Load(cfg.Tenants, publish)
}

// State is a mirrored tenant's mirror for /readyz and /status: mirrored
// (at least once), the instance, the last successful refresh and the
// latest error (what to do about it). nil when the tenant mirrors nothing.
func (m *mirrors) State(t *tenants.Tenant) *handlers.MirrorState {
	e := m.Entry(t.Name)
	if e == nil || t.Mirror == nil {
		return nil
	}
	st := e.Status()
	ms := &handlers.MirrorState{Mirrored: st.Valid, Refreshed: st.Refreshed, Instance: t.Mirror.Target(),
		LastError: summary(st.LastError)}
	if c, ok := e.Peek(); ok {
		ms.Instance = c.Instance.ID
	}
	return ms
}
