package tenants_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
		want: []string{`c.yaml:4: unknown key "tenant"; did you mean "tenants"?`},
	},
	{
		name: "unknown key in a tenant",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    profile: dev
`,
		want: []string{`c.yaml:4: tenants[0]: unknown key "profile"; did you mean credentials.profile?`},
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
		want: []string{`c.yaml:6: tenants[0].instance: unknown key "az"`},
	},
	{
		name: "string where a list is expected",
		config: `tenants:
  - name: web
    sources: 10.0.0.1
`,
		want: []string{`c.yaml:3: tenants[0].sources: "10.0.0.1" is not a list: write [10.0.0.1]`},
	},
	{
		name: "map where a string is expected",
		config: `tenants:
  - name: {first: web}
    sources: [10.0.0.1]
`,
		want: []string{`c.yaml:2: tenants[0].name: a mapping is not a string`},
	},
	{
		name: "duration that is not one",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials: {profile: dev, duration: 3600}
`,
		want: []string{`c.yaml:4: tenants[0].credentials.duration: 3600 is not a duration: write it with a unit, e.g. 1h or 3600s`},
	},
	{
		name: "word where a number belongs",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    imds: {hop_limit: "two"}
`,
		want: []string{`c.yaml:4: tenants[0].imds.hop_limit: "two" is not a number`},
	},
	{
		name: "fraction where a whole number belongs",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    limits: {burst: 2.5, requests_per_second: fast}
`,
		want: []string{
			`c.yaml:4: tenants[0].limits.burst: 2.5 is not a whole number`,
			`c.yaml:4: tenants[0].limits.requests_per_second: "fast" is not a number`,
		},
	},
	{
		name: "number too large for its field",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    imds: {hop_limit: 99999999999999999999}
`,
		want: []string{`c.yaml:4: tenants[0].imds.hop_limit: 99999999999999999999 is too large`},
	},
	{
		name: "neither true nor false",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    imds:
      enabled: maybe
`,
		want: []string{`c.yaml:5: tenants[0].imds.enabled: "maybe" is not true or false`},
	},
	{
		name: "duration in words",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    instance:
      mirror: {instance_id: i-0123456789abcdef0, refresh: 10 minutes}
`,
		want: []string{`c.yaml:5: tenants[0].instance.mirror.refresh: "10 minutes" is not a duration such as 90s, 15m or 1h`},
	},
	{
		name: "quoted minutes without a unit",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials: {profile: dev, refresh_before: "900"}
`,
		want: []string{`c.yaml:4: tenants[0].credentials.refresh_before: "900" is not a duration: write it with a unit, e.g. 15m or 900s`},
	},
	{
		name: "list where a duration belongs",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials:
      profile: dev
      duration: [1h]
`,
		want: []string{`c.yaml:6: tenants[0].credentials.duration: a list is not a duration`},
	},
	{
		name: "misspelt key",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    imds:
      hop_limt: 3
`,
		want: []string{`c.yaml:5: tenants[0].imds: unknown key "hop_limt"; did you mean "hop_limit"?`},
	},
	{
		name: "key that belongs one block down in several blocks",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    tags: {Name: web}
`,
		want: []string{`c.yaml:4: tenants[0]: unknown key "tags"; did you mean imds.tags, credentials.tags or instance.tags?`},
	},
	{
		name: "key set twice",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    region: us-east-1
    region: eu-west-1
    instance:
      tags: {Name: web, Name: api}
`,
		want: []string{
			`c.yaml:5: tenants[0].region: already set on line 4; a key appears once in a mapping`,
			`c.yaml:7: tenants[0].instance.tags.Name: already set on line 7; a key appears once in a mapping`,
		},
	},
	{
		name: "list where the file's mapping belongs",
		config: `- name: web
  sources: [10.0.0.1]
`,
		want: []string{`c.yaml:1: a list is not a mapping`},
	},
	{
		name: "tenant that is not a mapping",
		config: `tenants:
  - web
  - name: worker
    sources: [10.0.0.2]
    imds: {hop_limit: 65}
`,
		want: []string{
			`c.yaml:2: tenants[0]: "web" is not a mapping`,
			`c.yaml:5: tenants[1].imds.hop_limit: 65: must be between 1 and 64`,
		},
	},
	{
		name: "a default that does not decode is reported once, not once per tenant",
		config: `defaults:
  credentials: {profile: dev, duration: 7200}
tenants:
  - name: web
    sources: [10.0.0.1]
    credentials: {refresh_before: 90m}
  - name: worker
    sources: [10.0.0.2]
    credentials: {duration: 1h, refresh_before: 90m}
`,
		want: []string{
			`c.yaml:2: defaults.credentials.duration: 7200 is not a duration: write it with a unit, e.g. 2h or 7200s`,
			`c.yaml:9: tenants[1].credentials.refresh_before: 1h30m0s: must be positive and shorter than duration (1h0m0s)`,
		},
	},
	{
		name: "no check of what depends on a value that did not decode",
		config: `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials: {profile: [dev], role_name: web}
    container_credentials: {token: 0123456789abcdef}
    instance: {key_name: {name: k}, public_key: ssh-ed25519 AAAA}
  - name: [worker]
    container_credentials: {token: [t], any_source: true}
  - sources: [10.0.0.3]
`,
		want: []string{
			`c.yaml:4: tenants[0].credentials.profile: a list is not a string`,
			`c.yaml:6: tenants[0].instance.key_name: a mapping is not a string`,
			`c.yaml:7: tenants[1].sources: tenant "" needs at least one source: an address, a CIDR block or a container`,
			`c.yaml:7: tenants[1].name: a list is not a string`,
			`c.yaml:8: tenants[1].container_credentials.token: a list is not a string`,
			`c.yaml:9: tenants[2].name: every tenant needs a name`,
		},
	},
	{
		name: "alias used where its anchor's value is wrong",
		config: `defaults:
  credentials: &creds {profile: dev, duration: 10m}
tenants:
  - name: web
    sources: [10.0.0.1]
    credentials: {<<: *creds, duration: 30m}
  - name: worker
    sources: [10.0.0.2]
    credentials: *creds
`,
		want: []string{`c.yaml:2: tenants[1].credentials.duration: 10m0s: STS issues credentials for 15m to 12h`},
	},
	{
		name: "merge of something that is not a mapping",
		config: `tenants:
  - name: web
    sources: &src [10.0.0.1]
    instance: {<<: *src}
  - name: worker
    sources: [10.0.0.2]
    instance: &loop {instance_type: t3.micro, <<: *loop}
`,
		want: []string{
			`c.yaml:3: tenants[0].instance: << merges a mapping or a list of mappings (such as <<: *defaults), not "10.0.0.1"`,
			`c.yaml:7: tenants[1].instance: << merges a mapping that holds this one`,
		},
	},
	{
		name: "unknown anchor",
		config: `tenants:
  - name: web
    sources: *src
`,
		want: []string{`c.yaml: unknown anchor 'src' referenced`},
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
			`c.yaml:2: server.listen[0]: "localhost:8080" is not an address and port such as 127.0.0.1:8080, [::1]:8080 or :8080 (every address)`,
			`c.yaml:3: server.trusted_proxies[1]: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?`,
		},
	},
	{
		name: "bad pod identity listen address",
		config: `server:
  pod_identity_listen: ["169.254.170.23:80", "fd00:ec2::23:80"]
tenants:
  - name: web
    sources: [10.0.0.1]
`,
		want: []string{
			`c.yaml:2: server.pod_identity_listen[1]: "fd00:ec2::23:80" is not an address and port such as 127.0.0.1:8080, [::1]:8080 or :8080 (every address)`,
		},
	},
	{
		name:   "pod identity listen is a list",
		config: "server:\n  pod_identity_listen: 169.254.170.23:80\ntenants:\n  - name: web\n    sources: [10.0.0.1]\n",
		want:   []string{`c.yaml:2: server.pod_identity_listen: "169.254.170.23:80" is not a list: write [169.254.170.23:80]`},
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
  admin_listen: "9180"
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
		`c.yaml:15: server.admin_listen: "9180" is not an address and port such as 127.0.0.1:8080, [::1]:8080 or :8080 (every address)`,
	}
	got := parseErrors(t, "c.yaml", config)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestParseReportsEveryKindOfMistake: a mistake of one kind (a value that
// does not decode) must not hide one of another (a conflict between
// tenants), and each is reported once, with its line and key, alone or
// among the others.
func TestParseReportsEveryKindOfMistake(t *testing.T) {
	const valid = `server:
  listen: ["127.0.0.1:8080"]
tenants:
  - name: web
    sources: [10.0.0.1]
    imds:
      hop_limit: 2
    credentials:
      profile: dev
      duration: 1h
  - name: worker
    sources: [10.0.0.2]
    imds:
      hop_limit: 2
  - name: api
    sources: [10.0.0.3]
`
	type mistake struct {
		line int // of valid, replaced by text
		text string
		want string // the error it makes
	}
	var (
		wrongType   = mistake{7, `      hop_limit: "two"`, `c.yaml:7: tenants[0].imds.hop_limit: "two" is not a number`}
		badDuration = mistake{10, `      duration: 3600`, `c.yaml:10: tenants[0].credentials.duration: 3600 is not a duration: write it with a unit, e.g. 1h or 3600s`}
		unknownKey  = mistake{14, `      hop_limt: 2`, `c.yaml:14: tenants[1].imds: unknown key "hop_limt"; did you mean "hop_limit"?`}
		sameName    = mistake{15, `  - name: web`, `c.yaml:15: tenants[2].name: tenant "web" is already defined by tenants[0]`}
		sameSource  = mistake{16, `    sources: [10.0.0.1]`, `c.yaml:16: tenants[2].sources[0]: 10.0.0.1/32 is already a source of tenants[0] (web); a source must choose one tenant`}
	)
	tests := []struct {
		name     string
		mistakes []mistake // in the order of their lines
	}{
		{"wrong type", []mistake{wrongType}},
		{"bad duration", []mistake{badDuration}},
		{"unknown key", []mistake{unknownKey}},
		{"duplicate tenant name", []mistake{sameName}},
		{"duplicate source", []mistake{sameSource}},
		{"all five", []mistake{wrongType, badDuration, unknownKey, sameName, sameSource}},
	}
	parse(t, "c.yaml", valid)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := strings.Split(valid, "\n")
			var want []string
			for _, m := range tt.mistakes {
				lines[m.line-1] = m.text
				want = append(want, m.want)
			}
			got := parseErrors(t, "c.yaml", strings.Join(lines, "\n"))
			if !slices.Equal(got, want) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// TestParseYAMLAsTheLibraryReadsIt: the decoder is strict about keys and
// types, not about YAML: anchors, aliases and merge keys work, any scalar is
// a string, yes is true, and a whole number may be written 2.0.
func TestParseYAMLAsTheLibraryReadsIt(t *testing.T) {
	cfg := parse(t, "c.yaml", `defaults:
  imds: {tokens: required, enabled: yes}
tenants:
  - &web
    name: web
    sources: [10.0.0.1]
    instance: {account_id: 111122223333, tags: &tags {Team: core, Tier: 1}}
    limits: {requests_per_second: 10, burst: 2.0}
  - <<: *web
    name: worker
    sources: [10.0.0.2]
    instance: {tags: {<<: *tags, Tier: 2}}
`)
	web, worker := cfg.Tenants[0], cfg.Tenants[1]
	if !web.IMDS.Enabled || !web.IMDS.TokensRequired {
		t.Errorf("web's IMDS options %+v, want enabled with tokens required", web.IMDS)
	}
	if web.Instance.AccountID != "111122223333" {
		t.Errorf("web's account %q, want 111122223333", web.Instance.AccountID)
	}
	for _, tn := range cfg.Tenants {
		if tn.Limits.RequestsPerSecond != 10 || tn.Limits.Burst != 2 {
			t.Errorf("%s's limits %+v, want 10 a second, bursts of 2", tn.Name, tn.Limits)
		}
	}
	if got, want := worker.Instance.Tags, map[string]string{"Team": "core", "Tier": "2"}; !maps.Equal(got, want) {
		t.Errorf("worker's tags %v, want %v: merged, its own Tier winning", got, want)
	}
}

// TestParseAliasBomb: a few lines whose merges stand for billions of
// values are refused in one error, without expanding them.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("anchors:\n  l0: &l0 {k: v}\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 9), ", "))
	}
	b.WriteString("tenants:\n  - name: web\n    sources: [10.0.0.1]\n    instance: {tags: *l12}\n")
	got := parseErrors(t, "c.yaml", b.String())
	if len(got) != 2 || got[0] != `c.yaml:1: unknown key "anchors"` || !strings.Contains(got[1], "aliases expand this file") {
		t.Errorf("errors:\n  %s\nwant the unknown key and one about aliases", strings.Join(got, "\n  "))
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
		`c.yaml:4: tenants[0]: unknown key "colour"`,
		`c.yaml:6: tenants[0].instance: unknown key "size"`,
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
