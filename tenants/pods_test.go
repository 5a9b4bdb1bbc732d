package tenants_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// podConfig has every way of claiming a tenant: by annotation (web),
// by service account (batch), through the role template (kube2iam), and
// a mirrored tenant (mirrored), whose pods are its live instance.
const podConfig = `kubernetes:
  role_template: kube2iam
tenants:
  - name: web
    sources: [10.0.0.1]
    credentials: {profile: dev, role_arn: "arn:aws:iam::111122223333:role/web"}
  - name: batch
    sources: [{service_account: jobs/runner}]
    credentials: {profile: dev}
  - name: static
    sources: [10.2.0.9]
  - name: kube2iam
    credentials: {profile: nodes, session_name: kube2iam}
  - name: mirrored
    instance: {mirror: {instance_id: i-0123456789abcdef0}}
    region: eu-west-1
    credentials: {profile: dev}
`

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestWithPods(t *testing.T) {
	cfg := parse(t, "c.yaml", podConfig)
	ns := []tenants.Namespace{
		{Name: "web", Annotations: map[string]string{tenants.AllowedTenantsAnnotation: "web, mirrored, static"}},
		{Name: "jobs", Annotations: map[string]string{tenants.AllowedTenantsAnnotation: "batch, arn:aws:iam::111122223333:role/jobs-*"}},
		{Name: "locked", Annotations: map[string]string{tenants.AllowedTenantsAnnotation: ""}},
		{Name: "open"},
		{Name: "roles", Annotations: map[string]string{tenants.AllowedTenantsAnnotation: "kube2iam/111122223333/*"}},
	}
	annotated := func(ns, name, uid, key, value, addr string) tenants.Pod {
		return tenants.Pod{UID: uid, Namespace: ns, Name: name, ServiceAccount: "default",
			Annotations: map[string]string{key: value}, Addrs: addrs(addr)}
	}
	const roleA = "arn:aws:iam::111122223333:role/jobs-a"
	base := map[string]string{"web": "[10.0.0.1/32]", "batch": "[]", "static": "[10.2.0.9/32]", "kube2iam": "[]", "mirrored": "[]"}
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
	refused := func(pod, claim, why string) string {
		return "pod " + pod + " claims " + claim + ", " + why + ": its requests are refused"
	}
	tests := []struct {
		name         string
		pods         []tenants.Pod
		want         map[string]string // tenant → Sources; derived tenants included
		wantWarnings []string
	}{
		{name: "no pods", want: base},
		{
			name: "by annotation, IPv4 and IPv6: the pod is its own instance",
			pods: []tenants.Pod{{UID: "1", Namespace: "web", Name: "a", Addrs: addrs("10.1.0.5", "fd00::5"),
				Annotations: map[string]string{tenants.PodTenantAnnotation: "web"}}},
			want: with("web@web/a", "[10.1.0.5/32 fd00::5/128]"),
		},
		{
			name: "by service account, whatever the namespace allows",
			pods: []tenants.Pod{{UID: "1", Namespace: "jobs", Name: "j", ServiceAccount: "runner", Addrs: addrs("10.1.0.6")}},
			want: with("batch@jobs/j", "[10.1.0.6/32]"),
		},
		{
			name: "the annotation before the service account",
			pods: []tenants.Pod{{UID: "1", Namespace: "jobs", Name: "a", ServiceAccount: "runner", Addrs: addrs("10.1.0.5"),
				Annotations: map[string]string{tenants.PodTenantAnnotation: "web"}}},
			want:         base,
			wantWarnings: []string{refused("jobs/a", "tenant web by annotation imds-proxy.io/tenant", "which namespace jobs's imds-proxy.io/allowed-tenants does not allow")},
		},
		{
			name: "a mirrored tenant's pods are its instance",
			pods: []tenants.Pod{
				annotated("web", "m1", "1", tenants.PodTenantAnnotation, "mirrored", "10.1.0.7"),
				annotated("web", "m2", "2", tenants.PodTenantAnnotation, "mirrored", "10.1.0.8"),
			},
			want: with("mirrored", "[10.1.0.7/32 10.1.0.8/32]"),
		},
		{
			name: "kube2iam role through the template, a pod a copy",
			pods: []tenants.Pod{
				annotated("jobs", "r1", "1", tenants.PodRoleAnnotation, roleA, "10.1.0.7"),
				annotated("jobs", "r2", "2", tenants.PodRoleAnnotation, roleA, "10.1.0.8"),
			},
			want: with("kube2iam/111122223333/jobs-a@jobs/r1", "[10.1.0.7/32]", "kube2iam/111122223333/jobs-a@jobs/r2", "[10.1.0.8/32]"),
		},
		{
			name: "a role allowed by the copy's name",
			pods: []tenants.Pod{annotated("roles", "r", "1", tenants.PodRoleAnnotation, "arn:aws:iam::111122223333:role/x", "10.1.0.7")},
			want: with("kube2iam/111122223333/x@roles/r", "[10.1.0.7/32]"),
		},
		{
			name: "a role the namespace does not allow",
			pods: []tenants.Pod{annotated("jobs", "r", "1", tenants.PodRoleAnnotation, "arn:aws:iam::999999999999:role/admin", "10.1.0.7")},
			want: base,
			wantWarnings: []string{refused("jobs/r", "role arn:aws:iam::999999999999:role/admin by annotation iam.amazonaws.com/role",
				"which namespace jobs's imds-proxy.io/allowed-tenants does not allow")},
		},
		{
			name: "not a role ARN",
			pods: []tenants.Pod{annotated("jobs", "r", "1", tenants.PodRoleAnnotation, "jobs-a", "10.1.0.7")},
			want: base,
			wantWarnings: []string{`pod jobs/r: iam.amazonaws.com/role "jobs-a": not a role ARN, such as ` +
				`arn:aws:iam::123456789012:role/NAME (kube2iam's bare role names need a full ARN here): its requests are refused`},
		},
		{
			name: "an empty allow list allows nothing",
			pods: []tenants.Pod{annotated("locked", "l", "1", tenants.PodTenantAnnotation, "web", "10.1.0.6")},
			want: base,
			wantWarnings: []string{refused("locked/l", "tenant web by annotation imds-proxy.io/tenant",
				"which namespace locked's imds-proxy.io/allowed-tenants does not allow")},
		},
		{
			name: "no allow list: deny by default",
			pods: []tenants.Pod{annotated("open", "o", "1", tenants.PodTenantAnnotation, "web", "10.1.0.6")},
			want: base,
			wantWarnings: []string{refused("open/o", "tenant web by annotation imds-proxy.io/tenant",
				"but namespace open has no imds-proxy.io/allowed-tenants annotation, and allows no claim by annotation without one (kubernetes.namespace_restrictions)")},
		},
		{
			name: "an unknown namespace is not trusted",
			pods: []tenants.Pod{annotated("new", "n", "1", tenants.PodTenantAnnotation, "web", "10.1.0.6")},
			want: base,
			wantWarnings: []string{refused("new/n", "tenant web by annotation imds-proxy.io/tenant",
				"but namespace new is not known (yet): its imds-proxy.io/allowed-tenants cannot be checked")},
		},
		{
			name:         "no such tenant",
			pods:         []tenants.Pod{annotated("web", "a", "1", tenants.PodTenantAnnotation, "nobody", "10.1.0.5")},
			want:         base,
			wantWarnings: []string{"pod web/a claims tenant nobody by annotation imds-proxy.io/tenant, which is not a tenant: its requests are refused"},
		},
		{
			name: "the template is not claimed by name",
			pods: []tenants.Pod{annotated("web", "a", "1", tenants.PodTenantAnnotation, "kube2iam", "10.1.0.5")},
			want: base,
			wantWarnings: []string{"pod web/a claims tenant kube2iam by annotation imds-proxy.io/tenant, which is kubernetes.role_template: " +
				"a pod takes it only through iam.amazonaws.com/role; its requests are refused"},
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
			name: "an address held by pods of two tenants, the old one terminating: neither",
			pods: []tenants.Pod{
				annotated("web", "old", "1", tenants.PodTenantAnnotation, "web", "10.1.0.5"),
				{UID: "2", Namespace: "jobs", Name: "new", ServiceAccount: "runner", Addrs: addrs("10.1.0.5")},
			},
			want:         with("web@web/old", "[]", "batch@jobs/new", "[]"),
			wantWarnings: []string{"address 10.1.0.5 belongs to pods of tenants batch@jobs/new and web@web/old: served as neither"},
		},
		{
			name:         "a static source wins",
			pods:         []tenants.Pod{annotated("web", "a", "1", tenants.PodTenantAnnotation, "static", "10.0.0.1")},
			want:         with("static@web/a", "[]"),
			wantWarnings: []string{"pod web/a's address 10.0.0.1 is a source of tenant web: served as web, not static@web/a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings := cfg.WithPods(tt.pods, ns)
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

// TestWithPodsWithoutRestrictions: namespace_restrictions: false lets a
// pod claim any tenant by annotation, its namespace unknown or not.
func TestWithPodsWithoutRestrictions(t *testing.T) {
	cfg := parse(t, "c.yaml", "kubernetes: {namespace_restrictions: false}\ntenants:\n  - name: web\n")
	got, warnings := cfg.WithPods([]tenants.Pod{{UID: "1", Namespace: "anywhere", Name: "a", Addrs: addrs("10.1.0.5"),
		Annotations: map[string]string{tenants.PodTenantAnnotation: "web"}}}, nil)
	if len(warnings) != 0 || len(got.Tenants) != 2 || fmt.Sprint(got.Tenants[1].Sources) != "[10.1.0.5/32]" {
		t.Fatalf("warnings %q, tenants %d", warnings, len(got.Tenants))
	}
}

// TestWithPodsInstances: each pod is its own instance, derived from its
// UID and named by it, at its address; pods of one tenant share its
// credentials (one cache entry); the file's tenant is unchanged.
func TestWithPodsInstances(t *testing.T) {
	cfg := parse(t, "c.yaml", podConfig)
	pods := []tenants.Pod{
		{UID: "uid-1", Namespace: "jobs", Name: "j1", ServiceAccount: "runner", Addrs: addrs("10.1.0.6", "fd00::6")},
		{UID: "uid-2", Namespace: "jobs", Name: "j2", Hostname: "worker", ServiceAccount: "runner", Addrs: addrs("10.1.0.7")},
	}
	got, warnings := cfg.WithPods(pods, nil)
	if len(warnings) != 0 || len(got.Tenants) != len(cfg.Tenants)+2 {
		t.Fatalf("warnings %q, %d tenants", warnings, len(got.Tenants))
	}
	batch := cfg.Tenants[1]
	p1, p2 := got.Tenants[len(cfg.Tenants)], got.Tenants[len(cfg.Tenants)+1]
	for _, c := range []struct {
		t          *tenants.Tenant
		name, host string
		v4         string
		v6         string
	}{{p1, "batch@jobs/j1", "j1", "10.1.0.6", "[fd00::6]"}, {p2, "batch@jobs/j2", "worker", "10.1.0.7", "[]"}} {
		in := c.t.Instance
		if c.t.Name != c.name || in.LocalHostname != c.host || in.Primary().LocalHostname != c.host ||
			in.PrivateIP().String() != c.v4 || fmt.Sprint(in.Primary().IPv6s) != c.v6 {
			t.Errorf("%s: hostname %q, private IP %s, IPv6 %v", c.t.Name, in.LocalHostname, in.PrivateIP(), in.Primary().IPv6s)
		}
		if len(in.ID) != len("i-")+17 || in.ID == batch.Instance.ID || in.Primary().MAC == batch.Instance.Primary().MAC {
			t.Errorf("%s: instance %s, MAC %s: not its own", c.t.Name, in.ID, in.Primary().MAC)
		}
		if c.t.Credentials.Key() != batch.Credentials.Key() || c.t.Role == nil || c.t.Role.Name != batch.Role.Name {
			t.Errorf("%s: credentials %q, want the tenant's %q", c.t.Name, c.t.Credentials.Key(), batch.Credentials.Key())
		}
		if len(c.t.ServiceAccounts()) != 0 {
			t.Errorf("%s lists service accounts %v: only the configured tenant answers for them", c.t.Name, c.t.ServiceAccounts())
		}
	}
	if p1.Instance.ID == p2.Instance.ID {
		t.Errorf("two pods, one instance id %s", p1.Instance.ID)
	}
	// The same pod is the same instance at every change; a new pod (a new
	// UID) at the same address is another.
	again, _ := cfg.WithPods(pods[:1], nil)
	if id := again.Tenants[len(cfg.Tenants)].Instance.ID; id != p1.Instance.ID {
		t.Errorf("pod uid-1: instance %s, then %s", p1.Instance.ID, id)
	}
	reused := pods[0]
	reused.UID = "uid-3"
	again, _ = cfg.WithPods([]tenants.Pod{reused}, nil)
	if id := again.Tenants[len(cfg.Tenants)].Instance.ID; id == p1.Instance.ID {
		t.Errorf("a new pod at a reused address got the old pod's instance %s", id)
	}
	if batch.Instance.PrivateIP() == p1.Instance.PrivateIP() || got.Tenants[1].Instance.ID != batch.Instance.ID {
		t.Error("the configured tenant's instance changed")
	}
	if sa := got.ServiceAccountTenant("jobs", "runner"); sa != got.Tenants[1] {
		t.Errorf("ServiceAccountTenant(jobs, runner) = %v, want the configured tenant batch of the derived configuration", sa)
	}
}

// TestWithPodsRoleCopy: the copy of the template takes the pod's role, its
// name under iam/security-credentials/, and nothing of the template's
// sources; the template is unchanged.
func TestWithPodsRoleCopy(t *testing.T) {
	cfg := parse(t, "c.yaml", `kubernetes: {role_template: kube2iam, namespace_restrictions: false}
tenants:
  - name: kube2iam
    sources: [10.9.0.1]
    credentials: {profile: nodes, session_name: kube2iam}
`)
	const arn = "arn:aws:iam::111122223333:role/team/jobs-a"
	got, warnings := cfg.WithPods([]tenants.Pod{{UID: "1", Namespace: "jobs", Name: "r",
		Annotations: map[string]string{tenants.PodRoleAnnotation: arn}, Addrs: addrs("10.1.0.7")}}, nil)
	if len(warnings) != 0 || len(got.Tenants) != 2 {
		t.Fatalf("warnings %q, %d tenants", warnings, len(got.Tenants))
	}
	c := got.Tenants[1]
	if c.Name != "kube2iam/111122223333/jobs-a@jobs/r" || c.Credentials.RoleARN != arn || c.Credentials.Profile != "nodes" ||
		c.Credentials.SessionName != "kube2iam" || c.Role == nil || c.Role.Name != "jobs-a" || c.Role.ARN != arn ||
		fmt.Sprint(c.Sources) != "[10.1.0.7/32]" {
		t.Errorf("copy %+v, role %+v, credentials %+v", c, c.Role, c.Credentials)
	}
	tpl := cfg.Tenants[0]
	if tpl.Credentials.RoleARN != "" || tpl.Role.Name == "jobs-a" || fmt.Sprint(got.Tenants[0].Sources) != "[10.9.0.1/32]" {
		t.Errorf("template changed: %+v, role %+v", tpl, tpl.Role)
	}
}
