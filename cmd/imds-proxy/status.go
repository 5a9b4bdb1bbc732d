package main

import (
	"errors"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// tenantStates is the handlers.StatusSource of production: credentials from
// the credential cache, mirrors from the mirror refresher (if any).
type tenantStates struct {
	creds  *credentialCache
	mirror func(t *tenants.Tenant) *handlers.MirrorState // nil: no mirrors
}

func (s tenantStates) TenantState(t *tenants.Tenant) handlers.TenantState {
	st := handlers.TenantState{Credentials: s.creds.State(t)}
	if s.mirror != nil {
		st.Mirror = s.mirror(t)
	}
	return st
}

// State describes a tenant's credentials without their secrets; nil when
// the tenant has no role.
func (cc *credentialCache) State(t *tenants.Tenant) *handlers.CredentialState {
	e := (*cc.entries.Load())[t]
	if e == nil {
		return nil
	}
	st := e.Status()
	cs := &handlers.CredentialState{Valid: st.Valid, Refreshed: st.Refreshed, Fetches: st.Fetches, Failures: st.Failures}
	if c, ok := e.Peek(); ok {
		cs.Expiration, cs.KeyID = c.Expiration, c.KeyID
	}
	if st.LastError != nil {
		var ce *tenants.UpstreamError
		if errors.As(st.LastError, &ce) {
			cs.LastError = ce.Code + ": " + ce.Message
		} else {
			cs.LastError = tenants.Redact(st.LastError.Error()) // not from awssource: redact here
		}
	}
	return cs
}
