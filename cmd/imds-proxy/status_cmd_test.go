package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

var statusGenerated = time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)

// statusFixture has a tenant of each kind a row must show: ready with
// credentials, broken credentials, no role, a mirror, and credentials
// still served while their refresh fails.
func statusFixture() handlers.Status {
	return handlers.Status{Generated: statusGenerated, Tenants: []handlers.TenantStatus{
		{Name: "web", Sources: []string{"127.0.0.2/32"}, InstanceID: "i-0a1b2c3d4e5f60001", AvailabilityZone: "eu-west-1b",
			Role: "web", IMDS: "required", Tokens: 3, Ready: true,
			Credentials: &handlers.CredentialState{Valid: true, KeyID: "****************WXYZ",
				Expiration: statusGenerated.Add(54*time.Minute + 12*time.Second), Refreshed: statusGenerated.Add(-6 * time.Minute), Fetches: 1},
			Events: []handlers.EventView{
				{Type: "spot-interruption", Action: "terminate", Notice: statusGenerated.Add(-time.Minute), Time: statusGenerated.Add(time.Minute), Active: true},
				{Type: "autoscaling", State: "Terminated", Notice: statusGenerated.Add(time.Hour), Time: statusGenerated.Add(time.Hour)}}},
		{Name: "broken", Sources: []string{"127.0.0.3/32", "fd00:3::/64"}, InstanceID: "i-0a1b2c3d4e5f60002", AvailabilityZone: "us-east-1a",
			Role: "broken", IMDS: "optional",
			Problems: []handlers.Problem{{Tenant: "broken", What: "credentials",
				Reason: "NoCredentialProfile: the AWS profile \"missing\" does not exist; check ~/.aws/config"}},
			Credentials: &handlers.CredentialState{LastError: "NoCredentialProfile: the AWS profile \"missing\" does not exist; check ~/.aws/config", Fetches: 2, Failures: 2}},
		{Name: "plain", Sources: []string{"127.0.0.4/32"}, InstanceID: "i-0a1b2c3d4e5f60003", AvailabilityZone: "ap-southeast-2c",
			IMDS: "disabled", Ready: true},
		{Name: "mirrored", Sources: []string{"10.1.0.0/16"}, InstanceID: "i-0fedcba9876543210", AvailabilityZone: "eu-west-1a",
			IMDS: "optional", Ready: false,
			Problems:    []handlers.Problem{{Tenant: "mirrored", What: "credentials", Reason: "not fetched yet"}},
			Credentials: &handlers.CredentialState{},
			Mirror:      &handlers.MirrorState{Mirrored: true, Instance: "i-0fedcba9876543210", Refreshed: statusGenerated}},
		{Name: "stale", Sources: []string{"10.2.0.0/16"}, InstanceID: "i-0a1b2c3d4e5f60005", AvailabilityZone: "eu-west-1a",
			Role: "stale", IMDS: "optional", Ready: true,
			Credentials: &handlers.CredentialState{Valid: true, Expiration: statusGenerated.Add(90 * time.Second),
				LastError: "ServiceUnavailable: STS did not answer"},
			Mirror: &handlers.MirrorState{LastError: "InvalidInstanceID.NotFound: i-0aaaaaaaaaaaaaaaa"}},
	}}
}

const statusFixtureTable = `127.0.0.1:9180: 5 tenants, 3 ready (as of 2026-11-30T01:00:00Z)
TENANT    SOURCES                   INSTANCE             ZONE             ROLE    IMDS      CREDENTIALS                                      MIRROR                                           TOKENS  READY  EVENTS
web       127.0.0.2/32              i-0a1b2c3d4e5f60001  eu-west-1b       web     required  expires in 54m12s                                -                                                3       yes    spot-interruption terminate at 01:01:00Z (active); autoscaling Terminated at 02:00:00Z (pending)
broken    127.0.0.3/32,fd00:3::/64  i-0a1b2c3d4e5f60002  us-east-1a       broken  optional  error: NoCredentialProfile: the AWS profile "m…  -                                                0       no     -
plain     127.0.0.4/32              i-0a1b2c3d4e5f60003  ap-southeast-2c  -       disabled  -                                                -                                                0       yes    -
mirrored  10.1.0.0/16               i-0fedcba9876543210  eu-west-1a       -       optional  not fetched yet                                  i-0fedcba9876543210                              0       no     -
stale     10.2.0.0/16               i-0a1b2c3d4e5f60005  eu-west-1a       stale   optional  expires in 1m30s (refresh failing)               error: InvalidInstanceID.NotFound: i-0aaaaaaaa…  0       yes    -

not ready:
  broken: credentials: NoCredentialProfile: the AWS profile "missing" does not exist; check ~/.aws/config
  mirrored: credentials: not fetched yet
`

