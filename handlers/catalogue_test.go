package handlers_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

const fullMAC = "0e:49:61:0f:c3:11"

// TestCatalogue checks each path of the fully specified tenant against the
// attribute it was configured with.
func TestCatalogue(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	const ifc = "/latest/meta-data/network/interfaces/macs/" + fullMAC + "/"
	tests := []struct{ path, want string }{
		{"/latest/meta-data/ami-id", "ami-0123456789abcdef0"},
		{"/latest/meta-data/ami-launch-index", "0"},
		{"/latest/meta-data/ami-manifest-path", "(unknown)"},
		{"/latest/meta-data/instance-id", "i-0a1b2c3d4e5f60001"},
		{"/latest/meta-data/instance-type", "m5.large"},
		{"/latest/meta-data/instance-action", "none"},
		{"/latest/meta-data/instance-life-cycle", "on-demand"},
		{"/latest/meta-data/hostname", "ip-10-0-0-10.eu-west-1.compute.internal"},
		{"/latest/meta-data/local-hostname", "ip-10-0-0-10.eu-west-1.compute.internal"},
		{"/latest/meta-data/local-ipv4", "10.0.0.10"},
		{"/latest/meta-data/public-ipv4", "54.170.0.10"},
		{"/latest/meta-data/public-hostname", "ec2-54-170-0-10.eu-west-1.compute.amazonaws.com"},
		{"/latest/meta-data/mac", fullMAC},
		{"/latest/meta-data/profile", "default-hvm"},
		{"/latest/meta-data/reservation-id", "r-0123456789abcdef0"},
		{"/latest/meta-data/security-groups", "web\nssh"},
		{"/latest/meta-data/block-device-mapping/ami", "/dev/xvda"},
		{"/latest/meta-data/block-device-mapping/root", "/dev/xvda"},
		{"/latest/meta-data/events/maintenance/scheduled", "[]"},
		{"/latest/meta-data/placement/availability-zone", "eu-west-1b"},
		{"/latest/meta-data/placement/availability-zone-id", "euw1-az2"},
		{"/latest/meta-data/placement/region", "eu-west-1"},
		{"/latest/meta-data/placement/group-name", "pg-web"},
		{"/latest/meta-data/placement/partition-number", "2"},
		{"/latest/meta-data/services/domain", "amazonaws.com"},
		{"/latest/meta-data/services/partition", "aws"},
		{"/latest/meta-data/public-keys/", "0=dev-key"},
		{"/latest/meta-data/public-keys", "0=dev-key"},
		{"/latest/meta-data/public-keys/0/", "openssh-key"},
		{"/latest/meta-data/public-keys/0", "openssh-key"},
		// Real IMDS ends the key with a newline, as an authorized_keys line.
		{"/latest/meta-data/public-keys/0/openssh-key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0 dev\n"},
		{"/latest/meta-data/tags/", "instance/"},
		{"/latest/meta-data/tags/instance/", "Env\nName"},
		{"/latest/meta-data/tags/instance", "Env\nName"},
		{"/latest/meta-data/tags/instance/Name", "web"},
		{"/latest/meta-data/tags/instance/Env", "prod"},
		{"/latest/meta-data/iam/security-credentials/", "web-role"},
		{"/latest/meta-data/iam/security-credentials", "web-role"},
		{"/latest/dynamic/fws/instance-monitoring", "disabled"},
		{ifc + "mac", fullMAC},
		{ifc + "device-number", "0"},
		{ifc + "network-card-index", "0"},
		{ifc + "interface-id", "eni-0123456789abcdef0"},
		{ifc + "owner-id", "444455556666"},
		{ifc + "local-hostname", "ip-10-0-0-10.eu-west-1.compute.internal"},
		{ifc + "public-hostname", "ec2-54-170-0-10.eu-west-1.compute.amazonaws.com"},
		{ifc + "local-ipv4s", "10.0.0.10"},
		{ifc + "public-ipv4s", "54.170.0.10"},
		{ifc + "ipv4-associations/", "54.170.0.10"},
		{ifc + "ipv4-associations/54.170.0.10", "10.0.0.10"},
		{ifc + "security-groups", "web\nssh"},
		{ifc + "security-group-ids", "sg-0123456789abcdef0\nsg-0123456789abcdef1"},
		{ifc + "subnet-id", "subnet-0123456789abcdef0"},
		{ifc + "subnet-ipv4-cidr-block", "10.0.0.0/24"},
		{ifc + "vpc-id", "vpc-0123456789abcdef0"},
		{ifc + "vpc-ipv4-cidr-block", "10.0.0.0/16"},
		{ifc + "vpc-ipv4-cidr-blocks", "10.0.0.0/16"},
	}
	for _, tc := range tests {
		t.Run(strings.TrimPrefix(tc.path, "/latest/"), func(t *testing.T) {
			w := serve(srv, http.MethodGet, tc.path, srcFull)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", w.Code)
			}
			if w.Body.String() != tc.want {
				t.Errorf("body %q, want %q", w.Body, tc.want)
			}
		})
	}
}

