package tenants_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// launch is the instances' launch time in every test.
var launch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// parseErrors parses an invalid configuration and returns its error lines,
// failing the test when it parses or when an error lacks its file.
func parseErrors(t *testing.T, name, config string) []string {
	t.Helper()
	cfg, err := tenants.Parse(name, []byte(config), launch)
	if err == nil {
		t.Fatalf("Parse succeeded with %d tenants; want an error", len(cfg.Tenants))
	}
	if cfg != nil {
		t.Errorf("Parse returned a config with its error")
	}
	var errs tenants.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, not tenants.Errors: %v", err, err)
	}
	for _, e := range errs {
		if e.File != name {
			t.Errorf("error %q: File = %q, want %q", e, e.File, name)
		}
	}
	return strings.Split(err.Error(), "\n")
}

// invalidConfigs are configurations with their errors, exactly; FuzzParse
// starts from them too.
var invalidConfigs = []struct {
	name   string
	config string
	want   []string // the error's lines
}{
	{
		name: "unknown top-level key",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
tenant: {}
`,
		want: []string{`c.yaml:4: unknown key "tenant"`},
	},
	{
		name: "unknown key in a tenant",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    profile: dev
`,
		want: []string{`c.yaml:4: unknown key "profile"`},
	},
	{
		name: "unknown key in instance",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    instance:
      instance_type: t3.micro
      az: us-east-1a
`,
		want: []string{`c.yaml:6: unknown key "az"`},
	},
	{
		name: "string where a list is expected",
		config: `tenants:
  - name: web
    sources: 10.0.0.1
`,
		want: []string{"c.yaml:3: cannot unmarshal !!str `10.0.0.1` into []string"},
	},
	{
		name: "map where a string is expected",
		config: `tenants:
  - name: {first: web}
    sources: [10.0.0.1]
`,
		want: []string{"c.yaml:2: cannot unmarshal !!map into string"},
	},
	{
		name: "duration that is not one",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials: {profile: dev, duration: 3600}
`,
		want: []string{`c.yaml:4: "3600" is not a duration such as 90s, 15m or 1h`},
	},
	{
		name: "bad CIDR",
		config: `tenants:
  - name: web
    sources:
      - 10.0.0.0/33
`,
		want: []string{`c.yaml:4: tenants[0].sources[0]: "10.0.0.0/33" is not a CIDR block`},
	},
	{
		name: "not an address",
		config: `tenants:
  - name: web
    sources: [web.internal]
`,
		want: []string{`c.yaml:3: tenants[0].sources[0]: "web.internal" is not an IP address or CIDR block`},
	},
	{
		name: "host bits set",
		config: `tenants:
  - name: web
    sources:
      - 10.0.0.1
      - 172.30.0.10/24
`,
		want: []string{`c.yaml:5: tenants[0].sources[1]: "172.30.0.10/24" has host bits set; did you mean 172.30.0.0/24?`},
	},
	{
		name: "source listed twice in one tenant",
		config: `tenants:
  - name: web
    sources: [10.0.0.1, 10.0.0.1/32]
`,
		want: []string{`c.yaml:3: tenants[0].sources[1]: 10.0.0.1/32 is listed twice`},
	},
	{
		name: "same source in two tenants",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
  - name: worker
    sources:
      - 10.0.0.2
      - ::ffff:10.0.0.1
`,
		want: []string{`c.yaml:7: tenants[1].sources[1]: 10.0.0.1/32 is already a source of tenants[0] (web); a source must choose one tenant`},
	},
	{
		name: "duplicate tenant names",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
  - name: web
    sources: [10.0.0.2]
`,
		want: []string{`c.yaml:4: tenants[1].name: tenant "web" is already defined by tenants[0]`},
	},
	{
		name: "tenant without a name or sources",
		config: `tenants:
  - region: us-east-1
`,
		want: []string{
			`c.yaml:2: tenants[0].name: every tenant needs a name`,
			`c.yaml:2: tenants[0].sources: tenant "" needs at least one source: an address, a CIDR block or a container`,
		},
	},
	{
		name: "invalid tenant name",
		config: `tenants:
  - name: web/1
    sources: [10.0.0.1]
`,
		want: []string{`c.yaml:2: tenants[0].name: "web/1": use letters, digits, '.', '_' and '-' (at most 63)`},
	},
	{
		name: "invalid instance id",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    instance:
      instance_id: i-0123456789ABCDEF0
`,
		want: []string{`c.yaml:5: tenants[0].instance.instance_id: "i-0123456789ABCDEF0" is not an instance id (i- and 8 or 17 hex digits)`},
	},
	{
		name: "invalid availability zone",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    instance:
      availability_zone: us-east-1
`,
		want: []string{`c.yaml:5: tenants[0].instance.availability_zone: "us-east-1" is not an availability zone such as us-east-1a`},
	},
	{
		name: "zone contradicting the tenant's own region",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    region: eu-west-1
    instance:
      availability_zone: us-east-1a
`,
		want: []string{`c.yaml:6: tenants[0].instance.availability_zone: "us-east-1a" is not in the tenant's region eu-west-1`},
	},
	{
		name: "invalid region",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    region: Europe
`,
		want: []string{`c.yaml:4: tenants[0].region: "Europe" is not a region such as us-east-1`},
	},
	{
		name: "invalid private_ip",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    instance:
      private_ip: 10.0.0.256
`,
		want: []string{`c.yaml:5: tenants[0].instance.private_ip: "10.0.0.256" is not an IPv4 address`},
	},
	{
		name: "IPv6 private_ip",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    instance:
      private_ip: fd00::10
`,
		want: []string{`c.yaml:5: tenants[0].instance.private_ip: "fd00::10" is not an IPv4 address`},
	},
	{
		name: "private_ip outside its subnet",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    instance:
      private_ip: 10.1.0.10
      subnet_cidr: 10.0.0.0/24
`,
		want: []string{`c.yaml:5: tenants[0].instance.private_ip: 10.1.0.10 is outside the subnet 10.0.0.0/24`},
	},
	{
		name: "invalid public_ip",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    instance:
      public_ip: ec2-3-80-1-2
`,
		want: []string{`c.yaml:5: tenants[0].instance.public_ip: "ec2-3-80-1-2" is not an IPv4 address`},
	},
	{
		name: "invalid mac_address",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    instance:
      mac_address: 0e:49:61:0f:c3
`,
		want: []string{`c.yaml:5: tenants[0].instance.mac_address: "0e:49:61:0f:c3" is not a MAC address such as 0e:49:61:0f:c3:11`},
	},
	{
		name: "hop_limit 0 is the default but 65 is too many",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    imds: {hop_limit: 65}
`,
		want: []string{`c.yaml:4: tenants[0].imds.hop_limit: 65: must be between 1 and 64`},
	},
	{
		name: "negative hop_limit",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    imds:
      hop_limit: -1
`,
		want: []string{`c.yaml:5: tenants[0].imds.hop_limit: -1: must be between 1 and 64`},
	},
	{
		name: "tokens neither optional nor required",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    imds:
      tokens: v2
`,
		want: []string{`c.yaml:5: tenants[0].imds.tokens: "v2": must be optional or required`},
	},
	{
		name: "duration under 15m",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials:
      profile: dev
      duration: 10m
`,
		want: []string{`c.yaml:6: tenants[0].credentials.duration: 10m0s: STS issues credentials for 15m to 12h`},
	},
	{
		name: "duration over 12h",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials:
      profile: dev
      duration: 13h
`,
		want: []string{`c.yaml:6: tenants[0].credentials.duration: 13h0m0s: STS issues credentials for 15m to 12h`},
	},
	{
		name: "refresh_before equal to duration",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials:
      profile: dev
      duration: 30m
      refresh_before: 30m
`,
		want: []string{`c.yaml:7: tenants[0].credentials.refresh_before: 30m0s: must be positive and shorter than duration (30m0s)`},
	},
	{
		name: "refresh_before longer than the default duration",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials:
      profile: dev
      refresh_before: 2h
`,
		want: []string{`c.yaml:6: tenants[0].credentials.refresh_before: 2h0m0s: must be positive and shorter than duration (1h0m0s)`},
	},
	{
		name: "negative refresh_before",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials:
      profile: dev
      refresh_before: -5m
`,
		want: []string{`c.yaml:6: tenants[0].credentials.refresh_before: -5m0s: must be positive and shorter than duration (1h0m0s)`},
	},
	{
		name: "bad role_arn",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials:
      role_arn: arn:aws:iam::1111:role/web
`,
		want: []string{`c.yaml:5: tenants[0].credentials.role_arn: "arn:aws:iam::1111:role/web" is not a role ARN such as arn:aws:iam::111122223333:role/web`},
	},
	{
		name: "user ARN as role_arn",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials:
      role_arn: arn:aws:iam::111122223333:user/web
`,
		want: []string{`c.yaml:5: tenants[0].credentials.role_arn: "arn:aws:iam::111122223333:user/web" is not a role ARN such as arn:aws:iam::111122223333:role/web`},
	},
	{
		name: "role_name without credentials",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials:
      role_name: web
`,
		want: []string{`c.yaml:5: tenants[0].credentials.role_name: a role needs credentials: set profile or role_arn`},
	},
	{
		name: "user_data and user_data_file both set",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    user_data: "#!/bin/sh"
    user_data_file: web.sh
`,
		want: []string{`c.yaml:5: tenants[0].user_data_file: set user_data or user_data_file, not both`},
	},
	{
		name: "user_data over 16 KiB",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    user_data: ` + strings.Repeat("x", tenants.MaxUserData+1) + `
`,
		want: []string{`c.yaml:4: tenants[0].user_data: 16385 bytes: EC2 allows at most 16384`},
	},
	{
		name: "mirror names no instance",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    instance:
      mirror: {region: eu-west-1}
`,
		want: []string{`c.yaml:5: tenants[0].instance.mirror: name the instance to mirror: set instance_id or filters`},
	},
	{
		name: "mirror by id and filters, bad values",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    region: eu-west-1
    instance:
      mirror:
        instance_id: i-123
        filters: ["tag:Name", "instance-state-name=running,,stopped"]
        region: eu-west-9x
        refresh: 500ms
`,
		want: []string{
			`c.yaml:7: tenants[0].instance.mirror.instance_id: "i-123" is not an instance id (i- and 8 or 17 hex digits)`,
			`c.yaml:8: tenants[0].instance.mirror.filters: set instance_id or filters, not both`,
			`c.yaml:8: tenants[0].instance.mirror.filters[0]: "tag:Name" is not a filter such as tag:Name=web-1 or instance-state-name=running (Name=Value[,Value2])`,
			`c.yaml:8: tenants[0].instance.mirror.filters[1]: "instance-state-name=running,,stopped" has an empty value; separate values with single commas`,
			`c.yaml:9: tenants[0].instance.mirror.region: "eu-west-9x" is not a region such as eu-west-1`,
			`c.yaml:9: tenants[0].instance.mirror.region: eu-west-9x differs from the tenant's region eu-west-1: a mirrored tenant is where its instance is; remove the tenant's region`,
			`c.yaml:10: tenants[0].instance.mirror.refresh: 500ms: at least 1s (DescribeInstances is throttled; minutes are usual)`,
		},
	},
	{
		name: "defaults carrying name and sources",
		config: `defaults:
  name: web
  sources: [10.0.0.1]
tenants:
  - name: worker
    sources: [10.0.0.2]
`,
		want: []string{
			`c.yaml:2: defaults.name: a name belongs to one tenant, not to defaults`,
			`c.yaml:3: defaults.sources: sources belong to one tenant, not to defaults`,
		},
	},
	{
		name: "zero tenants",
		config: `tenants: []
`,
		want: []string{`c.yaml:1: tenants: at least one tenant is required`},
	},
	{
		name:   "empty file",
		config: ``,
		want:   []string{`c.yaml: tenants: at least one tenant is required`},
	},
	{
		name: "two YAML documents",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
---
tenants:
  - name: worker
    sources: [10.0.0.2]
`,
		want: []string{`c.yaml:4: a configuration is one YAML document; remove the second one`},
	},
	{
		name: "YAML syntax error",
		config: `tenants:
  - name: web
    sources: [10.0.0.1
`,
		want: []string{`c.yaml:2: did not find expected ',' or ']'`},
	},
	{
		name:   "tab indentation",
		config: "tenants:\n\t- name: web\n",
		want:   []string{`c.yaml:2: found character that cannot start any token`},
	},
	{
		name: "bad listen address",
		config: `server:
  listen: ["localhost:8080"]
  trusted_proxies: [192.0.2.0/24, 10.0.0.1/8]
tenants:
  - name: web
    sources: [10.0.0.1]
`,
		want: []string{
			`c.yaml:2: server.listen[0]: "localhost:8080" is not an address and port such as 127.0.0.1:8080 or [::1]:8080`,
			`c.yaml:3: server.trusted_proxies[1]: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?`,
		},
	},
}

