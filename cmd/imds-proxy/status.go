package main

import (
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
