package handlers

import "github.com/imds-proxy/imds-proxy/tenants"

// Tokens returns the token store of a tenant; tests look into it.
func (s *Server) Tokens(tenant string) *TokenStore {
	if si := s.state.Load().site(tenant); si != nil {
		return s.tokens(si)
	}
	return nil
}

// SetServiceAccounts gives the configuration now loaded a table of service
// accounts, "NAMESPACE/NAME" → tenant name, until tenants.Config carries
// one ({service_account: NS/NAME} sources).
func (s *Server) SetServiceAccounts(m map[string]string) {
	st := *s.state.Load()
	st.accounts = accountTable{st: &st, names: m}
	s.state.Store(&st)
}

type accountTable struct {
	st    *state
	names map[string]string
}

func (a accountTable) ServiceAccountTenant(ns, name string) *tenants.Tenant {
	if si := a.st.site(a.names[ns+"/"+name]); si != nil {
		return si.tenant
	}
	return nil
}
