package tenants_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/tenants"
)

func TestWithPods(t *testing.T) {
	cfg := parse(t, "c.yaml", `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials: {profile: dev}
  - name: batch
    sources: [10.3.0.1]
    credentials: {profile: dev}
  - name: static
    sources: [10.2.0.9]
  - name: kube2iam
    sources: [10.9.0.1]
    credentials: {profile: nodes, session_name: kube2iam}
`)
	rules := tenants.PodRules{
		ServiceAccounts: map[string]string{"jobs/runner": "batch", "jobs/ghost": "nobody"},
		RoleTemplate:    "kube2iam",
	}
	ns := []tenants.Namespace{
		{Name: "web"},
		{Name: "jobs", Annotations: map[string]string{tenants.AllowedTenantsAnnotation: "batch, arn:aws:iam::111122223333:role/jobs-*"}},
		{Name: "locked", Annotations: map[string]string{tenants.AllowedTenantsAnnotation: ""}},
		{Name: "roles", Annotations: map[string]string{tenants.AllowedTenantsAnnotation: "kube2iam/111122223333/*"}},
	}
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	annotated := func(ns, name, uid, key, value, addr string) tenants.Pod {
		return tenants.Pod{UID: uid, Namespace: ns, Name: name, ServiceAccount: "default",
			Annotations: map[string]string{key: value}, Addrs: addrs(addr)}
	}
	const roleA = "arn:aws:iam::111122223333:role/jobs-a"
	base := map[string]string{"web": "[10.0.0.1/32]", "batch": "[10.3.0.1/32]", "static": "[10.2.0.9/32]", "kube2iam": "[10.9.0.1/32]"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name         string
		pods         []tenants.Pod
		want         map[string]string // tenant → Sources; derived tenants included
		wantWarnings []string
	}{
		{name: "no pods", want: base},
		{
			name: "by annotation, IPv4 and IPv6",
			pods: []tenants.Pod{{UID: "1", Namespace: "web", Name: "a", Addrs: addrs("10.1.0.5", "fd00::5"),
				Annotations: map[string]string{tenants.PodTenantAnnotation: "web"}}},
			want: with("web", "[10.0.0.1/32 10.1.0.5/32 fd00::5/128]"),
		},
		{
			name: "by service account",
			pods: []tenants.Pod{{UID: "1", Namespace: "jobs", Name: "j", ServiceAccount: "runner", Addrs: addrs("10.1.0.6")}},
			want: with("batch", "[10.3.0.1/32 10.1.0.6/32]"),
		},
		{
			name: "the annotation before the service account",
			pods: []tenants.Pod{{UID: "1", Namespace: "web", Name: "a", ServiceAccount: "runner", Addrs: addrs("10.1.0.5"),
				Annotations: map[string]string{tenants.PodTenantAnnotation: "web"}}},
			want: with("web", "[10.0.0.1/32 10.1.0.5/32]"),
		},
		{
			name: "kube2iam role through the template, one copy per role",
			pods: []tenants.Pod{
				annotated("jobs", "r1", "1", tenants.PodRoleAnnotation, roleA, "10.1.0.7"),
				annotated("jobs", "r2", "2", tenants.PodRoleAnnotation, roleA, "10.1.0.8"),
			},
			want: with("kube2iam/111122223333/jobs-a", "[10.1.0.7/32 10.1.0.8/32]"),
		},
		{
			name: "a role allowed by the copy's name",
			pods: []tenants.Pod{annotated("roles", "r", "1", tenants.PodRoleAnnotation, "arn:aws:iam::111122223333:role/x", "10.1.0.7")},
			want: with("kube2iam/111122223333/x", "[10.1.0.7/32]"),
		},
		{
			name: "a role the namespace does not allow",
			pods: []tenants.Pod{annotated("jobs", "r", "1", tenants.PodRoleAnnotation, "arn:aws:iam::999999999999:role/admin", "10.1.0.7")},
			want: base,
			wantWarnings: []string{"pod jobs/r claims role arn:aws:iam::999999999999:role/admin, which namespace jobs's " +
				"imds-proxy.io/allowed-tenants does not allow: no address added"},
		},
		{
			name: "not a role ARN",
			pods: []tenants.Pod{annotated("jobs", "r", "1", tenants.PodRoleAnnotation, "jobs-a", "10.1.0.7")},
			want: base,
			wantWarnings: []string{`pod jobs/r: iam.amazonaws.com/role "jobs-a": not a role ARN, such as ` +
				`arn:aws:iam::123456789012:role/NAME (kube2iam's bare role names need a full ARN here)`},
		},
		{
			name: "a tenant the namespace does not allow",
			pods: []tenants.Pod{annotated("jobs", "j", "1", tenants.PodTenantAnnotation, "web", "10.1.0.6")},
			want: base,
			wantWarnings: []string{"pod jobs/j claims tenant web by annotation imds-proxy.io/tenant, which namespace jobs's " +
				"imds-proxy.io/allowed-tenants does not allow: no address added"},
		},
		{
			name: "an empty allow list allows nothing",
			pods: []tenants.Pod{annotated("locked", "l", "1", tenants.PodTenantAnnotation, "web", "10.1.0.6")},
			want: base,
			wantWarnings: []string{"pod locked/l claims tenant web by annotation imds-proxy.io/tenant, which namespace locked's " +
				"imds-proxy.io/allowed-tenants does not allow: no address added"},
		},
		{
			name: "an unknown namespace is not trusted",
			pods: []tenants.Pod{annotated("new", "n", "1", tenants.PodTenantAnnotation, "web", "10.1.0.6")},
			want: base,
			wantWarnings: []string{"pod new/n claims web by annotation imds-proxy.io/tenant, but namespace new is unknown: " +
				"its imds-proxy.io/allowed-tenants cannot be checked, no address added"},
		},
		{
			name: "no such tenant",
			pods: []tenants.Pod{
				annotated("web", "a", "1", tenants.PodTenantAnnotation, "nobody", "10.1.0.5"),
				{UID: "2", Namespace: "jobs", Name: "g", ServiceAccount: "ghost", Addrs: addrs("10.1.0.6")},
			},
			want: base,
			wantWarnings: []string{
				"pod jobs/g claims tenant nobody by service account ghost, which is not a tenant: no address added",
				"pod web/a claims tenant nobody by annotation imds-proxy.io/tenant, which is not a tenant: no address added",
			},
		},
		{
			name: "the template is not claimed by name",
			pods: []tenants.Pod{annotated("web", "a", "1", tenants.PodTenantAnnotation, "kube2iam", "10.1.0.5")},
			want: base,
			wantWarnings: []string{"pod web/a claims tenant kube2iam by annotation imds-proxy.io/tenant, which is kubernetes.role_template: " +
				"a pod takes it only through iam.amazonaws.com/role, no address added"},
		},
		{
			name: "no address, no claim, no warning",
			pods: []tenants.Pod{
				{UID: "1", Namespace: "new", Name: "pending", Annotations: map[string]string{tenants.PodTenantAnnotation: "web"}},
				{UID: "2", Namespace: "web", Name: "plain", ServiceAccount: "default", Addrs: addrs("10.1.0.9")},
			},
			want: base,
		},
		{
			name: "an address reused by a new pod serves the new pod's tenant",
			pods: []tenants.Pod{{UID: "new", Namespace: "jobs", Name: "b", ServiceAccount: "runner", Addrs: addrs("10.1.0.5")}},
			want: with("batch", "[10.3.0.1/32 10.1.0.5/32]"),
		},
		{
			name: "an address held by pods of two tenants, the old one terminating: neither",
			pods: []tenants.Pod{
				annotated("web", "old", "1", tenants.PodTenantAnnotation, "web", "10.1.0.5"),
				{UID: "2", Namespace: "jobs", Name: "new", ServiceAccount: "runner", Addrs: addrs("10.1.0.5")},
			},
			want:         base,
			wantWarnings: []string{"address 10.1.0.5 belongs to pods of tenants batch and web: served as neither"},
		},
		{
			name:         "a static source wins",
			pods:         []tenants.Pod{annotated("web", "a", "1", tenants.PodTenantAnnotation, "web", "10.2.0.9")},
			want:         base,
			wantWarnings: []string{"pod web/a's address 10.2.0.9 is a source of tenant static: served as static, not web"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings := cfg.WithPods(rules, tt.pods, ns)
			seen := map[string]bool{}
			for _, tn := range got.Tenants {
				seen[tn.Name] = true
				if s := fmt.Sprint(tn.Sources); s != tt.want[tn.Name] {
					t.Errorf("tenant %s: Sources = %s, want %s", tn.Name, s, tt.want[tn.Name])
				}
			}
			if len(seen) != len(tt.want) {
				t.Errorf("tenants %v, want those of %v", seen, tt.want)
			}
			if !slices.Equal(warnings, tt.wantWarnings) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(tt.wantWarnings, "\n"))
			}
			for i, tn := range cfg.Tenants {
				if got.Tenants[i] == tn {
					t.Errorf("tenant %s shares its Tenant with the file's configuration", tn.Name)
				}
			}
		})
	}
}

