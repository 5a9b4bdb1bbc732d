package tenants_test

import (
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

func TestSpecKey(t *testing.T) {
	base := tenants.CredentialSpec{Profile: "dev", Duration: time.Hour, SessionName: "i-1"}
	other := base
	other.SessionName = "i-2"
	if base.Key() != other.Key() {
		t.Fatal("without a role, the session name must not split the cache entry")
	}
	withRole := base
	withRole.RoleARN = "arn:aws:iam::111122223333:role/web"
	otherRole := withRole
	otherRole.SessionName = "i-2"
	if withRole.Key() == otherRole.Key() {
		t.Fatal("with a role, different session names are different credentials")
	}
	tagged, tagged2 := withRole, withRole
	tagged.Tags = map[string]string{"a": "1", "b": "2"}
	tagged2.Tags = map[string]string{"b": "2", "a": "1"}
	if tagged.Key() != tagged2.Key() {
		t.Fatal("tag order must not matter")
	}
}

func TestMaskKeyID(t *testing.T) {
	if got := tenants.MaskKeyID("ASIAEXAMPLEKEY1234"); got != "**************1234" {
		t.Fatalf("MaskKeyID = %s", got)
	}
	if got := tenants.MaskKeyID("ab"); got != "****" {
		t.Fatalf("MaskKeyID(short) = %s", got)
	}
}

func TestSpecKeyShowsNoExternalID(t *testing.T) {
	spec := tenants.CredentialSpec{Profile: "dev", RoleARN: "arn:aws:iam::111122223333:role/web", SessionName: "s1",
		ExternalID: "very-private-external-id", Policy: `{"Statement":[]}`, Duration: time.Hour}
	other := spec
	other.ExternalID = "another-external-id"
	if strings.Contains(spec.Key(), spec.ExternalID) || strings.Contains(spec.Key(), "Statement") {
		t.Fatalf("key shows the external id or the policy: %s", spec.Key())
	}
	if spec.Key() == other.Key() {
		t.Fatal("different external ids must be different keys")
	}
}

func TestRenameKeepsTheInstanceProfileInStep(t *testing.T) {
	cfg, err := tenants.Parse("c.yaml", []byte("tenants:\n  - name: a\n    sources: [127.0.0.2]\n    credentials: {profile: dev}\n  - name: b\n    sources: [127.0.0.3]\n    credentials: {profile: dev, role_name: Developer}\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	renamed, built := cfg.Tenants[0].Role, cfg.Tenants[1].Role
	renamed.Rename("Developer")
	if renamed.Name != "Developer" || renamed.InstanceProfileARN != built.InstanceProfileARN || renamed.InstanceProfileID != built.InstanceProfileID {
		t.Fatalf("renamed %+v, want what building with role_name gives: %+v", renamed, built)
	}
}

func TestParseMockCredentials(t *testing.T) {
	cases := []struct {
		name, creds, wantRole string
	}{
		{"mock alone", `{mock: true}`, tenants.MockRoleName},
		{"named by role_name", `{mock: true, role_name: app}`, "app"},
		{"named by role_arn", `{mock: true, role_arn: "arn:aws:iam::111122223333:role/web"}`, "web"},
		{"named by the profile, never read", `{mock: true, profile: dev}`, "dev"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tenants.Parse("c.yaml", []byte("tenants:\n  - {name: web, sources: [127.0.0.2], credentials: "+tc.creds+"}\n"), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			tn := cfg.Tenants[0]
			if tn.Role == nil || tn.Role.Name != tc.wantRole || tn.Role.FromProfile || !tn.Credentials.Mock {
				t.Fatalf("role %+v, spec %+v; want a mock role named %s", tn.Role, tn.Credentials, tc.wantRole)
			}
			if real := (tenants.CredentialSpec{Profile: "dev", Duration: tn.Credentials.Duration}); real.Key() == tn.Credentials.Key() {
				t.Errorf("a mock spec shares its key with a profile's")
			}
		})
	}
}
