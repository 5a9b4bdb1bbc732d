package tenants

import (
	"cmp"
	"fmt"
	"strings"
	"time"
)

// Mirror refresh bounds. DescribeInstances is throttled per account, so
// refreshes well under a minute are for local fakes and tests; the floor
// only keeps a typo ("1ms") from hammering the API.
const (
	DefaultMirrorRefresh = 10 * time.Minute
	MinMirrorRefresh     = time.Second
)

// MirrorSpec is a validated instance.mirror: which live instance a tenant
// copies, and how its configuration changes each copy.
type MirrorSpec struct {
	InstanceID string   // exactly one of InstanceID and Filters is set
	Filters    []Filter // must match exactly one instance
	Region     string   // "": the profile's region (AWS_REGION, its region key), else us-east-1
	Profile    string   // AWS profile for ec2:Describe*; "": the SDK's default chain
	Refresh    time.Duration

	// Static and IMDS are the tenant's own explicit values (defaults: are
	// not applied to a mirror: the mirror says what they would), laid over
	// every copy field by field.
	Static Static
	IMDS   IMDSConfig
	// OwnUserData is set when the tenant has user data of its own, which
	// replaces the instance's: the mirror then does not fetch it.
	OwnUserData bool
}

// Filter is one DescribeInstances filter: Name=Value[,Value...].
type Filter struct {
	Name   string
	Values []string
}

func (f Filter) String() string { return f.Name + "=" + strings.Join(f.Values, ",") }

// ParseFilter reads a filter in the form "Name=Value[,Value2...]", such as
// "tag:Name=web-1" or "instance-state-name=running,stopped".
func ParseFilter(s string) (Filter, error) {
	name, values, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.TrimSpace(values) == "" {
		return Filter{}, fmt.Errorf("%q is not a filter such as tag:Name=web-1 or instance-state-name=running (Name=Value[,Value2])", s)
	}
	f := Filter{Name: name}
	for _, v := range strings.Split(values, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			return Filter{}, fmt.Errorf("%q has an empty value; separate values with single commas", s)
		}
		f.Values = append(f.Values, v)
	}
	return f, nil
}

// Key identifies what the spec mirrors and how often, for the cache.
func (m *MirrorSpec) Key() string {
	fs := make([]string, len(m.Filters))
	for i, f := range m.Filters {
		fs[i] = f.String()
	}
	key := fmt.Sprintf("mirror instance=%q filters=%q region=%q profile=%q refresh=%s", m.InstanceID, fs, m.Region, m.Profile, m.Refresh)
	if m.OwnUserData {
		key += " user-data=own"
	}
	return key
}

// Target names the mirrored instance for messages: its id or its filters.
func (m *MirrorSpec) Target() string {
	if m.InstanceID != "" {
		return m.InstanceID
	}
	fs := make([]string, len(m.Filters))
	for i, f := range m.Filters {
		fs[i] = f.String()
	}
	return "the instance matching " + strings.Join(fs, " ")
}

// buildMirror validates instance.mirror; region is the tenant's (own or
// inherited), the mirror's default, and profile the credentials'.
func buildMirror(c MirrorConfig, region, ownRegion, profile string, path []any, el errorList) *MirrorSpec {
	m := &MirrorSpec{InstanceID: c.InstanceID, Region: cmp.Or(c.Region, region), Profile: cmp.Or(c.Profile, profile),
		Refresh: time.Duration(c.Refresh)}
	switch {
	case c.InstanceID == "" && len(c.Filters) == 0:
		el.add(path, "name the instance to mirror: set instance_id or filters")
	case c.InstanceID != "" && len(c.Filters) > 0:
		el.add(at(path, "filters"), "set instance_id or filters, not both")
	}
	check(el, at(path, "instance_id"), c.InstanceID, instanceIDPattern, "an instance id (i- and 8 or 17 hex digits)")
	for i, s := range c.Filters {
		f, err := ParseFilter(s)
		if err != nil {
			el.add(at(path, "filters", i), "%v", err)
			continue
		}
		m.Filters = append(m.Filters, f)
	}
	if c.Region != "" && !regionPattern.MatchString(c.Region) {
		el.add(at(path, "region"), "%q is not a region such as eu-west-1", c.Region)
	}
	if c.Region != "" && ownRegion != "" && c.Region != ownRegion {
		el.add(at(path, "region"), "%s differs from the tenant's region %s: a mirrored tenant is where its instance is; remove the tenant's region", c.Region, ownRegion)
	}
	if strings.ContainsAny(c.Profile, " \t\r\n") {
		el.add(at(path, "profile"), "%q is not a profile name", c.Profile)
	}
	switch {
	case m.Refresh == 0:
		m.Refresh = DefaultMirrorRefresh
	case m.Refresh < MinMirrorRefresh:
		el.add(at(path, "refresh"), "%s: at least %s (DescribeInstances is throttled; minutes are usual)", m.Refresh, MinMirrorRefresh)
	}
	return m
}

// unmirrored is a mirrored tenant's instance before its first copy: only
// what the configuration states, so that everything else answers 404
// rather than a value the copy may contradict.
func (m *MirrorSpec) unmirrored() Instance {
	in := Instance{Region: m.Region}
	m.Static.Apply(&in)
	return in
}

// WithMirror is the tenant as served from one copy of its live instance:
// the copy, with the tenant's static values and IMDS options laid over it,
// the instance profile's ARN and id copied into its role, the instance's
// user data unless the tenant has its own, the instance's scheduled events
// (besides the tenant's own Events), and everything else (name,
// sources, credentials) the tenant's own.
func (t *Tenant) WithMirror(m *Mirrored) *Tenant {
	out := *t
	out.Instance = m.Instance
	out.IMDS = m.IMDS
	x := t.Extras.clone()
	x.InstanceEvents = m.Events
	if x.UserData == nil { // a mirrored tenant's is its own: defaults do not reach it
		x.UserData = m.UserData
	}
	out.Extras = x.orNil()
	if t.Mirror != nil {
		t.Mirror.Static.Apply(&out.Instance)
		out.IMDS.apply(t.Mirror.IMDS)
	}
	if t.Role != nil && m.InstanceProfileARN != "" {
		r := *t.Role
		r.InstanceProfileARN, r.InstanceProfileID, r.Mirrored = m.InstanceProfileARN, m.InstanceProfileID, true
		out.Role = &r
	}
	return &out
}

// Mirrored is one copy of a live instance: everything DescribeInstances and
// the calls it needs say about it, as the catalogue holds it.
type Mirrored struct {
	Instance           Instance
	IMDS               IMDSOptions // from the instance's MetadataOptions
	InstanceProfileARN string
	InstanceProfileID  string
	State              string // running, stopped, ...
	// UserData is the instance's user data, decoded; nil when it has none
	// (or it could not be fetched: see Warnings).
	UserData []byte
	// Events are the instance's scheduled events, active and recent past
	// ones, as ec2:DescribeInstanceStatus reports them, in NotBefore order.
	Events []InstanceEvent
	// Warnings name the values left unknown (404) and why, such as a
	// missing ec2:DescribeSubnets permission.
	Warnings []string
}
