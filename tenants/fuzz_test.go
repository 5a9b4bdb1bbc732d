package tenants_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// FuzzParse feeds Parse arbitrary bytes. Whatever they are, Parse must not
// panic, must locate every error in its file, and must never accept a tenant
// that the resolver or the handlers could not serve.
func FuzzParse(f *testing.F) {
	for _, tt := range invalidConfigs {
		if len(tt.config) > 4<<10 {
			continue // the user-data limit: minimizing its mutants costs the run
		}
		f.Add([]byte(tt.config))
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "tenants.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(tenantConfig("")))
	f.Add([]byte(twoTenants("web", "worker")))
	f.Add([]byte(tenantConfig("defaults: {region: eu-west-1, instance: {tags: {Team: core}}}\n",
		"instance: {availability_zone: eu-west-1b, private_ip: 10.0.7.10, public_ip: 3.80.1.2, tags: {Name: web}}",
		"credentials: {profile: dev, role_arn: 'arn:aws:iam::111122223333:role/team/web', duration: 15m}",
		`user_data: "#cloud-config\n"`)))
	f.Add([]byte(tenantConfig("", "instance: {subnet_cidr: 10.9.8.0/28, vpc_cidr: 10.0.0.0/8}")))
	f.Add([]byte("tenants:\n  - name: web\n    sources: [\"::ffff:10.0.0.0/120\", fd00::/64]\n"))
	f.Add([]byte("tenants:\n  - &t {name: a, sources: [10.0.0.1]}\n  - <<: *t\n    name: b\n"))
	f.Add([]byte(tenantConfig("", "instance: {mirror: {filters: [tag:Name=web-1, instance-state-name=running], refresh: 1m}, instance_type: t3.large}")))

	// A directory of its own, so that relative user_data_file paths the
	// fuzzer invents resolve to nothing of the repository's.
	name := filepath.Join(f.TempDir(), "fuzz.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if strings.Contains(string(data), "/dev/") {
			t.Skip("device files as user data block or never end; not the parser's business")
		}
		cfg, err := tenants.Parse(name, data, launch)
		if err != nil {
			if cfg != nil {
				t.Errorf("a config with the error %v", err)
			}
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			var errs tenants.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not tenants.Errors: %v", err, err)
			}
			if len(errs) == 0 {
				t.Fatal("an empty Errors")
			}
			for _, e := range errs {
				if e.File != name {
					t.Errorf("error %q has File %q, want %q", e, e.File, name)
				}
				if e.Msg == "" {
					t.Errorf("error %q has no message", e)
				}
			}
			return
		}
		if len(cfg.Tenants) == 0 {
			t.Fatal("a config without tenants")
		}
		for _, tn := range cfg.Tenants {
			in := tn.Instance
			if m := tn.Mirror; m != nil {
				// Known only once copied: what it is must be said.
				if (m.InstanceID == "") == (len(m.Filters) == 0) || m.Refresh < tenants.MinMirrorRefresh {
					t.Errorf("tenant %q: mirror %+v", tn.Name, m)
				}
				continue
			}
			if len(tn.Sources) == 0 && len(tn.Containers()) == 0 {
				t.Errorf("tenant %q has no source", tn.Name)
			}
			for _, p := range tn.Sources {
				if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() {
					t.Errorf("tenant %q: source %s is not a masked, unmapped prefix", tn.Name, p)
				}
			}
			if !strings.HasPrefix(in.ID, "i-") {
				t.Errorf("tenant %q: instance id %q", tn.Name, in.ID)
			}
			if in.Region == "" || !strings.HasPrefix(in.AvailabilityZone, in.Region) {
				t.Errorf("tenant %q: region %q, zone %q", tn.Name, in.Region, in.AvailabilityZone)
			}
			ip := in.PrivateIP()
			if !ip.IsValid() || !ip.Is4() {
				t.Errorf("tenant %q: local-ipv4 %v", tn.Name, ip)
			}
			if p := in.Primary(); !p.SubnetIPv4CIDR.Contains(ip) {
				t.Errorf("tenant %q: local-ipv4 %v outside subnet %v", tn.Name, ip, p.SubnetIPv4CIDR)
			}
			if in.LocalHostname == "" || in.Primary().MAC == "" {
				t.Errorf("tenant %q: hostname %q, MAC %q", tn.Name, in.LocalHostname, in.Primary().MAC)
			}
			if len(tn.UserData()) > tenants.MaxUserData {
				t.Errorf("tenant %q: %d bytes of user data", tn.Name, len(tn.UserData()))
			}
		}
	})
}