// TestWithPodsRoleCopy: the copy of the template takes the pod's role, its
// name under iam/security-credentials/, and nothing of the template's
// sources; the template is unchanged.
func TestWithPodsRoleCopy(t *testing.T) {
	cfg := parse(t, "c.yaml", `tenants:
  - name: kube2iam
    sources: [10.9.0.1]
    credentials: {profile: nodes, session_name: kube2iam}
`)
	const arn = "arn:aws:iam::111122223333:role/team/jobs-a"
	got, warnings := cfg.WithPods(tenants.PodRules{RoleTemplate: "kube2iam"}, []tenants.Pod{{UID: "1", Namespace: "jobs", Name: "r",
		Annotations: map[string]string{tenants.PodRoleAnnotation: arn}, Addrs: []netip.Addr{netip.MustParseAddr("10.1.0.7")}}},
		[]tenants.Namespace{{Name: "jobs"}})
	if len(warnings) != 0 || len(got.Tenants) != 2 {
		t.Fatalf("warnings %q, %d tenants", warnings, len(got.Tenants))
	}
	c := got.Tenants[1]
	if c.Name != "kube2iam/111122223333/jobs-a" || c.Credentials.RoleARN != arn || c.Credentials.Profile != "nodes" ||
		c.Credentials.SessionName != "kube2iam" || c.Role == nil || c.Role.Name != "jobs-a" || c.Role.ARN != arn ||
		fmt.Sprint(c.Sources) != "[10.1.0.7/32]" {
		t.Errorf("copy %+v, role %+v, credentials %+v", c, c.Role, c.Credentials)
	}
	tpl := cfg.Tenants[0]
	if tpl.Credentials.RoleARN != "" || tpl.Role.Name == "jobs-a" || fmt.Sprint(got.Tenants[0].Sources) != "[10.9.0.1/32]" {
		t.Errorf("template changed: %+v, role %+v", tpl, tpl.Role)
	}
}

func TestWithPodsTemplateWithoutRole(t *testing.T) {
	cfg := parse(t, "c.yaml", "tenants:\n  - name: bare\n    sources: [10.8.0.1]\n")
	_, warnings := cfg.WithPods(tenants.PodRules{RoleTemplate: "bare"}, []tenants.Pod{{UID: "1", Namespace: "jobs", Name: "r",
		Annotations: map[string]string{tenants.PodRoleAnnotation: "arn:aws:iam::111122223333:role/x"},
		Addrs:       []netip.Addr{netip.MustParseAddr("10.1.0.7")}}}, []tenants.Namespace{{Name: "jobs"}})
	want := []string{"kubernetes.role_template bare has no role: pods' iam.amazonaws.com/role annotations are ignored (give the tenant a role)"}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings %q, want %q", warnings, want)
	}
}
