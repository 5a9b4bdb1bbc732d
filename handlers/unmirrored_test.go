package handlers_test

import (
	"net/http"
	"testing"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

const mirrorConfig = `tenants:
  - name: web
    sources: [10.0.0.1]
    credentials: {profile: dev}
    instance:
      mirror: {instance_id: i-0123456789abcdef0, region: eu-west-1}
      instance_type: t3.large
      hostname: web.internal
`

// TestUnmirroredTenantInventsNothing: before its first copy a mirrored
// tenant serves its static values and answers 404 for every value only the
// copy can give, identity document and signatures included; a published
// copy then serves everything.
func TestUnmirroredTenantInventsNothing(t *testing.T) {
	srv, _ := newServer(t, mirrorConfig, handlers.Options{})
	const src = "10.0.0.1:40000"
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/latest/meta-data/instance-type", 200, "t3.large"},
		{"/latest/meta-data/hostname", 200, "web.internal"},
		{"/latest/meta-data/placement/region", 200, "eu-west-1"},
		{"/latest/meta-data/instance-id", 404, ""},
		{"/latest/meta-data/ami-id", 404, ""},
		{"/latest/meta-data/ami-launch-index", 404, ""},
		{"/latest/meta-data/mac", 404, ""},
		{"/latest/meta-data/local-ipv4", 404, ""},
		{"/latest/meta-data/placement/availability-zone", 404, ""},
		{"/latest/meta-data/network/interfaces/macs/", 404, ""},
		{"/latest/meta-data/identity-credentials/ec2/info", 404, ""},
		{"/latest/dynamic/instance-identity/document", 404, ""},
		{"/latest/dynamic/instance-identity/signature", 404, ""},
		{"/latest/dynamic/instance-identity/pkcs7", 404, ""},
		{"/latest/dynamic/instance-identity/rsa2048", 404, ""},
		{"/latest/dynamic/fws/instance-monitoring", 404, ""},
	}
	for _, tt := range tests {
		w := serve(srv, http.MethodGet, tt.path, src)
		if w.Code != tt.status || (tt.status == 200 && w.Body.String() != tt.body) {
			t.Errorf("%s = %d %q, want %d %q", tt.path, w.Code, w.Body.String(), tt.status, tt.body)
		}
	}

	cfg := parseConfig(t, mirrorConfig)
	configured := cfg.Tenants[0]
	copied := configured.WithMirror(&tenants.Mirrored{
		Instance: tenants.Instance{ID: "i-0123456789abcdef0", Type: "t3.small", AMIID: "ami-0123456789abcdef0",
			Region: "eu-west-1", AvailabilityZone: "eu-west-1b", Interfaces: []tenants.Interface{{MAC: "0a:00:00:00:00:01"}}},
		IMDS: tenants.IMDSOptions{Enabled: true, TokensRequired: true, HopLimit: 1},
	})
	if !srv.Publish("web", copied) {
		t.Fatal("Publish of a configured tenant failed")
	}
	for path, want := range map[string]int{
		"/latest/meta-data/instance-id": 401, // the copy's HttpTokens=required
	} {
		if w := serve(srv, http.MethodGet, path, src); w.Code != want {
			t.Errorf("after the copy %s = %d, want %d", path, w.Code, want)
		}
	}
	tok := mint(t, srv, src, "60")
	for path, want := range map[string]string{
		"/latest/meta-data/instance-id":   "i-0123456789abcdef0",
		"/latest/meta-data/instance-type": "t3.large", // the static value wins
		"/latest/meta-data/mac":           "0a:00:00:00:00:01",
	} {
		w := serve(srv, http.MethodGet, path, src, "X-aws-ec2-metadata-token", tok)
		if w.Code != 200 || w.Body.String() != want {
			t.Errorf("after the copy %s = %d %q, want %q", path, w.Code, w.Body.String(), want)
		}
	}
	if w := serve(srv, http.MethodGet, "/latest/dynamic/instance-identity/signature", src, "X-aws-ec2-metadata-token", tok); w.Code != 200 {
		t.Errorf("signature after the copy: %d", w.Code)
	}
}
