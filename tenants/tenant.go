package tenants

import (
	"net/netip"
	"strings"
	"time"
)

// Tenant is one client of the proxy, served as its own EC2 instance.
type Tenant struct {
	Name    string
	Sources []netip.Prefix
	IMDS    IMDSOptions
	// Role is nil when the tenant has no instance profile (iam/ answers 404).
	Role *Role
	// Mirror is the live instance the tenant copies; nil for a tenant
	// derived from its name. A mirrored tenant as configured holds only its
	// static values: WithMirror makes what is served from each copy.
	Mirror *MirrorSpec
	// Limits bound each of the tenant's source addresses.
	Limits Limits
	// Credentials says where the role's credentials come from; meaningful
	// only when Role is not nil.
	Credentials CredentialSpec
	Instance    Instance
	// Extras holds what few tenants set; nil when the tenant sets none of
	// it. Read it through the methods of the same names, which read a nil
	// Extras as the zero value. It may be shared with copies of the
	// tenant (pods, roles, mirrored copies): replace it, never write
	// into it once the tenant is built.
	Extras *TenantExtras
}

// TenantExtras are a tenant's rarely set fields, apart so that the many
// tenants without them do not carry their room: at 10,000 tenants that
// room was a size class of every Tenant.
type TenantExtras struct {
	// Containers choose running Docker containers whose addresses are
	// served as the tenant too, while they run (Config.WithContainers).
	Containers []ContainerSelector
	// ServiceAccounts are the Kubernetes service accounts, as
	// "NAMESPACE/NAME", whose pods are served as the tenant while they run
	// (Config.WithPods), and whose Pod Identity tokens it answers
	// (Config.ServiceAccountTenant).
	ServiceAccounts []string
	// UserData is nil when the tenant has none (user-data answers 404), as
	// is an empty one; a mirrored tenant with nil serves its instance's
	// (WithMirror), with an empty one none.
	UserData []byte
	// ContainerToken authorises the tenant on the container credentials
	// endpoint; empty: the tenant is not served there.
	ContainerToken string
	// ContainerAnySource accepts ContainerToken from any address.
	ContainerAnySource bool
	// Paths hides parts of the catalogue.
	Paths PathPolicy
	// Events are announced their After past the proxy's start.
	Events []Event
	// InstanceEvents are a mirrored tenant's live instance's scheduled
	// events as its last copy reports them (WithMirror), served beside
	// Events; nil for a tenant that mirrors nothing.
	InstanceEvents []InstanceEvent
}

// orNil is x, or nil when x sets nothing. Nil and empty differ for
// UserData (see there), so emptiness here is nil-ness.
func (x *TenantExtras) orNil() *TenantExtras {
	if x == nil || x.Containers == nil && x.ServiceAccounts == nil && x.UserData == nil &&
		x.ContainerToken == "" && !x.ContainerAnySource && x.Paths.Allow == nil && x.Paths.Deny == nil &&
		x.Events == nil && x.InstanceEvents == nil {
		return nil
	}
	return x
}

// clone is a copy of x to change; the zero TenantExtras when x is nil.
func (x *TenantExtras) clone() *TenantExtras {
	c := new(TenantExtras)
	if x != nil {
		*c = *x
	}
	return c
}

// noTenantExtras is what a nil Extras reads as. Never written to.
var noTenantExtras TenantExtras

// extras is the Extras to read from: the zero TenantExtras when there are none.
func (t *Tenant) extras() *TenantExtras {
	if t.Extras == nil {
		return &noTenantExtras
	}
	return t.Extras
}

// Containers is Extras.Containers, nil without Extras.
func (t *Tenant) Containers() []ContainerSelector {
	return t.extras().Containers
}

// ServiceAccounts is Extras.ServiceAccounts, nil without Extras.
func (t *Tenant) ServiceAccounts() []string {
	return t.extras().ServiceAccounts
}

// UserData is Extras.UserData, nil without Extras.
func (t *Tenant) UserData() []byte {
	return t.extras().UserData
}

// ContainerToken is Extras.ContainerToken, empty without Extras.
func (t *Tenant) ContainerToken() string {
	return t.extras().ContainerToken
}

