package tenants_test

import (
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// TestKubernetesConfig: the kubernetes: block's defaults, and the
// service_account sources Pod Identity and pods are matched by.
func TestKubernetesConfig(t *testing.T) {
	cfg := parse(t, "c.yaml", `kubernetes:
tenants:
  - name: app
    sources: [{service_account: team-a/app}, {service_account: team-b/app.v2}]
    credentials: {profile: dev}
  - name: claimed-only
`)
	k := cfg.Kubernetes
	if k == nil || !k.NamespaceRestrictions || k.Kubeconfig != "" || k.NodeName != "" || k.RoleTemplate != "" {
		t.Fatalf("kubernetes: alone gave %+v, want the block with its defaults", k)
	}
	app := cfg.Tenants[0]
	if got := strings.Join(app.ServiceAccounts(), " "); got != "team-a/app team-b/app.v2" || len(app.Sources) != 0 {
		t.Errorf("service accounts %q, sources %v", got, app.Sources)
	}
	for _, c := range []struct {
		ns, name string
		want     *tenants.Tenant
	}{{"team-a", "app", app}, {"team-b", "app.v2", app}, {"team-a", "other", nil}, {"team-b", "app", nil}} {
		if got := cfg.ServiceAccountTenant(c.ns, c.name); got != c.want {
			t.Errorf("ServiceAccountTenant(%s, %s) = %v, want %v", c.ns, c.name, got, c.want)
		}
	}
	// A configuration made by hand, with no index, looks through its tenants.
	byHand := &tenants.Config{Tenants: []*tenants.Tenant{{Name: "x", Extras: &tenants.TenantExtras{ServiceAccounts: []string{"a/b"}}}}}
	if got := byHand.ServiceAccountTenant("a", "b"); got != byHand.Tenants[0] {
		t.Errorf("ServiceAccountTenant on a Config made by hand = %v", got)
	}
	rules := cfg.PodRules()
	if rules.ServiceAccounts["team-b/app.v2"] != "app" || !rules.NamespaceRestrictions {
		t.Errorf("PodRules %+v", rules)
	}
	full := parse(t, "c.yaml", `kubernetes: {kubeconfig: /k, node_name: n1, namespace_restrictions: false, role_template: tpl}
tenants:
  - {name: tpl, credentials: {profile: nodes}}
`).Kubernetes
	if *full != (tenants.Kubernetes{Kubeconfig: "/k", NodeName: "n1", RoleTemplate: "tpl"}) {
		t.Errorf("kubernetes block %+v", full)
	}
}

func TestKubernetesConfigErrors(t *testing.T) {
	tests := []struct {
		name, config string
		want         []string
	}{
		{
			name:   "a tenant without sources outside Kubernetes mode",
			config: "tenants:\n  - name: app\n",
			want:   []string{`c.yaml:2: tenants[0].sources: tenant "app" needs at least one source`},
		},
		{
			name:   "a service account outside Kubernetes mode",
			config: "tenants:\n  - name: app\n    sources: [{service_account: team-a/app}]\n",
			want:   []string{"c.yaml:3: tenants[0].sources[0]: service_account team-a/app: pods are followed only in Kubernetes mode; add a kubernetes: block"},
		},
		{
			name: "malformed service accounts",
			config: "kubernetes: {}\ntenants:\n  - name: app\n    sources:\n      - {service_account: app}\n" +
				"      - {service_account: Team/app}\n      - {service_account: team/App_1}\n      - {service_acount: team/app}\n",
			want: []string{
				`c.yaml:5: tenants[0].sources[0]: service_account "app": write NAMESPACE/NAME, such as team-a/app`,
				`c.yaml:6: tenants[0].sources[1]: service_account "Team/app": "Team" is not a namespace name`,
				`c.yaml:7: tenants[0].sources[2]: service_account "team/App_1": "App_1" is not a service account name`,
				`c.yaml:8: tenants[0].sources[3]: a source is an address, a CIDR block, {container: NAME}, {label: KEY=VALUE} or {service_account: NAMESPACE/NAME}, not "service_acount"; did you mean "service_account"?`,
			},
		},
		{
			name: "one service account, two tenants",
			config: "kubernetes: {}\ntenants:\n  - name: a\n    sources: [{service_account: t/app}]\n" +
				"  - name: b\n    sources: [{service_account: t/app}, {service_account: t/app}]\n",
			want: []string{
				"c.yaml:6: tenants[1].sources: service_account t/app is already a source of tenants[0] (a)",
				"c.yaml:6: tenants[1].sources[1]: service_account t/app is listed twice",
			},
		},
		{
			name:   "a misspelt key",
			config: "kubernetes: {namespace_restriction: false, nodename: x}\ntenants:\n  - name: a\n",
			want: []string{`c.yaml:1: kubernetes: unknown key "namespace_restriction"; did you mean "namespace_restrictions"?`,
				`c.yaml:1: kubernetes: unknown key "nodename"; did you mean "node_name"?`},
		},
		{
			name:   "a role template that is no tenant",
			config: "kubernetes: {role_template: kube2am}\ntenants:\n  - name: kube2iam\n    credentials: {profile: p}\n",
			want:   []string{`c.yaml:1: kubernetes.role_template: "kube2am" is not a tenant: name the tenant whose credentials (its profile) each role's copy uses; did you mean kube2iam?`},
		},
		{
			name:   "a role template without credentials",
			config: "kubernetes: {role_template: t}\ntenants:\n  - name: t\n",
			want:   []string{`c.yaml:1: kubernetes.role_template: tenant "t" has no credentials: give it credentials.profile, which each role's copy takes the role with`},
		},
		{
			name:   "not a boolean",
			config: "kubernetes: {namespace_restrictions: maybe}\ntenants:\n  - name: a\n",
			want:   []string{`c.yaml:1: kubernetes.namespace_restrictions: "maybe" is not true or false`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tenants.Parse("c.yaml", []byte(tt.config), time.Now())
			if err == nil {
				t.Fatal("accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("errors:\n%s\nwant %d", err, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d:\n%s\nwant it to begin\n%s", i, lines[i], w)
				}
			}
		})
	}
}