func TestParseInvalid(t *testing.T) {
	for _, tt := range invalidConfigs {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErrors(t, "c.yaml", tt.config)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestParseReportsEveryError checks that one pass finds every problem, and
// that they come in the order of the file, not of validation.
func TestParseReportsEveryError(t *testing.T) {
	config := `tenants:
  - name: web
    sources: [10.0.0.1/8]
    imds: {tokens: always, hop_limit: 100}
    instance:
      instance_id: i-123
      public_ip: 1.2.3
  - name: web
    sources: [10.0.0.2]
    credentials:
      role_arn: arn:aws:iam::111122223333:role/
defaults:
  name: everyone
server:
  admin_listen: ":9180"
`
	want := []string{
		`c.yaml:3: tenants[0].sources[0]: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?`,
		`c.yaml:4: tenants[0].imds.tokens: "always": must be optional or required`,
		`c.yaml:4: tenants[0].imds.hop_limit: 100: must be between 1 and 64`,
		`c.yaml:6: tenants[0].instance.instance_id: "i-123" is not an instance id (i- and 8 or 17 hex digits)`,
		`c.yaml:7: tenants[0].instance.public_ip: "1.2.3" is not an IPv4 address`,
		`c.yaml:8: tenants[1].name: tenant "web" is already defined by tenants[0]`,
		`c.yaml:11: tenants[1].credentials.role_arn: "arn:aws:iam::111122223333:role/" is not a role ARN such as arn:aws:iam::111122223333:role/web`,
		`c.yaml:13: defaults.name: a name belongs to one tenant, not to defaults`,
		`c.yaml:15: server.admin_listen: ":9180" is not an address and port such as 127.0.0.1:8080 or [::1]:8080`,
	}
	got := parseErrors(t, "c.yaml", config)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestParseUnknownKeysAll checks that the strict decoder reports every unknown
// key, not only the first.
func TestParseUnknownKeysAll(t *testing.T) {
	config := `tenants:
  - name: web
    sources: [10.0.0.1]
    colour: blue
    instance:
      size: large
extra: true
`
	want := []string{
		`c.yaml:4: unknown key "colour"`,
		`c.yaml:6: unknown key "size"`,
		`c.yaml:7: unknown key "extra"`,
	}
	got := parseErrors(t, "c.yaml", config)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestParseUserDataFileErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big.sh"), []byte(strings.Repeat("#", tenants.MaxUserData+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "config.yaml")
	tests := []struct {
		name   string
		config string
		want   []string // substrings of the only error line
	}{
		{
			name: "missing file",
			config: `tenants:
  - name: web
    sources: [10.0.0.1]
    user_data_file: missing.sh
`,
			want: []string{name + ":4: tenants[0].user_data_file: ", filepath.Join(dir, "missing.sh"), "no such file"},
		},
		{
			name: "file over 16 KiB",
			config: `tenants:
  - name: web
    sources: [10.0.0.1]
    user_data_file: big.sh
`,
			want: []string{name + ":4: tenants[0].user_data_file: " + filepath.Join(dir, "big.sh") + " is larger than the 16384 bytes EC2 allows"},
		},
		{
			name: "endless file",
			config: `tenants:
  - name: web
    sources: [10.0.0.1]
    user_data_file: /dev/zero
`,
			want: []string{name + ":4: tenants[0].user_data_file: /dev/zero is larger than the 16384 bytes EC2 allows"},
		},
		{
			name: "directory",
			config: `tenants:
  - name: web
    sources: [10.0.0.1]
    user_data_file: .
`,
			want: []string{name + ":4: tenants[0].user_data_file: ", "is a directory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.config, "/dev/zero") {
				if _, err := os.Stat("/dev/zero"); err != nil {
					t.Skip("no /dev/zero here")
				}
			}
			got := parseErrors(t, name, tt.config)
			if len(got) != 1 {
				t.Fatalf("errors:\n  %s\nwant one", strings.Join(got, "\n  "))
			}
			for _, w := range tt.want {
				if !strings.Contains(got[0], w) {
					t.Errorf("error %q does not contain %q", got[0], w)
				}
			}
		})
	}
}

func TestFieldErrorKey(t *testing.T) {
	tests := []struct {
		name string
		err  tenants.FieldError
		want string
	}{
		{"file, line and key", tenants.FieldError{File: "c.yaml", Line: 7, Path: []any{"tenants", 1, "instance", "instance_id"}, Msg: "bad"}, "c.yaml:7: tenants[1].instance.instance_id: bad"},
		{"no line", tenants.FieldError{File: "c.yaml", Path: []any{"tenants"}, Msg: "none"}, "c.yaml: tenants: none"},
		{"no key", tenants.FieldError{File: "c.yaml", Line: 3, Msg: "syntax"}, "c.yaml:3: syntax"},
		{"index at the root", tenants.FieldError{Path: []any{2, "name"}, Msg: "m"}, "[2].name: m"},
		{"nothing but a message", tenants.FieldError{Msg: "m"}, "m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "config.yaml")
	if _, err := tenants.Load(name, launch); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want ErrNotExist", err)
	}
	if err := os.WriteFile(name, []byte("tenants:\n  - name: web\n    sources: [10.0.0.1]\n    region: mars\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := tenants.Load(name, launch)
	if want := name + `:4: tenants[0].region: "mars" is not a region such as us-east-1`; err == nil || err.Error() != want {
		t.Errorf("Load: %v, want %s", err, want)
	}
}

func TestTrustedProxyInsideATenantIsRefused(t *testing.T) {
	_, err := tenants.Parse("c.yaml", []byte("server:\n  trusted_proxies: [172.17.0.0/16]\ntenants:\n  - name: ci\n    sources: [172.17.0.0/16]\n  - name: admin\n    sources: [10.9.9.9]\n"), launch)
	if err == nil || !strings.Contains(err.Error(), `c.yaml:2: server.trusted_proxies[0]: 172.17.0.0/16 overlaps 172.17.0.0/16, a source of tenant "ci"`) {
		t.Fatalf("error %v, want the overlap refused with file:line", err)
	}
}