func TestWriteStatus(t *testing.T) {
	var out bytes.Buffer
	if err := writeStatus(&out, "127.0.0.1:9180", statusFixture()); err != nil {
		t.Fatal(err)
	}
	if out.String() != statusFixtureTable {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), statusFixtureTable)
	}
}

func TestCredentialsCell(t *testing.T) {
	now := statusGenerated
	tests := []struct {
		name string
		c    *handlers.CredentialState
		want string
	}{
		{"no role", nil, "-"},
		{"valid", &handlers.CredentialState{Valid: true, Expiration: now.Add(time.Hour + 2*time.Minute + 500*time.Millisecond)}, "expires in 1h2m1s"},
		{"expired but still marked valid", &handlers.CredentialState{Valid: true, Expiration: now.Add(-3 * time.Second)}, "expired 3s ago"},
		{"valid while the refresh fails", &handlers.CredentialState{Valid: true, Expiration: now.Add(time.Minute), LastError: "x"}, "expires in 1m0s (refresh failing)"},
		{"never fetched", &handlers.CredentialState{}, "not fetched yet"},
		{"error on one line, cut", &handlers.CredentialState{LastError: "AssumeRoleUnauthorizedAccess:\nUser: arn:aws:iam::123456789012:user/dev is not authorized"},
			"error: AssumeRoleUnauthorizedAccess: User: arn…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := credentialsCell(tc.c, now); got != tc.want {
				t.Errorf("credentialsCell = %q, want %q", got, tc.want)
			}
		})
	}
}

// statusServer serves st as /status.json, as the admin listener would.
func statusServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestRunStatus(t *testing.T) {
	body, err := json.MarshalIndent(statusFixture(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	ok := statusServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	notFound := statusServer(t, http.NotFound)
	hang := statusServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string // stdout, exactly; "" to skip
		wantErr string // a substring of the error; "" for none
	}{
		{name: "table", args: []string{"--admin", ok}, want: strings.Replace(statusFixtureTable, "127.0.0.1:9180", ok, 1)},
		{name: "admin from the environment", env: map[string]string{adminEnv: ok}, want: strings.Replace(statusFixtureTable, "127.0.0.1:9180", ok, 1)},
		{name: "admin as a URL", args: []string{"--admin", "http://" + ok + "/"}, want: strings.Replace(statusFixtureTable, "127.0.0.1:9180", "http://"+ok+"/", 1)},
		{name: "json is the server's bytes", args: []string{"--admin", ok, "--json"}, want: string(body)},
		{name: "unreachable", args: []string{"--admin", closed},
			wantErr: "cannot reach the admin listener at http://" + closed + ": dial tcp " + closed + ": connect: connection refused; is imds-proxy running"},
		{name: "no answer in time", args: []string{"--admin", hang, "--timeout", "100ms"}, wantErr: "no answer within 100ms"},
		{name: "not an imds-proxy", args: []string{"--admin", notFound}, wantErr: "/status.json: 404 Not Found"},
		{name: "stray argument", args: []string{"web"}, wantErr: `unexpected argument "web"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			getenv := func(k string) string { return tc.env[k] }
			err := run(t.Context(), append([]string{"status"}, tc.args...), getenv, &out, &errOut)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if tc.want != "" && out.String() != tc.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), tc.want)
			}
		})
	}
}
