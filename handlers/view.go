package handlers

import (
	"sync"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// lazyCatalogue renders a tenant's catalogue on its first request, not when
// the configuration is loaded: a host of 10,000 tenants, most of them idle
// at any moment, would otherwise hold every one rendered (a few KB a
// tenant) and pay for all of them at every start and reload. A tenant's
// first request pays a few tens of microseconds once; every later one is
// served from the bytes rendered then.
type lazyCatalogue struct {
	signer *Signer
	shapes *layouts
	once   sync.Once
	cat    *catalogue
}

func newView(t *tenants.Tenant, signer *Signer, shapes *layouts) *view {
	return &view{tenant: t, lazy: lazyCatalogue{signer: signer, shapes: shapes}}
}

// catalogue is the view's rendered catalogue, rendered now if this is its
// first use.
func (v *view) catalogue() *catalogue {
	v.lazy.once.Do(func() { v.lazy.cat = buildCatalogue(v.tenant, v.lazy.signer, v.lazy.shapes) })
	return v.lazy.cat
}
