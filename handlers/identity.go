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
	key  *rsa.PrivateKey
	cert *x509.Certificate
	rand io.Reader
}

// Signature is a document's three signature renderings.
type Signature struct {
	Signature string // dynamic/instance-identity/signature
	PKCS7     string // dynamic/instance-identity/pkcs7 and rsa2048
}

// NewSigner makes a signing key and a self-signed certificate for it.
// random is the entropy source (crypto/rand.Reader in production).
func NewSigner(random io.Reader, now time.Time) (*Signer, error) {
	if random == nil {
		random = rand.Reader
	}
	key, err := rsa.GenerateKey(random, 2048)
	if err != nil {
		return nil, fmt.Errorf("identity signing key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.Unix()),
		Subject:      pkix.Name{Organization: []string{"imds-proxy"}, CommonName: "imds-proxy instance identity"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("identity signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("identity signing certificate: %w", err)
	}
	return &Signer{key: key, cert: cert, rand: random}, nil
}

// Certificate is the certificate a client can verify signatures with.
func (s *Signer) Certificate() *x509.Certificate { return s.cert }

// Sign renders the signatures of a document. A failure leaves them empty
// (the paths answer 404) rather than serving something malformed.
func (s *Signer) Sign(doc []byte) Signature {
	var out Signature
	sum := sha256.Sum256(doc)
	if sig, err := rsa.SignPKCS1v15(s.rand, s.key, crypto.SHA256, sum[:]); err == nil {
		out.Signature = wrap64(base64.StdEncoding.EncodeToString(sig))
	}
	sd, err := pkcs7.NewSignedData(doc)
	if err != nil {
		return out
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	sd.Detach() // AWS's is detached: openssl smime -verify -content document
	if err := sd.AddSigner(s.cert, s.key, pkcs7.SignerInfoConfig{}); err != nil {
		return out
	}
	if der, err := sd.Finish(); err == nil {
		out.PKCS7 = wrap64(base64.StdEncoding.EncodeToString(der))
	}
	return out
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