// ContainerAnySource is Extras.ContainerAnySource, false without Extras.
func (t *Tenant) ContainerAnySource() bool {
	return t.extras().ContainerAnySource
}

// Paths is Extras.Paths, which hides nothing without Extras.
func (t *Tenant) Paths() PathPolicy {
	return t.extras().Paths
}

// Events is Extras.Events, nil without Extras.
func (t *Tenant) Events() []Event {
	return t.extras().Events
}

// InstanceEvents is Extras.InstanceEvents, nil without Extras.
func (t *Tenant) InstanceEvents() []InstanceEvent {
	return t.extras().InstanceEvents
}

// IMDSOptions is the instance's metadata-service behaviour, as EC2's
// MetadataOptions describe it.
type IMDSOptions struct {
	HopLimit       int  // IP TTL of PUT token responses (HttpPutResponseHopLimit)
	Enabled        bool // false: every request answers 403 (HttpEndpoint=disabled)
	TokensRequired bool // true: IMDSv1 requests answer 401 (HttpTokens=required)
	Tags           bool // tags/instance/ is served (InstanceMetadataTags=enabled)
}

// apply lays the options a configuration sets explicitly over o.
func (o *IMDSOptions) apply(c IMDSConfig) {
	if c.Enabled != nil {
		o.Enabled = *c.Enabled
	}
	if c.Tags != nil {
		o.Tags = *c.Tags
	}
	switch c.Tokens {
	case "optional":
		o.TokensRequired = false
	case "required":
		o.TokensRequired = true
	}
	if c.HopLimit >= 1 && c.HopLimit <= 64 {
		o.HopLimit = c.HopLimit
	}
}

// Mode names the metadata service's mode as EC2 does: disabled, required
// (IMDSv2 only) or optional.
func (o IMDSOptions) Mode() string {
	switch {
	case !o.Enabled:
		return "disabled"
	case o.TokensRequired:
		return "required"
	}
	return "optional"
}

// Role is the instance profile a tenant's credentials are served under.
type Role struct {
	Name               string // the entry under iam/security-credentials/
	ARN                string // empty when the profile's own identity is vended
	InstanceProfileARN string
	InstanceProfileID  string
	// FromProfile is true when the name is only the profile's: the role the
	// profile itself uses (role_arn, sso_role_name) names it better.
	FromProfile bool
	// Mirrored is true when the instance profile is a live instance's:
	// its ARN names that instance's account, whatever the credentials'.
	Mirrored bool
}

// Rename gives the role another name, keeping the instance profile in step.
func (r *Role) Rename(name string) {
	if i := strings.LastIndexByte(r.InstanceProfileARN, '/'); i >= 0 {
		r.InstanceProfileARN = r.InstanceProfileARN[:i+1] + name
	}
	// The id is derived from the account and the name, as at build: a
	// renamed profile is another profile.
	if parts := strings.SplitN(r.InstanceProfileARN, ":", 6); len(parts) == 6 {
		r.InstanceProfileID = instanceProfileID(parts[4] + "/" + name)
	}
	r.Name, r.FromProfile = name, false
}

// InstanceProfileARNIn is the instance profile's ARN in the given account
// (the credentials' account, once known); "" keeps the configured one.
func (r *Role) InstanceProfileARNIn(account string) string {
	if account == "" || r.InstanceProfileARN == "" || r.Mirrored {
		return r.InstanceProfileARN
	}
	// arn:<partition>:iam::<account>:instance-profile/<name>
	parts := strings.SplitN(r.InstanceProfileARN, ":", 6)
	if len(parts) != 6 {
		return r.InstanceProfileARN
	}
	parts[4] = account
	return strings.Join(parts, ":")
}

// CredentialSpec is how a tenant's credentials are obtained. Tenants with
// equal specs share one cache entry and one upstream call.
type CredentialSpec struct {
	Profile        string
	RoleARN        string
	SessionName    string
	ExternalID     string
	SourceIdentity string
	Policy         string
	PolicyARNs     []string
	Tags           map[string]string
	Duration       time.Duration
	RefreshBefore  time.Duration
	// Mock: made-up credentials (internal/mocksource); Profile and
	// RoleARN then only name the role.
	Mock bool
}
