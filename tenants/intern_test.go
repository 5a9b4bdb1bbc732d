package tenants_test

import (
	"maps"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// TestBuildSharesCommonValues checks that tenants of one configuration
// share one backing string, slice or map for the values they hold alike,
// and that a tenant changing one (its own tags, a mirror's copy) leaves the
// others' alone.
func TestBuildSharesCommonValues(t *testing.T) {
	cfg, err := tenants.Parse("shared.yaml", []byte(`
defaults:
  region: eu-west-1
  credentials: {profile: shared}
  instance: {tags: {team: a}}
tenants:
  - {name: a, sources: [127.0.0.1]}
  - {name: b, sources: [127.0.0.2]}
  - name: c
    sources: [127.0.0.3]
    instance: {tags: {team: c}, block_device_mapping: {ebs1: /dev/sdb}}
  - name: d
    sources: [127.0.0.4]
    instance: {mirror: {instance_id: i-0123456789abcdef0}, tags: {env: prod}}
`), time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c, d := cfg.Tenants[0], cfg.Tenants[1], cfg.Tenants[2], cfg.Tenants[3]
	ai, bi := &a.Instance, &b.Instance
	for _, s := range []struct {
		name string
		a, b string
	}{
		{"availability zone", ai.AvailabilityZone, bi.AvailabilityZone},
		{"zone id", ai.AvailabilityZoneID, bi.AvailabilityZoneID},
		{"AMI id", ai.AMIID, bi.AMIID},
		{"subnet id", ai.Primary().SubnetID, bi.Primary().SubnetID},
		{"VPC id", ai.Primary().VPCID, bi.Primary().VPCID},
		{"security group id", ai.Primary().SecurityGroupIDs[0], bi.Primary().SecurityGroupIDs[0]},
		{"instance profile ARN", a.Role.InstanceProfileARN, b.Role.InstanceProfileARN},
	} {
		if s.a != s.b || unsafe.StringData(s.a) != unsafe.StringData(s.b) {
			t.Errorf("%s: %q and %q do not share one string", s.name, s.a, s.b)
		}
	}
	if &ai.SecurityGroups[0] != &bi.SecurityGroups[0] || &ai.Primary().VPCIPv4CIDRs[0] != &bi.Primary().VPCIPv4CIDRs[0] {
		t.Error("security groups or VPC blocks are not shared")
	}
	if cap(ai.SecurityGroups) != len(ai.SecurityGroups) {
		t.Errorf("a shared list has spare capacity (%d of %d): append would write into it", len(ai.SecurityGroups), cap(ai.SecurityGroups))
	}
	for _, m := range []struct {
		name string
		a, b map[string]string
	}{
		{"block devices", ai.BlockDevices, bi.BlockDevices},
		{"tags", ai.Tags, bi.Tags},
	} {
		if reflect.ValueOf(m.a).UnsafePointer() != reflect.ValueOf(m.b).UnsafePointer() {
			t.Errorf("%s: %v and %v are not one map", m.name, m.a, m.b)
		}
	}

	if want := map[string]string{"team": "c"}; !maps.Equal(c.Instance.Tags, want) {
		t.Errorf("c's tags %v, want %v", c.Instance.Tags, want)
	}
	served := d.WithMirror(&tenants.Mirrored{Instance: *ai})
	if want := map[string]string{"team": "a", "env": "prod"}; !maps.Equal(served.Instance.Tags, want) {
		t.Errorf("mirrored tags %v, want %v", served.Instance.Tags, want)
	}
	if want := map[string]string{"team": "a"}; !maps.Equal(ai.Tags, want) || !maps.Equal(bi.Tags, want) {
		t.Errorf("another tenant's tags changed a shared map: a %v, b %v", ai.Tags, bi.Tags)
	}
	if want := map[string]string{"ami": "/dev/xvda", "root": "/dev/xvda"}; !maps.Equal(ai.BlockDevices, want) {
		t.Errorf("a's block devices %v, want %v", ai.BlockDevices, want)
	}
}

// TestMirroredInternShares checks that copies of two live instances,
// fetched apart, share one backing string for the values they hold alike
// and keep their own ones.
func TestMirroredInternShares(t *testing.T) {
	copyOf := func(id string) *tenants.Mirrored {
		// Built from bytes, as decoded responses are: no two strings
		// share storage to begin with.
		s := func(v string) string { return string([]byte(v)) }
		return &tenants.Mirrored{
			Instance: tenants.Instance{ID: s(id), Region: s("eu-west-1"), AvailabilityZone: s("eu-west-1a"),
				Extras: &tenants.InstanceExtras{PublicKey: s("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample shared-key")},
				Tags:   map[string]string{s("team"): s("platform")},
				Interfaces: []tenants.Interface{{MAC: s("02:00:00:00:00:" + id[len(id)-2:]), SubnetID: s("subnet-0123456789abcdef0"),
					SecurityGroups: []string{s("web")}}}},
			InstanceProfileARN: s("arn:aws:iam::111122223333:instance-profile/web"),
		}
	}
	a, b := copyOf("i-0000000000000aa"), copyOf("i-0000000000000bb")
	a.Intern()
	b.Intern()
	for _, s := range []struct{ name, a, b string }{
		{"region", a.Instance.Region, b.Instance.Region},
		{"zone", a.Instance.AvailabilityZone, b.Instance.AvailabilityZone},
		{"public key", a.Instance.PublicKey(), b.Instance.PublicKey()},
		{"tag value", a.Instance.Tags["team"], b.Instance.Tags["team"]},
		{"subnet", a.Instance.Primary().SubnetID, b.Instance.Primary().SubnetID},
		{"security group", a.Instance.Primary().SecurityGroups[0], b.Instance.Primary().SecurityGroups[0]},
		{"instance profile", a.InstanceProfileARN, b.InstanceProfileARN},
	} {
		if s.a != s.b || unsafe.StringData(s.a) != unsafe.StringData(s.b) {
			t.Errorf("%s: %q and %q are not one string", s.name, s.a, s.b)
		}
	}
	if a.Instance.ID == b.Instance.ID || a.Instance.Primary().MAC == b.Instance.Primary().MAC {
		t.Errorf("own values changed: %s %s", a.Instance.ID, a.Instance.Primary().MAC)
	}
}

// TestBuildSharesInstanceExtras checks that tenants whose rare instance
// attributes are equal share one InstanceExtras, that one with its own has
// its own, and that laying a mirrored tenant's static values over a copy
// leaves the copy's extras as they were.
func TestBuildSharesInstanceExtras(t *testing.T) {
	cfg, err := tenants.Parse("extras.yaml", []byte(`
tenants:
  - {name: a, sources: [127.0.0.1]}
  - {name: b, sources: [127.0.0.2]}
  - {name: c, sources: [127.0.0.3], instance: {key_name: deploy}}
  - {name: d, sources: [127.0.0.4], instance: {mirror: {instance_id: i-0123456789abcdef0}, key_name: mine}}
`), time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c, d := cfg.Tenants[0], cfg.Tenants[1], cfg.Tenants[2], cfg.Tenants[3]
	if a.Instance.Extras == nil || a.Instance.Extras != b.Instance.Extras {
		t.Errorf("a's extras %p and b's %p: want one for both", a.Instance.Extras, b.Instance.Extras)
	}
	if c.Instance.Extras == a.Instance.Extras || c.Instance.KeyName() != "deploy" || a.Instance.KeyName() != "" {
		t.Errorf("c's key %q shared with a's %q", c.Instance.KeyName(), a.Instance.KeyName())
	}
	if got := a.Instance.LifeCycle(); got != "on-demand" {
		t.Errorf("life cycle %q, want on-demand", got)
	}
	copied := &tenants.Mirrored{Instance: tenants.Instance{ID: "i-0123456789abcdef0",
		Extras: &tenants.InstanceExtras{KeyName: "theirs", LifeCycle: "spot"}}}
	served := d.WithMirror(copied)
	if got := served.Instance.KeyName(); got != "mine" {
		t.Errorf("served key %q, want the tenant's own", got)
	}
	if got := served.Instance.LifeCycle(); got != "spot" {
		t.Errorf("served life cycle %q, want the copy's", got)
	}
	if got := copied.Instance.KeyName(); got != "theirs" {
		t.Errorf("the copy's key became %q: WithMirror wrote into it", got)
	}
}

// TestTenantExtrasReadAsZero checks that a tenant without extras reads as
// one with all of them zero.
func TestTenantExtrasReadAsZero(t *testing.T) {
	var tn tenants.Tenant
	if tn.UserData() != nil || tn.ContainerToken() != "" || tn.ContainerAnySource() || tn.Events() != nil ||
		tn.Paths().Allow != nil || tn.Containers() != nil || tn.ServiceAccounts() != nil || tn.InstanceEvents() != nil {
		t.Error("a tenant without extras reads as having some")
	}
	in := tn.Instance
	if in.KeyName() != "" || in.PartitionNumber() != 0 || in.Monitoring() || in.ProductCodes() != nil {
		t.Error("an instance without extras reads as having some")
	}
}
