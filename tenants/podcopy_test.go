package tenants

import "testing"

// TestPodAndRoleCopiesShareExtras checks that a pod's or role's copy of a
// tenant shares its extras when they hold nothing the copy must drop, and
// makes its own, without what stays the tenant's, when they do.
func TestPodAndRoleCopiesShareExtras(t *testing.T) {
	role := &Role{Name: "r", ARN: "arn:aws:iam::111122223333:role/r"}
	plain := &Tenant{Name: "a", Role: role, Extras: &TenantExtras{Paths: PathPolicy{Deny: []string{"user-data"}}}}
	if got := podTenant(plain, Pod{Namespace: "ns", Name: "p"}); got.Extras != plain.Extras {
		t.Error("a pod's copy does not share extras it keeps whole")
	}
	if got, err := roleTenant(plain, role.ARN); err != nil || got.Extras != plain.Extras {
		t.Errorf("a role's copy does not share extras it keeps whole (err %v)", err)
	}

	own := &Tenant{Name: "b", Role: role, Extras: &TenantExtras{
		Containers: []ContainerSelector{{}}, ServiceAccounts: []string{"ns/sa"},
		ContainerToken: "tok", Paths: plain.Extras.Paths,
	}}
	p := podTenant(own, Pod{Namespace: "ns", Name: "p"})
	if p.Extras == own.Extras || p.Containers() != nil || p.ServiceAccounts() != nil || p.ContainerToken() != "" || p.Paths().Deny == nil {
		t.Errorf("a pod's copy keeps what stays the tenant's, or loses its paths: %+v", p.Extras)
	}
	if own.Containers() == nil || own.ContainerToken() != "tok" {
		t.Error("a pod's copy wrote into the tenant's extras")
	}
	r, err := roleTenant(own, role.ARN)
	if err != nil || r.Extras == own.Extras || r.Containers() != nil || r.ContainerToken() != "tok" {
		t.Errorf("a role's copy keeps the containers, or loses the rest (err %v): %+v", err, r.Extras)
	}
}