// TestCatalogueAbsent checks what a tenant without an attribute, or with
// tags hidden, does not serve.
func TestCatalogueAbsent(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	tests := []struct{ name, src, path string }{
		{"tags hidden", srcNoTags, "/latest/meta-data/tags/"},
		{"tag hidden", srcNoTags, "/latest/meta-data/tags/instance/Name"},
		{"no iam without credentials", srcNoTags, "/latest/meta-data/iam/"},
		{"no iam info without credentials", srcNoTags, "/latest/meta-data/iam/info"},
		{"unknown role", srcFull, "/latest/meta-data/iam/security-credentials/other-role"},
		{"role name with a suffix", srcFull, "/latest/meta-data/iam/security-credentials/web-role-x"},
		{"extended credentials", srcFull, "/latest/meta-data/iam/security-credentials-extended/"},
		{"extended credentials of the role", srcFull, "/latest/meta-data/iam/security-credentials-extended/web-role"},
		{"unknown tag", srcFull, "/latest/meta-data/tags/instance/Owner"},
		{"second public key", srcFull, "/latest/meta-data/public-keys/1/openssh-key"},
		{"partition number outside a partition group", srcNoTags, "/latest/meta-data/placement/partition-number"},
		{"group name outside a placement group", srcNoTags, "/latest/meta-data/placement/group-name"},
		{"ipv6 without one", srcFull, "/latest/meta-data/ipv6"},
		// The shared layout names a MAC and a role by placeholder; asked
		// for literally, a placeholder names nothing.
		{"interface by placeholder", srcFull, "/latest/meta-data/network/interfaces/macs/%000/mac"},
		{"role by placeholder", srcFull, "/latest/meta-data/iam/security-credentials/%01"},
		{"another tenant's interface", srcNoTags, "/latest/meta-data/network/interfaces/macs/" + fullMAC + "/mac"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if w := serve(srv, http.MethodGet, tc.path, tc.src); w.Code != http.StatusNotFound {
				t.Fatalf("status %d (body %q), want 404", w.Code, w.Body)
			}
		})
	}
	listing := serve(srv, http.MethodGet, "/latest/meta-data/", srcNoTags).Body.String()
	for _, name := range []string{"tags/", "iam/", "public-keys/", "public-ipv4", "public-hostname"} {
		if contains(listing, name) {
			t.Errorf("notags' meta-data/ lists %s:\n%s", name, listing)
		}
	}
	for _, name := range []string{"ami-id", "instance-id", "local-ipv4", "mac", "placement/", "services/", "network/"} {
		if !contains(listing, name) {
			t.Errorf("notags' meta-data/ lacks %s:\n%s", name, listing)
		}
	}
}

func contains(listing, name string) bool {
	for _, n := range strings.Split(listing, "\n") {
		if n == name {
			return true
		}
	}
	return false
}

