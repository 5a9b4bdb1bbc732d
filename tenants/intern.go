package tenants

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unique"
)

// interner gives the values that many tenants of one configuration hold
// alike (a region, a zone and its id, an account, an AMI, a subnet, a
// profile, the default block-device map, security groups) one backing
// string, slice or map for them all, not one each: each tenant derives or
// decodes its own copy, and at 10,000 tenants those copies were a large
// part of a derived instance. One interner serves one Build and is dropped
// with it.
//
// What it returns is shared between tenants, so it is never written to:
// Static.Apply and WithMirror replace a map or slice they change with a new
// one (merged, replaceFirst, slices.Clone), and interned slices have no
// spare capacity, so append copies them.
type interner struct {
	// canon, when set, gives a string its canonical copy beyond this
	// interner's own (unique.Make's, for copies of live instances that
	// arrive one at a time).
	canon    func(string) string
	strs     map[string]string
	lists    map[string][]string
	prefixes map[string][]netip.Prefix
	dicts    map[string]map[string]string
	sets     map[string]*InstanceExtras
}

func newInterner() *interner {
	return &interner{
		strs:     map[string]string{},
		lists:    map[string][]string{},
		prefixes: map[string][]netip.Prefix{},
		dicts:    map[string]map[string]string{},
		sets:     map[string]*InstanceExtras{},
	}
}

// tenant shares t's common values with the tenants interned before it.
// Values unique to a tenant (its name, instance id, addresses, MAC) are
// left alone: sharing gains nothing there.
func (n *interner) tenant(t *Tenant) {
	n.instance(&t.Instance)
	if t.Role != nil {
		r := t.Role
		n.strings(&r.Name, &r.ARN, &r.InstanceProfileARN, &r.InstanceProfileID)
	}
	c := &t.Credentials
	n.strings(&c.Profile, &c.RoleARN, &c.ExternalID, &c.SourceIdentity, &c.Policy)
	c.PolicyARNs = n.list(c.PolicyARNs)
	c.Tags = n.dict(c.Tags)
	if x := t.Extras; x != nil { // built just now: not yet shared
		x.Paths.Allow = n.list(x.Paths.Allow)
		x.Paths.Deny = n.list(x.Paths.Deny)
	}
}

func (n *interner) instance(in *Instance) {
	n.strings(&in.Type, &in.AMIID, &in.AccountID, &in.Region, &in.AvailabilityZone, &in.AvailabilityZoneID)
	in.Extras = n.extras(in.Extras)
	in.SecurityGroups = n.list(in.SecurityGroups)
	in.BlockDevices = n.dict(in.BlockDevices)
	in.Tags = n.dict(in.Tags)
	for i := range in.Interfaces {
		p := &in.Interfaces[i]
		n.strings(&p.OwnerID, &p.SubnetID, &p.VPCID)
		p.SecurityGroups = n.list(p.SecurityGroups)
		p.SecurityGroupIDs = n.list(p.SecurityGroupIDs)
		p.SubnetIPv6CIDRs = n.prefixList(p.SubnetIPv6CIDRs)
		p.VPCIPv4CIDRs = n.prefixList(p.VPCIPv4CIDRs)
		p.VPCIPv6CIDRs = n.prefixList(p.VPCIPv6CIDRs)
	}
}

// extras is nil as it is, else the first InstanceExtras interned with the
// same values, its strings and lists interned too.
func (n *interner) extras(x *InstanceExtras) *InstanceExtras {
	if x == nil {
		return nil
	}
	var b strings.Builder
	for _, s := range []string{x.KernelID, x.RamdiskID, strconv.Itoa(x.LaunchIndex), x.Architecture, x.LifeCycle,
		strconv.FormatBool(x.Monitoring), x.PlacementGroup, strconv.Itoa(x.PartitionNumber), x.HostID, x.KeyName, x.PublicKey} {
		writeKeyPart(&b, s)
	}
	for _, l := range [][]string{x.ProductCodes, x.BillingCodes} {
		// nil and empty lists differ to a reader that tells them apart.
		writeKeyPart(&b, strconv.FormatBool(l == nil))
		writeKeyPart(&b, strconv.Itoa(len(l)))
		for _, s := range l {
			writeKeyPart(&b, s)
		}
	}
	k := b.String()
	if v, ok := n.sets[k]; ok {
		return v
	}
	v := *x // a copy: the caller's may be written later
	n.strings(&v.KernelID, &v.RamdiskID, &v.Architecture, &v.LifeCycle, &v.PlacementGroup, &v.HostID, &v.KeyName, &v.PublicKey)
	v.ProductCodes = n.list(v.ProductCodes)
	v.BillingCodes = n.list(v.BillingCodes)
	n.sets[k] = &v
	return &v
}

func (n *interner) strings(ps ...*string) {
	for _, p := range ps {
		*p = n.str(*p)
	}
}

func (n *interner) str(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := n.strs[s]; ok {
		return v
	}
	if n.canon != nil {
		s = n.canon(s)
	}
	n.strs[s] = s
	return s
}

// Intern gives the copy's values that copies of other instances (or the
// next copy of this one) hold alike one backing string: the region, the
// zone, the account, the AMI, the VPC, the subnet, the key pair's public
// key, tags. Copies arrive one at a time from each tenant's refresher, so
// strings are shared through unique.Make, whose table forgets a string no
// copy holds any more. Lists and maps are shared within the copy only.
func (m *Mirrored) Intern() {
	n := newInterner()
	n.canon = func(s string) string { return unique.Make(s).Value() }
	n.instance(&m.Instance)
	n.strings(&m.InstanceProfileARN, &m.InstanceProfileID, &m.State)
}

// list is an empty list as it is (nil stays nil), else the first list
// interned with the same elements.
func (n *interner) list(l []string) []string {
	if len(l) == 0 {
		return l
	}
	var b strings.Builder
	for _, s := range l {
		writeKeyPart(&b, s)
	}
	k := b.String()
	if v, ok := n.lists[k]; ok {
		return v
	}
	v := make([]string, len(l)) // a copy: the caller's may have spare capacity, or be written later
	for i, s := range l {
		v[i] = n.str(s)
	}
	n.lists[k] = v
	return v
}

func (n *interner) prefixList(l []netip.Prefix) []netip.Prefix {
	if len(l) == 0 {
		return l
	}
	var b strings.Builder
	for _, p := range l {
		b.WriteString(p.String())
		b.WriteByte(',')
	}
	k := b.String()
	if v, ok := n.prefixes[k]; ok {
		return v
	}
	v := slices.Clip(slices.Clone(l))
	n.prefixes[k] = v
	return v
}

// dict is an empty map as it is, else the first map interned with the same
// keys and values.
func (n *interner) dict(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		writeKeyPart(&b, k)
		writeKeyPart(&b, m[k])
	}
	k := b.String()
	if v, ok := n.dicts[k]; ok {
		return v
	}
	v := make(map[string]string, len(m))
	for k, s := range m {
		v[n.str(k)] = n.str(s)
	}
	n.dicts[k] = v
	return v
}

// writeKeyPart writes s length first, so that no two lists make one key.
func writeKeyPart(b *strings.Builder, s string) {
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteByte(':')
	b.WriteString(s)
}
