//go:build e2e

package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestRoleNameAgreesEverywhere: check, explain, status and the server name
// a tenant's role alike for every kind of profile — they once disagreed for
// SSO profiles and for roles named after the profile's own role_arn,
// because each loaded the configuration its own way.
func TestRoleNameAgreesEverywhere(t *testing.T) {
	e2eLoopback(t)
	dir := t.TempDir()
	awsConfig := filepath.Join(dir, "aws-config")
	credentials := filepath.Join(dir, "aws-credentials")
	write(t, credentials, "[static]\naws_access_key_id = AKIAEXAMPLEKEY000001\naws_secret_access_key = not-a-secret\n")
	write(t, awsConfig, `[profile static]
region = us-east-1
[profile chained]
role_arn = arn:aws:iam::111122223333:role/from-profile
source_profile = static
[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
[profile sso]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = PowerUser
[profile process]
credential_process = /bin/false
`)
	config := filepath.Join(dir, "imds-proxy.yaml")
	write(t, config, `server: {listen: ["127.0.0.1:0"], admin_listen: "127.0.0.1:0"}
tenants:
  - {name: static, sources: [127.0.0.11], credentials: {profile: static}}
  - {name: chained, sources: [127.0.0.12], credentials: {profile: chained}}
  - {name: sso, sources: [127.0.0.13], credentials: {profile: sso}}
  - {name: process, sources: [127.0.0.14], credentials: {profile: process}}
  - {name: named, sources: [127.0.0.15], credentials: {profile: sso, role_name: chosen}}
`)
	want := map[string]string{"static": "static", "chained": "from-profile", "sso": "PowerUser", "process": "process", "named": "chosen"}
	env := append(e2eEnv(t), "AWS_CONFIG_FILE="+awsConfig, "AWS_SHARED_CREDENTIALS_FILE="+credentials)

	code, out, errOut := e2eRunEnv(t, env, "check", "--config", config)
	if code != 0 {
		t.Fatalf("check: exit %d: %s", code, errOut)
	}
	checkRoles := columnByTenant(t, out, "ROLE")

	p := e2eStart(t, env, "--config", config)
	code, out, errOut = e2eRunEnv(t, env, "status", "--admin", p.adminAddr)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	statusRoles := columnByTenant(t, out, "ROLE")

	for i, name := range []string{"static", "chained", "sso", "process", "named"} {
		src := fmt.Sprintf("127.0.0.%d", 11+i)
		resp, err := httpClientFrom(t, src, &tokenRecorder{}).Get("http://" + p.imdsAddr + "/latest/meta-data/iam/security-credentials/")
		if err != nil {
			t.Fatal(err)
		}
		served, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		code, explained, errOut := e2eRunEnv(t, env, "explain", "--config", config, src)
		if code != 0 {
			t.Fatalf("explain %s: exit %d: %s", src, code, errOut)
		}
		got := map[string]string{"server": string(served), "check": checkRoles[name], "status": statusRoles[name]}
		for who, role := range got {
			if role != want[name] {
				t.Errorf("tenant %s: %s names the role %q, want %q", name, who, role, want[name])
			}
		}
		if !strings.Contains(explained, want[name]) {
			t.Errorf("tenant %s: explain does not name the role %q:\n%s", name, want[name], explained)
		}
	}
}

// columnByTenant reads a table printed by check or status (columns
// aligned under their headings): the named column of each tenant's row.
func columnByTenant(t *testing.T, table, column string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	start, end := -1, -1
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, "TENANT ") {
			start = strings.Index(l, " "+column+" ") + 1
			if start == 0 {
				t.Fatalf("no %s column in:\n%s", column, table)
			}
			end = start + len(column)
			for end < len(l) && l[end] == ' ' {
				end++
			}
			continue
		}
		if start < 0 || len(l) < end || l == "" || l[0] == ' ' {
			continue
		}
		rows[strings.Fields(l)[0]] = strings.TrimSpace(l[start:end])
	}
	if len(rows) == 0 {
		t.Fatalf("no rows under %s in:\n%s", column, table)
	}
	return rows
}
