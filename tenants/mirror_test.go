package tenants_test

import (
	"net/netip"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in   string
		want tenants.Filter
		err  bool
	}{
		{"tag:Name=web-1", tenants.Filter{Name: "tag:Name", Values: []string{"web-1"}}, false},
		{"instance-state-name=running,stopped", tenants.Filter{Name: "instance-state-name", Values: []string{"running", "stopped"}}, false},
		{"tag:Env=a=b", tenants.Filter{Name: "tag:Env", Values: []string{"a=b"}}, false},
		{" vpc-id = vpc-0abc ", tenants.Filter{Name: "vpc-id", Values: []string{"vpc-0abc"}}, false},
		{"tag:Name", tenants.Filter{}, true},
		{"=web", tenants.Filter{}, true},
		{"tag:Name=", tenants.Filter{}, true},
		{"instance-state-name=running,", tenants.Filter{}, true},
	}
	for _, tt := range tests {
		got, err := tenants.ParseFilter(tt.in)
		if (err != nil) != tt.err || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseFilter(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestMirrorSpecFromConfig(t *testing.T) {
	tn := parseOne(t, readFile(t, "testdata/mirrored.yaml"))
	m := tn.Mirror
	if m == nil || m.InstanceID != "i-0123456789abcdef0" || m.Region != "eu-west-1" || m.Profile != "prod-ro" || m.Refresh != 30*time.Second {
		t.Fatalf("mirror spec %+v", m)
	}
	// Before the first copy: only what the configuration states.
	in := tn.Instance
	if in.ID != "" || in.AMIID != "" || in.AvailabilityZone != "" || in.AccountID != "" || in.Region != "eu-west-1" {
		t.Errorf("unmirrored instance invents values: %+v", in)
	}
	if in.Type != "t3.large" || in.PrivateIP() != netip.MustParseAddr("10.20.1.99") || in.Primary().MAC != "" {
		t.Errorf("unmirrored instance lacks its static values: %+v", in)
	}
	if tn.Credentials.SessionName != "i-0123456789abcdef0" {
		t.Errorf("session name %q, want the mirrored instance id", tn.Credentials.SessionName)
	}

	byTag := parseOne(t, tenantConfig("", "credentials: {profile: dev}", "instance: {mirror: {filters: [tag:Name=web-1]}}"))
	if byTag.Mirror.Profile != "dev" || byTag.Mirror.Refresh != tenants.DefaultMirrorRefresh || byTag.Mirror.Region != "" {
		t.Errorf("defaults of a mirror: %+v", byTag.Mirror)
	}
	if byTag.Credentials.SessionName != "imds-proxy-web" {
		t.Errorf("session name %q", byTag.Credentials.SessionName)
	}
}

func TestStaticTenantUnchangedByTheRefactor(t *testing.T) {
	// Static values still override derived ones through the same Apply.
	tn := parseOne(t, tenantConfig("", "instance: {private_ip: 10.0.7.10, public_ip: 3.80.1.2, availability_zone: eu-west-1b, block_device_mapping: {root: /dev/sda1}}"))
	in := tn.Instance
	if in.Region != "eu-west-1" || in.LocalHostname != "ip-10-0-7-10.eu-west-1.compute.internal" ||
		in.PublicHostname != "ec2-3-80-1-2.eu-west-1.compute.amazonaws.com" || tn.Mirror != nil {
		t.Errorf("derived instance %+v", in)
	}
	if want := map[string]string{"root": "/dev/sda1"}; !reflect.DeepEqual(in.BlockDevices, want) {
		t.Errorf("block devices %v, want %v (a static map replaces the derived default)", in.BlockDevices, want)
	}
}

// readFile reads a test's input.
func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
