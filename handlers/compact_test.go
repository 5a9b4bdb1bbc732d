package handlers_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// manyTenantsConfig is n tenants of one shape on 127.3.0.x, but that
// tenant 3 is of another instance type and tenant 5 in another zone:
// values the layout made for the first tenant asked may hold as common.
func manyTenantsConfig(n int) string {
	var b strings.Builder
	b.WriteString("defaults:\n  region: eu-west-1\n  credentials: {profile: shared}\ntenants:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: many%d\n    sources: [\"127.3.0.%d\"]\n    credentials: {role_name: role%d}\n", i, i+1, i)
		switch i {
		case 3:
			b.WriteString("    instance: {instance_type: m5.large}\n")
		case 5:
			b.WriteString("    instance: {availability_zone: eu-west-1b}\n")
		}
	}
	return b.String()
}

// TestCatalogueOfManyTenants: tenants of one shape share their layout's
// common bodies and splice their own into them; each is served its own
// values whole, with their exact length, whichever tenant was asked first.
func TestCatalogueOfManyTenants(t *testing.T) {
	const n = 24
	cfg := parseConfig(t, manyTenantsConfig(n))
	srv, err := handlers.New(cfg, handlers.Options{Now: newClock().Now, Signer: testSigner(t)})
	if err != nil {
		t.Fatal(err)
	}
	for k := range n {
		i := (k*7 + 11) % n // not in the order configured: the layout is the first asked's
		tn := cfg.Tenants[i]
		in := &tn.Instance
		src := fmt.Sprintf("127.3.0.%d:4000", i+1)
		get := func(path string) string {
			t.Helper()
			w := serve(srv, http.MethodGet, "/latest/"+path, src)
			if w.Code != http.StatusOK {
				t.Fatalf("tenant %d %s: status %d", i, path, w.Code)
			}
			if got, want := w.Header().Get("Content-Length"), strconv.Itoa(w.Body.Len()); got != want {
				t.Errorf("tenant %d %s: Content-Length %s, body %s bytes", i, path, got, want)
			}
			return w.Body.String()
		}
		mac := in.Primary().MAC
		for path, want := range map[string]string{
			"meta-data/instance-id":                 in.ID,
			"meta-data/instance-type":               in.Type,
			"meta-data/hostname":                    in.LocalHostname,
			"meta-data/local-hostname":              in.LocalHostname,
			"meta-data/local-ipv4":                  in.PrivateIP().String(),
			"meta-data/mac":                         mac,
			"meta-data/placement/availability-zone": in.AvailabilityZone,
			"meta-data/network/interfaces/macs/":    mac + "/",
			"meta-data/network/interfaces/macs/" + mac + "/local-hostname": in.LocalHostname,
			"meta-data/network/interfaces/macs/" + mac + "/subnet-id":      in.Primary().SubnetID,
			"meta-data/iam/security-credentials/":                          tn.Role.Name,
		} {
			if got := get(path); got != want {
				t.Errorf("tenant %d %s = %q, want %q", i, path, got, want)
			}
		}
		var doc struct{ InstanceID, PrivateIP, AvailabilityZone, InstanceType string }
		body := get("dynamic/instance-identity/document")
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("tenant %d: document %q: %v", i, body, err)
		}
		if doc.InstanceID != in.ID || doc.PrivateIP != in.PrivateIP().String() || doc.AvailabilityZone != in.AvailabilityZone || doc.InstanceType != in.Type {
			t.Errorf("tenant %d: document %+v, want %s %s %s %s", i, doc, in.ID, in.PrivateIP(), in.AvailabilityZone, in.Type)
		}
		verifySignature(t, []byte(body), get("dynamic/instance-identity/signature"))
	}
}

// TestSignatureOfHiddenDocument: a path policy that hides the identity
// document leaves its signature to sign the document the tenant has.
func TestSignatureOfHiddenDocument(t *testing.T) {
	const config = `
tenants:
  - name: hidden
    sources: ["127.3.1.1"]
    paths: {deny: ["dynamic/instance-identity/document"]}
`
	srv, _ := newServer(t, config, handlers.Options{})
	open, _ := newServer(t, strings.Replace(config, "paths:", "# paths:", 1), handlers.Options{})
	const src = "127.3.1.1:4000"
	if w := serve(srv, http.MethodGet, "/latest/dynamic/instance-identity/document", src); w.Code != http.StatusNotFound {
		t.Fatalf("hidden document: status %d", w.Code)
	}
	doc := serve(open, http.MethodGet, "/latest/dynamic/instance-identity/document", src)
	sig := serve(srv, http.MethodGet, "/latest/dynamic/instance-identity/signature", src)
	if doc.Code != http.StatusOK || sig.Code != http.StatusOK {
		t.Fatalf("document %d, signature %d", doc.Code, sig.Code)
	}
	verifySignature(t, doc.Body.Bytes(), sig.Body.String())
}

func verifySignature(t *testing.T, doc []byte, signature string) {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(signature, "\n", ""))
	if err != nil {
		t.Fatalf("signature is not base64: %v", err)
	}
	sum := sha256.Sum256(doc)
	if err := rsa.VerifyPKCS1v15(testSigner(t).Certificate().PublicKey.(*rsa.PublicKey), crypto.SHA256, sum[:], der); err != nil {
		t.Fatalf("signature does not verify over the document: %v", err)
	}
}

// TestCatalogueWithLargeUserData: user data of the most EC2 takes (16 KiB)
// unlike the common one makes a tenant's own bytes too many for narrow
// ends; user data that differs from the common one only in its middle is
// spliced into it.
func TestCatalogueWithLargeUserData(t *testing.T) {
	userData := func(head, mark, tail string) string {
		half := (tenants.MaxUserData - len(mark)) / 2
		return strings.Repeat(head, half) + mark + strings.Repeat(tail, tenants.MaxUserData-half-len(mark))
	}
	// The first is asked first: its user data is the common one.
	want := []string{userData("a", "first", "z"), userData("a", "second", "z"), userData("b", "third", "y"), "#!/bin/sh\n"}
	var b strings.Builder
	b.WriteString("tenants:\n")
	for i, u := range want {
		fmt.Fprintf(&b, "  - name: large%d\n    sources: [\"127.3.2.%d\"]\n    user_data: %q\n", i, i+1, u)
	}
	srv, _ := newServer(t, b.String(), handlers.Options{})
	for i, u := range want {
		w := serve(srv, http.MethodGet, "/latest/user-data", fmt.Sprintf("127.3.2.%d:4000", i+1))
		if w.Code != http.StatusOK || w.Body.String() != u {
			t.Errorf("tenant %d: status %d, %d bytes, want %d", i, w.Code, w.Body.Len(), len(u))
		}
		if got := w.Header().Get("Content-Length"); got != strconv.Itoa(len(u)) {
			t.Errorf("tenant %d: Content-Length %s, want %d", i, got, len(u))
		}
		if got := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", fmt.Sprintf("127.3.2.%d:4000", i+1)).Body.String(); !strings.HasPrefix(got, "i-") {
			t.Errorf("tenant %d: instance-id %q", i, got)
		}
	}
}
