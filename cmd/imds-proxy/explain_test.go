package main

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// explainConfig has nested prefixes (a /8, a /16 inside it, a /24 and a /32
// inside that), a trusted proxy block, an IPv6 block and a tenant whose
// container token works from anywhere.
const explainConfig = `server:
  trusted_proxies: ["198.51.100.0/24"]
tenants:
  - name: office
    sources: ["10.0.0.0/8"]
    instance: {instance_id: i-0a0000000000000a1, availability_zone: us-east-1a}
  - name: team
    sources: ["10.1.0.0/16", "fd00:1::/64"]
    imds: {tokens: required, hop_limit: 2}
    instance: {instance_id: i-0a0000000000000a2, availability_zone: eu-west-1b}
    credentials: {profile: dev, role_arn: "arn:aws:iam::111122223333:role/team"}
  - name: build
    sources: ["10.1.2.3", "10.1.2.0/24"]
    imds: {enabled: false}
    instance: {instance_id: i-0a0000000000000a3}
  - name: desktop
    sources: ["192.168.65.3"]
    instance: {instance_id: i-0a0000000000000a5}
    credentials: {profile: dev}
    container_credentials: {token: "desktop-token-0123456789", any_source: true}
`

func explainTestConfig(t *testing.T) *tenants.Config {
	t.Helper()
	cfg, err := tenants.Parse("explain.yaml", []byte(explainConfig), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestExplain(t *testing.T) {
	cfg := explainTestConfig(t)
	tests := []struct {
		name, addr string
		want       string
		noTenant   bool
	}{
		{name: "host beats every wider source", addr: "10.1.2.3", want: `10.1.2.3 is served as tenant build.
  matched source  10.1.2.3/32 (the longest prefix that contains it)
  also contains   10.1.2.0/24 of tenant build: shadowed by a longer prefix
  also contains   10.1.0.0/16 of tenant team: shadowed by a longer prefix
  also contains   10.0.0.0/8 of tenant office: shadowed by a longer prefix
  instance        i-0a0000000000000a3 in us-east-1a
  role            none: iam/ answers 404
  IMDS            disabled: every path answers 403
`},
		{name: "ipv4-mapped is shown unmapped", addr: "::ffff:10.1.9.9", want: `::ffff:10.1.9.9 is the IPv4-mapped form of 10.1.9.9 and is looked up as 10.1.9.9.
10.1.9.9 is served as tenant team.
  matched source  10.1.0.0/16 (the longest prefix that contains it)
  also contains   10.0.0.0/8 of tenant office: shadowed by a longer prefix
  instance        i-0a0000000000000a2 in eu-west-1b
  role            team (profile dev, assumes arn:aws:iam::111122223333:role/team)
  IMDS            required: IMDSv2 only, IMDSv1 answers 401; hop limit 2
`},
		{name: "trusted proxy", addr: "198.51.100.7", noTenant: true, want: `198.51.100.7 is a trusted proxy (server.trusted_proxies 198.51.100.0/24): its X-Forwarded-For is believed, so a request
it forwards is served as the tenant of the right-most address there that is not a trusted proxy;
only its requests without X-Forwarded-For are served as below.
198.51.100.7: no tenant lists this address: the IMDS listener answers it 403 Forbidden on every path.
Only the container credentials endpoint serves it, to a request with the token of desktop
(container_credentials.any_source).
`},
		{name: "ipv6 zone is ignored", addr: "fd00:1::5%eth0", want: `The zone of fd00:1::5%eth0 is ignored: it is looked up as fd00:1::5.
fd00:1::5 is served as tenant team.
  matched source  fd00:1::/64 (the longest prefix that contains it)
  instance        i-0a0000000000000a2 in eu-west-1b
  role            team (profile dev, assumes arn:aws:iam::111122223333:role/team)
  IMDS            required: IMDSv2 only, IMDSv1 answers 401; hop limit 2
`},
		{name: "no tenant", addr: "192.0.2.1", noTenant: true, want: `192.0.2.1: no tenant lists this address: the IMDS listener answers it 403 Forbidden on every path.
Only the container credentials endpoint serves it, to a request with the token of desktop
(container_credentials.any_source).
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := explain(&out, cfg, netip.MustParseAddr(tc.addr))
			if tc.noTenant != errors.Is(err, errNoTenant) {
				t.Errorf("explain(%s) error = %v, want no tenant: %v", tc.addr, err, tc.noTenant)
			}
			if out.String() != tc.want {
				t.Errorf("explain(%s):\n%s\nwant:\n%s", tc.addr, out.String(), tc.want)
			}
		})
	}
}

func TestExplainNoTenantWithoutAnySource(t *testing.T) {
	cfg, err := tenants.Parse("one.yaml", []byte("tenants:\n  - name: web\n    sources: [\"127.0.0.2\"]\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := explain(&out, cfg, netip.MustParseAddr("127.0.0.9")); !errors.Is(err, errNoTenant) {
		t.Errorf("error = %v, want errNoTenant", err)
	}
	if want := "127.0.0.9: no tenant lists this address: the IMDS listener answers it 403 Forbidden on every path.\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

func TestRunExplainArgs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(explainConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantOut string // a substring of stdout
		wantErr string // a substring of the error; "" for none
	}{
		{"flags first", []string{"--config", path, "10.1.2.3"}, "served as tenant build", ""},
		{"flags after the address", []string{"10.1.2.3", "--config", path}, "served as tenant build", ""},
		{"address with a port, as logs show it", []string{"--config", path, "10.1.2.3:43210"}, "served as tenant build", ""},
		{"bracketed ipv6", []string{"--config", path, "[fd00:1::5]"}, "served as tenant team", ""},
		{"unknown address exits 1", []string{"--config", path, "192.0.2.1"}, "no tenant lists this address", "explain 192.0.2.1: no tenant lists it"},
		{"no config", []string{"10.1.2.3"}, "", "want --config FILE and one address"},
		{"two addresses", []string{"--config", path, "10.1.2.3", "10.1.2.4"}, "", "want --config FILE and one address"},
		{"not an address", []string{"--config", path, "web"}, "", `"web" is not an IP address`},
		{"invalid config", []string{"--config", path + ".missing", "10.1.2.3"}, "", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), append([]string{"explain"}, tc.args...), func(string) string { return "" }, &out, &errOut)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout %q does not contain %q", out.String(), tc.wantOut)
			}
		})
	}
}

func TestInstanceLineOfAMirror(t *testing.T) {
	tests := []struct {
		name string
		t    *tenants.Tenant
		want string
	}{
		{"by id", &tenants.Tenant{Mirror: &tenants.MirrorSpec{InstanceID: "i-0123456789abcdef0"}},
			"- (mirrors i-0123456789abcdef0)"},
		{"by filters", &tenants.Tenant{Instance: tenants.Instance{ID: "i-0123456789abcdef0", AvailabilityZone: "eu-west-1a"},
			Mirror: &tenants.MirrorSpec{Filters: []tenants.Filter{{Name: "tag:Name", Values: []string{"web"}}}}},
			"i-0123456789abcdef0 in eu-west-1a (mirrors the instance matching tag:Name=web)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := instanceLine(tc.t); got != tc.want {
				t.Errorf("instanceLine = %q, want %q", got, tc.want)
			}
		})
	}
}
