package handlers_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// TestLoadKeepsARemovedTenantsTokensForAWhile: a configuration caught
// half-written, or an edit undone, removes a tenant and brings it back;
// its clients' IMDSv2 tokens must survive that. A tenant gone for longer
// than the grace period loses them, as before.
func TestLoadKeepsARemovedTenantsTokensForAWhile(t *testing.T) {
	srv, clock := newServer(t, testConfig, handlers.Options{})
	without := parseConfig(t, testConfig)
	without.Tenants = slices.DeleteFunc(without.Tenants, func(tn *tenants.Tenant) bool { return tn.Name == "required" })
	load := func(cfg *tenants.Config) {
		t.Helper()
		if err := srv.Load(cfg); err != nil {
			t.Fatal(err)
		}
	}
	get := func(token string) int {
		return serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcRequired, "X-aws-ec2-metadata-token", token).Code
	}

	token := mint(t, srv, srcRequired, "21600")
	load(without)
	clock.Advance(time.Minute)
	load(without) // a reload in between keeps the grace running
	clock.Advance(time.Minute)
	load(parseConfig(t, testConfig))
	if c := get(token); c != http.StatusOK {
		t.Fatalf("token of a tenant back after 2m: status %d, want 200", c)
	}

	load(without)
	clock.Advance(6 * time.Minute)
	load(without)
	load(parseConfig(t, testConfig))
	if c := get(token); c != http.StatusUnauthorized {
		t.Fatalf("token of a tenant back after 6m: status %d, want 401", c)
	}
}
