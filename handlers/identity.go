package handlers

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"
)

// Signer signs instance identity documents. Real documents are signed by
// AWS's regional keys, which no one else holds: clients that verify
// signatures against AWS's certificates reject any proxy's, so the point is
// the shape (base64 RSA-SHA256 signature, base64 PKCS#7 SignedData), which
// tools that only parse or forward them rely on.
type Signer struct {
	// identity signs signature and pkcs7; rsa2048 signs rsa2048, which
	// AWS signs with a key and certificate of its own (its pkcs7 key is
	// not RSA-2048), so the two PKCS#7 renderings differ as on EC2.
	identity, rsa2048 signingKey
	rand              io.Reader
}

// signingKey is an RSA-2048 key and the self-signed certificate naming it.
type signingKey struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// Signature is a document's three signature renderings.
type Signature struct {
	Signature string // dynamic/instance-identity/signature
	PKCS7     string // dynamic/instance-identity/pkcs7
	RSA2048   string // dynamic/instance-identity/rsa2048
}

// NewSigner makes the signing keys and a self-signed certificate for each.
// random is the entropy source (crypto/rand.Reader in production).
func NewSigner(random io.Reader, now time.Time) (*Signer, error) {
	if random == nil {
		random = rand.Reader
	}
	identity, err := newSigningKey(random, now, 1, "imds-proxy instance identity")
	if err != nil {
		return nil, err
	}
	rsa2048, err := newSigningKey(random, now, 2, "imds-proxy instance identity rsa2048")
	if err != nil {
		return nil, err
	}
	return &Signer{identity: identity, rsa2048: rsa2048, rand: random}, nil
}

func newSigningKey(random io.Reader, now time.Time, serial int64, name string) (signingKey, error) {
	key, err := rsa.GenerateKey(random, 2048)
	if err != nil {
		return signingKey{}, fmt.Errorf("identity signing key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.Unix()<<2 | serial),
		Subject:      pkix.Name{Organization: []string{"imds-proxy"}, CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return signingKey{}, fmt.Errorf("identity signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return signingKey{}, fmt.Errorf("identity signing certificate: %w", err)
	}
	return signingKey{key: key, cert: cert}, nil
}

// Certificate is the certificate signature and pkcs7 verify with.
func (s *Signer) Certificate() *x509.Certificate { return s.identity.cert }

// RSA2048Certificate is the certificate rsa2048 verifies with.
func (s *Signer) RSA2048Certificate() *x509.Certificate { return s.rsa2048.cert }

// Sign renders the signatures of a document. A failure leaves a rendering
// empty (its path answers 404) rather than serving something malformed.
func (s *Signer) Sign(doc []byte) Signature {
	var out Signature
	sum := sha256.Sum256(doc)
	if sig, err := rsa.SignPKCS1v15(s.rand, s.identity.key, crypto.SHA256, sum[:]); err == nil {
		out.Signature = wrap64(base64.StdEncoding.EncodeToString(sig))
	}
	out.PKCS7 = s.identity.pkcs7(doc)
	out.RSA2048 = s.rsa2048.pkcs7(doc)
	return out
}

// pkcs7 is a detached PKCS#7 SignedData over doc, SHA-256, base64 in
// 64-column lines; "" when it cannot be made.
func (k signingKey) pkcs7(doc []byte) string {
	sd, err := pkcs7.NewSignedData(doc)
	if err != nil {
		return ""
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	sd.Detach() // AWS's is detached: openssl smime -verify -content document
	if err := sd.AddSigner(k.cert, k.key, pkcs7.SignerInfoConfig{}); err != nil {
		return ""
	}
	der, err := sd.Finish()
	if err != nil {
		return ""
	}
	return wrap64(base64.StdEncoding.EncodeToString(der))
}

// wrap64 breaks base64 into 64-column lines, as PEM bodies (and IMDS) do.
func wrap64(s string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64])
		b.WriteByte('\n')
		s = s[64:]
	}
	b.WriteString(s)
	return b.String()
}
