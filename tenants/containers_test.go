package tenants_test

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/tenants"
)

func TestParseContainerSources(t *testing.T) {
	tests := []struct {
		name       string
		sources    string
		wantStatic string
		want       []tenants.ContainerSelector
	}{
		{"by name", "[{container: web}]", "[]", []tenants.ContainerSelector{{Name: "web"}}},
		{"Docker's leading slash", `[{container: "/web"}]`, "[]", []tenants.ContainerSelector{{Name: "web"}}},
		{"by label", `[{label: "imds-proxy.tenant=web"}]`, "[]",
			[]tenants.ContainerSelector{{LabelKey: "imds-proxy.tenant", LabelValue: "web"}}},
		{"label with an empty value", `[{label: "com.example/role="}]`, "[]",
			[]tenants.ContainerSelector{{LabelKey: "com.example/role"}}},
		{"mixed with addresses", "\n      - 10.0.0.1\n      - container: web\n      - label: tier=front\n      - fd00::/64", "[10.0.0.1/32 fd00::/64]",
			[]tenants.ContainerSelector{{Name: "web"}, {LabelKey: "tier", LabelValue: "front"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := parseOne(t, fmt.Sprintf("tenants:\n  - name: web\n    sources: %s\n", tt.sources))
			if got := fmt.Sprint(tn.Sources); got != tt.wantStatic {
				t.Errorf("Sources = %s, want %s", got, tt.wantStatic)
			}
			if !reflect.DeepEqual(tn.Containers(), tt.want) {
				t.Errorf("Containers = %+v, want %+v", tn.Containers(), tt.want)
			}
		})
	}
}

func TestParseContainerSourceErrors(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   []string
	}{
		{
			name: "unknown key",
			config: `tenants:
  - name: web
    sources:
      - 10.0.0.1
      - {image: nginx}
`,
			want: []string{`c.yaml:5: tenants[0].sources[1]: a source is an address, a CIDR block, {container: NAME}, {label: KEY=VALUE} or {service_account: NAMESPACE/NAME}, not "image"`},
		},
		{
			name: "two keys in one source, every error reported",
			config: `tenants:
  - name: web
    sources:
      - {container: web, label: a=b}
      - {container: }
`,
			want: []string{
				`c.yaml:4: tenants[0].sources[0]: a source is an address, a CIDR block, {container: NAME}, {label: KEY=VALUE} or {service_account: NAMESPACE/NAME}: one key per source`,
				`c.yaml:5: tenants[0].sources[1]: a source is an address, a CIDR block, {container: NAME}, {label: KEY=VALUE} or {service_account: NAMESPACE/NAME}: container needs a string value`,
			},
		},
		{
			name: "invalid container name",
			config: `tenants:
  - name: web
    sources: [{container: "web app"}]
`,
			want: []string{`c.yaml:3: tenants[0].sources[0]: container "web app": a container name is letters, digits, '_', '.' and '-'`},
		},
		{
			name: "label without a value",
			config: `tenants:
  - name: web
    sources:
      - label: imds-proxy.tenant
`,
			want: []string{`c.yaml:4: tenants[0].sources[0]: label "imds-proxy.tenant": write KEY=VALUE, such as imds-proxy.tenant=web`},
		},
		{
			name: "label with a bad key",
			config: `tenants:
  - name: web
    sources: [{label: "=web"}]
`,
			want: []string{`c.yaml:3: tenants[0].sources[0]: label "=web": "" is not a label key`},
		},
		{
			name: "container listed twice",
			config: `tenants:
  - name: web
    sources: [{container: web}, {container: /web}]
`,
			want: []string{`c.yaml:3: tenants[0].sources[1]: container web is listed twice`},
		},
		{
			name: "same container in two tenants",
			config: `tenants:
  - name: web
    sources: [{container: web}]
  - name: worker
    sources: [{container: web}]
`,
			want: []string{`c.yaml:5: tenants[1].sources: container web is already a source of tenants[0] (web); a source must choose one tenant`},
		},
		{
			name: "containers in defaults",
			config: `defaults:
  sources: [{container: web}]
tenants:
  - name: web
    sources: [10.0.0.1]
`,
			want: []string{`c.yaml:2: defaults.sources: sources belong to one tenant, not to defaults`},
		},
		{
			name: "docker socket not a path",
			config: `server:
  docker_socket: tcp://127.0.0.1:2375
tenants:
  - name: web
    sources: [{container: web}]
`,
			want: []string{`c.yaml:2: server.docker_socket: "tcp://127.0.0.1:2375": give the Docker socket as an absolute path or unix:///path, such as /var/run/docker.sock`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErrors(t, "c.yaml", tt.config); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseDockerSocket(t *testing.T) {
	cfg := parse(t, "c.yaml", "server:\n  docker_socket: unix:///run/user/1000/docker.sock\ntenants:\n  - name: web\n    sources: [{container: web}]\n")
	if got := cfg.Server.DockerSocket; got != "/run/user/1000/docker.sock" {
		t.Errorf("DockerSocket = %q, want /run/user/1000/docker.sock", got)
	}
	if !cfg.NamesContainers() {
		t.Error("NamesContainers() = false for a tenant that names a container")
	}
}

func TestWithContainers(t *testing.T) {
	cfg := parse(t, "c.yaml", `tenants:
  - name: web
    sources: [{container: web}, 10.0.0.1]
    credentials: {profile: dev}
  - name: labelled
    sources: [{label: imds-proxy.tenant=web}, {container: worker}]
  - name: static
    sources: [172.17.0.9, 172.17.0.0/16]
`)
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	tests := []struct {
		name         string
		containers   []tenants.Container
		want         map[string]string // tenant → Sources
		wantWarnings []string
	}{
		{
			name: "none running",
			want: map[string]string{"web": "[10.0.0.1/32]", "labelled": "[]", "static": "[172.17.0.9/32 172.17.0.0/16]"},
		},
		{
			name: "by name and by label, IPv4 and IPv6",
			containers: []tenants.Container{
				{ID: "a", Name: "web", Addrs: addrs("172.17.0.2", "fd00:17::2")},
				{ID: "b", Name: "api", Labels: map[string]string{"imds-proxy.tenant": "web"}, Addrs: addrs("172.17.0.4", "::ffff:172.17.0.3")},
				{ID: "c", Name: "other", Labels: map[string]string{"imds-proxy.tenant": "db"}, Addrs: addrs("172.17.0.5")},
			},
			want: map[string]string{"web": "[10.0.0.1/32 172.17.0.2/32 fd00:17::2/128]", "labelled": "[172.17.0.3/32 172.17.0.4/32]",
				"static": "[172.17.0.9/32 172.17.0.0/16]"},
		},
		{
			name: "chosen by two tenants: the first in the file",
			containers: []tenants.Container{
				{ID: "a", Name: "web", Labels: map[string]string{"imds-proxy.tenant": "web"}, Addrs: addrs("172.17.0.2")},
			},
			want:         map[string]string{"web": "[10.0.0.1/32 172.17.0.2/32]", "labelled": "[]", "static": "[172.17.0.9/32 172.17.0.0/16]"},
			wantWarnings: []string{"container web is chosen by tenants web and labelled: served as web, the first in the file"},
		},
		{
			name: "a static source wins",
			containers: []tenants.Container{
				{ID: "a", Name: "web", Addrs: addrs("172.17.0.9", "10.0.0.1")},
			},
			want:         map[string]string{"web": "[10.0.0.1/32]", "labelled": "[]", "static": "[172.17.0.9/32 172.17.0.0/16]"},
			wantWarnings: []string{"container web's address 172.17.0.9 is a source of tenant static: served as static, not web"},
		},
		{
			name: "one address, two tenants' containers: neither",
			containers: []tenants.Container{
				{ID: "a", Name: "web", Addrs: addrs("172.18.0.2", "172.17.0.2")},
				{ID: "b", Name: "worker", Addrs: addrs("172.18.0.2"), Labels: map[string]string{"imds-proxy.tenant": "web"}},
			},
			want:         map[string]string{"web": "[10.0.0.1/32 172.17.0.2/32]", "labelled": "[]", "static": "[172.17.0.9/32 172.17.0.0/16]"},
			wantWarnings: []string{"address 172.18.0.2 belongs to containers of tenants web and labelled: served as neither"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings := cfg.WithContainers(tt.containers)
			for _, tn := range got.Tenants {
				if s := fmt.Sprint(tn.Sources); s != tt.want[tn.Name] {
					t.Errorf("tenant %s: Sources = %s, want %s", tn.Name, s, tt.want[tn.Name])
				}
			}
			if !slices.Equal(warnings, tt.wantWarnings) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(tt.wantWarnings, "\n"))
			}
			for i, tn := range got.Tenants {
				if tn == cfg.Tenants[i] || (tn.Role != nil && tn.Role == cfg.Tenants[i].Role) {
					t.Errorf("tenant %s shares its Tenant or Role with the file's configuration", tn.Name)
				}
			}
			if s := fmt.Sprint(cfg.Tenants[0].Sources); s != "[10.0.0.1/32]" {
				t.Errorf("the file's configuration changed: web's Sources = %s", s)
			}
		})
	}
}

func TestParseSourcesReportsEveryItem(t *testing.T) {
	got := parseErrors(t, "c.yaml", `tenants:
  - name: web
    sources:
      - [10.0.0.1]
      - {image: nginx}
`)
	want := []string{
		`c.yaml:4: tenants[0].sources[0]: a source is an address, a CIDR block, {container: NAME}, {label: KEY=VALUE} or {service_account: NAMESPACE/NAME}, not a list`,
		`c.yaml:5: tenants[0].sources[1]: a source is an address, a CIDR block, {container: NAME}, {label: KEY=VALUE} or {service_account: NAMESPACE/NAME}, not "image"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestWithContainersNeverTrustsAContainer: a container whose address lies
// in server.trusted_proxies is a tenant's client, never a proxy, whether
// its address is served (as its tenant) or served as no tenant (two
// tenants' containers share it): either way its X-Forwarded-For must not
// choose a tenant.
func TestWithContainersNeverTrustsAContainer(t *testing.T) {
	cfg := parse(t, "c.yaml", `server:
  trusted_proxies: [172.30.0.0/24]
tenants:
  - name: victim
    sources: [10.0.0.1]
  - name: app
    sources: [{container: app}]
  - name: other
    sources: [{container: other}]
`)
	got, warnings := cfg.WithContainers([]tenants.Container{
		{ID: "a", Name: "app", Addrs: []netip.Addr{netip.MustParseAddr("172.30.0.5"), netip.MustParseAddr("172.30.0.7")}},
		{ID: "b", Name: "other", Addrs: []netip.Addr{netip.MustParseAddr("172.30.0.7")}},
	})
	for _, a := range []string{"172.30.0.5", "172.30.0.7"} {
		if containsAddr(got.Server.TrustedProxies, netip.MustParseAddr(a)) {
			t.Errorf("container address %s is still a trusted proxy: %v", a, got.Server.TrustedProxies)
		}
	}
	for _, a := range []string{"172.30.0.0", "172.30.0.4", "172.30.0.6", "172.30.0.200", "172.30.0.255"} {
		if !containsAddr(got.Server.TrustedProxies, netip.MustParseAddr(a)) {
			t.Errorf("%s, no container's, is no longer a trusted proxy: %v", a, got.Server.TrustedProxies)
		}
	}
	if containsAddr(got.Server.TrustedProxies, netip.MustParseAddr("172.31.0.1")) {
		t.Errorf("the trusted blocks grew: %v", got.Server.TrustedProxies)
	}
	want := []string{
		"container app's address 172.30.0.5 is inside server.trusted_proxies: a tenant's container is not trusted as a proxy, its X-Forwarded-For is ignored",
		"container app's address 172.30.0.7 is inside server.trusted_proxies: a tenant's container is not trusted as a proxy, its X-Forwarded-For is ignored",
		"address 172.30.0.7 belongs to containers of tenants app and other: served as neither",
	}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}
	if s := fmt.Sprint(cfg.Server.TrustedProxies); s != "[172.30.0.0/24]" {
		t.Errorf("the file's trusted_proxies changed: %s", s)
	}
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