// TestIAMPresence: iam/ exists exactly when the tenant has credentials, from
// a profile or a role, and lists the role under its name.
func TestIAMPresence(t *testing.T) {
	tests := []struct {
		name, credentials string
		role              string // "" when iam/ must be absent
	}{
		{"role arn", "{role_arn: arn:aws:iam::111122223333:role/path/app-role}", "app-role"},
		{"profile", "{profile: dev-sso}", "dev-sso"},
		{"profile and role name", "{profile: dev-sso, role_name: web}", "web"},
		{"role arn and role name", "{role_arn: arn:aws:iam::111122223333:role/app-role, role_name: web}", "web"},
		{"none", "{}", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newServer(t, "tenants:\n  - name: a\n    sources: [\"127.0.0.2\"]\n    credentials: "+tc.credentials+"\n", handlers.Options{})
			listing := serve(srv, http.MethodGet, "/latest/meta-data/", srcFull).Body.String()
			iam := serve(srv, http.MethodGet, "/latest/meta-data/iam/security-credentials/", srcFull)
			if tc.role == "" {
				if contains(listing, "iam/") || iam.Code != http.StatusNotFound {
					t.Fatalf("iam/ listed or served (%d) without credentials", iam.Code)
				}
				return
			}
			if !contains(listing, "iam/") {
				t.Errorf("meta-data/ does not list iam/")
			}
			if iam.Code != http.StatusOK || iam.Body.String() != tc.role {
				t.Fatalf("security-credentials/: %d %q, want %q", iam.Code, iam.Body, tc.role)
			}
			if w := serve(srv, http.MethodGet, "/latest/meta-data/iam/security-credentials/"+tc.role, srcFull); w.Code != http.StatusOK {
				t.Errorf("the role's credentials: status %d", w.Code)
			}
			if w := serve(srv, http.MethodGet, "/latest/meta-data/iam/info", srcFull); w.Code != http.StatusOK {
				t.Errorf("iam/info: status %d", w.Code)
			}
		})
	}
}

// TestIAMInfo checks iam/info against what the Go SDK accepts.
func TestIAMInfo(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	w := serve(srv, http.MethodGet, "/latest/meta-data/iam/info", srcFull)
	var info struct {
		Code, LastUpdated, InstanceProfileArn, InstanceProfileId string
	}
	if err := json.Unmarshal(w.Body.Bytes(), &info); err != nil {
		t.Fatalf("iam/info is not JSON: %v\n%s", err, w.Body)
	}
	if info.Code != "Success" {
		t.Errorf("Code %q, want Success", info.Code)
	}
	if info.LastUpdated != "2024-05-01T12:00:00Z" {
		t.Errorf("LastUpdated %q", info.LastUpdated)
	}
	if want := "arn:aws:iam::444455556666:instance-profile/web-role"; info.InstanceProfileArn != want {
		t.Errorf("InstanceProfileArn %q, want %q", info.InstanceProfileArn, want)
	}
	if !regexp.MustCompile(`^AIPA[A-Z2-7]{17}$`).MatchString(info.InstanceProfileId) {
		t.Errorf("InstanceProfileId %q is not shaped like AIPA...", info.InstanceProfileId)
	}
}

// TestCredentialsUnavailable: with no credentials to give, the credential
// paths answer 200 with a Code other than Success, in IMDS's failure shape,
// which every SDK reports as an error.
func TestCredentialsUnavailable(t *testing.T) {
	srv, clock := newServer(t, testConfig, handlers.Options{})
	clock.Advance(90 * time.Minute)
	for _, path := range []string{
		"/latest/meta-data/iam/security-credentials/web-role",
		"/latest/meta-data/iam/security-credentials/web-role/",
	} {
		t.Run(path, func(t *testing.T) {
			w := serve(srv, http.MethodGet, path, srcFull)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", w.Code)
			}
			if got := w.Header().Get("Content-Type"); got != "text/plain" {
				t.Errorf("Content-Type %q", got)
			}
			var f struct{ Code, LastUpdated, Message string }
			if err := json.Unmarshal(w.Body.Bytes(), &f); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, w.Body)
			}
			if f.Code == "" || f.Code == "Success" {
				t.Errorf("Code %q, want an error code", f.Code)
			}
			if f.Message == "" {
				t.Errorf("no Message saying what to do")
			}
			if f.LastUpdated != "2024-05-01T13:30:00Z" {
				t.Errorf("LastUpdated %q, want the clock's 2024-05-01T13:30:00Z", f.LastUpdated)
			}
			if !strings.HasPrefix(w.Body.String(), "{\n  \"Code\" : ") || strings.HasSuffix(w.Body.String(), "\n") {
				t.Errorf("not in IMDS's JSON style:\n%s", w.Body)
			}
		})
	}
}
