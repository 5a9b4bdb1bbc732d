package handlers_test

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/smallstep/pkcs7"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// documentMembers decodes a JSON object keeping its keys' order.
func documentMembers(t *testing.T, doc []byte) (keys []string, values map[string]any) {
	t.Helper()
	values = map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(doc))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("document does not open an object: %v %v\n%s", tok, err, doc)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		key := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
		values[key] = v
	}
	return keys, values
}

func TestIdentityDocument(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	w := serve(srv, http.MethodGet, "/latest/dynamic/instance-identity/document", srcFull)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	keys, values := documentMembers(t, w.Body.Bytes())
	wantKeys := []string{"accountId", "architecture", "availabilityZone", "billingProducts", "devpayProductCodes",
		"marketplaceProductCodes", "imageId", "instanceId", "instanceType", "kernelId", "pendingTime", "privateIp",
		"ramdiskId", "region", "version"}
	if strings.Join(keys, " ") != strings.Join(wantKeys, " ") {
		t.Errorf("keys %q\nwant %q", keys, wantKeys)
	}
	want := map[string]any{
		"accountId":               "444455556666",
		"architecture":            "x86_64",
		"availabilityZone":        "eu-west-1b",
		"billingProducts":         nil,
		"devpayProductCodes":      nil,
		"marketplaceProductCodes": nil,
		"imageId":                 "ami-0123456789abcdef0",
		"instanceId":              "i-0a1b2c3d4e5f60001",
		"instanceType":            "m5.large",
		"kernelId":                nil,
		"pendingTime":             "2024-05-01T12:00:00Z",
		"privateIp":               "10.0.0.10",
		"ramdiskId":               nil,
		"region":                  "eu-west-1",
		"version":                 "2017-09-30",
	}
	for k, v := range want {
		if got, ok := values[k]; !ok || got != v {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
	body := w.Body.String()
	for _, s := range []string{`"kernelId" : null,`, `"ramdiskId" : null,`, `"region" : "eu-west-1",`} {
		if !strings.Contains(body, "\n  "+s+"\n") {
			t.Errorf("document lacks the line %q in IMDS's style:\n%s", s, body)
		}
	}
	if strings.HasSuffix(body, "\n") {
		t.Errorf("document ends with a newline")
	}
}

// TestIdentitySignatures checks that signature and pkcs7 verify against the
// signer's certificate over the exact document bytes served.
func TestIdentitySignatures(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	get := func(p string) []byte {
		t.Helper()
		w := serve(srv, http.MethodGet, "/latest/dynamic/instance-identity/"+p, srcFull)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d", p, w.Code)
		}
		if got := w.Header().Get("Content-Type"); got != "text/plain" {
			t.Errorf("%s: Content-Type %q", p, got)
		}
		return w.Body.Bytes()
	}
	decode := func(name string, b []byte) []byte {
		t.Helper()
		if bytes.Contains(b, []byte("-----")) {
			t.Errorf("%s is PEM-armoured", name)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if len(line) > 64 {
				t.Errorf("%s: line %d is %d columns, want at most 64", name, i, len(line))
			}
		}
		der, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\n", ""))
		if err != nil {
			t.Fatalf("%s is not base64: %v", name, err)
		}
		return der
	}
	doc := get("document")
	cert := testSigner(t).Certificate()

	t.Run("signature", func(t *testing.T) {
		sig := decode("signature", get("signature"))
		sum := sha256.Sum256(doc)
		if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, sum[:], sig); err != nil {
			t.Fatalf("signature does not verify: %v", err)
		}
	})
	for name, cert := range map[string]*x509.Certificate{"pkcs7": cert, "rsa2048": testSigner(t).RSA2048Certificate()} {
		t.Run(name, func(t *testing.T) {
			p7, err := pkcs7.Parse(decode(name, get(name)))
			if err != nil {
				t.Fatalf("not PKCS#7: %v", err)
			}
			if len(p7.Content) != 0 {
				t.Errorf("content is attached (%d bytes); AWS's is detached", len(p7.Content))
			}
			if len(p7.Certificates) != 1 || !p7.Certificates[0].Equal(cert) {
				t.Errorf("PKCS#7 does not carry the signer's certificate")
			}
			if k, ok := cert.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
				t.Errorf("signed with %T, want an RSA-2048 key", cert.PublicKey)
			}
			if len(p7.Signers) != 1 || !p7.Signers[0].DigestAlgorithm.Algorithm.Equal(pkcs7.OIDDigestAlgorithmSHA256) {
				t.Errorf("not one signer with SHA-256")
			}
			p7.Content = doc
			if err := p7.Verify(); err != nil {
				t.Fatalf("does not verify over the document: %v", err)
			}
			p7.Content = append(append([]byte(nil), doc...), ' ')
			if err := p7.Verify(); err == nil {
				t.Fatalf("verifies over a changed document")
			}
		})
	}
}

// TestRSA2048IsItsOwnSignature: on EC2, rsa2048 is signed with a key and
// certificate of its own, not a copy of pkcs7.
func TestRSA2048IsItsOwnSignature(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	pk := serve(srv, http.MethodGet, "/latest/dynamic/instance-identity/pkcs7", srcFull).Body.String()
	rsa2048 := serve(srv, http.MethodGet, "/latest/dynamic/instance-identity/rsa2048", srcFull).Body.String()
	if pk == "" || pk == rsa2048 {
		t.Fatalf("rsa2048 is pkcs7's copy")
	}
	s := testSigner(t)
	if s.RSA2048Certificate().Equal(s.Certificate()) || bytes.Equal(s.RSA2048Certificate().RawSubjectPublicKeyInfo, s.Certificate().RawSubjectPublicKeyInfo) {
		t.Fatalf("rsa2048 is signed with the pkcs7 key")
	}
}

// TestIdentityWithoutSigner: with no signer the signature paths answer 404
// and are not listed; the document is still served.
func TestIdentityWithoutSigner(t *testing.T) {
	srv, err := handlers.New(parseConfig(t, testConfig), handlers.Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"signature", "pkcs7", "rsa2048"} {
		if w := serve(srv, http.MethodGet, "/latest/dynamic/instance-identity/"+p, srcFull); w.Code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, w.Code)
		}
	}
	if w := serve(srv, http.MethodGet, "/latest/dynamic/instance-identity/", srcFull); w.Body.String() != "document" {
		t.Errorf("instance-identity/ lists %q, want document", w.Body)
	}
}
