package handlers_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// TestContainerInsideTrustedProxiesIsNoProxy reproduces the impersonation:
// a Docker container whose address lies in server.trusted_proxies named
// another tenant's address in X-Forwarded-For and was served as that
// tenant. It is served as its own tenant, whatever it forwards, and its
// token PUTs with X-Forwarded-For are refused as any client's are.
func TestContainerInsideTrustedProxiesIsNoProxy(t *testing.T) {
	file := parseConfig(t, `server:
  trusted_proxies: [172.30.0.0/24]
tenants:
  - name: victim
    sources: [10.0.0.1]
    instance: {instance_id: i-0000000000000000a}
  - name: app
    sources: [{container: app}]
    instance: {instance_id: i-0000000000000000b}
`)
	cfg, _ := file.WithContainers([]tenants.Container{{ID: "c1", Name: "app", Addrs: []netip.Addr{netip.MustParseAddr("172.30.0.5")}}})
	srv, err := handlers.New(cfg, handlers.Options{Now: newClock().Now, Signer: testSigner(t)})
	if err != nil {
		t.Fatal(err)
	}
	w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", "172.30.0.5:4000", "X-Forwarded-For", "10.0.0.1")
	if w.Code != http.StatusOK || w.Body.String() != "i-0000000000000000b" {
		t.Fatalf("container with X-Forwarded-For: %d %q, want 200 i-0000000000000000b (its own tenant)", w.Code, w.Body)
	}
	if w := serve(srv, http.MethodPut, "/latest/api/token", "172.30.0.5:4000", "X-Forwarded-For", "10.0.0.1", headerTTL, "60"); w.Code != http.StatusForbidden {
		t.Fatalf("token PUT relayed by a container: %d, want 403", w.Code)
	}
	// A proxy in the same block that is no container is still believed.
	if w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", "172.30.0.200:4000", "X-Forwarded-For", "10.0.0.1"); w.Body.String() != "i-0000000000000000a" {
		t.Fatalf("trusted proxy: %d %q, want the victim's instance", w.Code, w.Body)
	}
}
