// Package mocksource vends made-up role credentials that look like STS's
// (credentials.mock): for rehearsing against moto or LocalStack, which
// accept any keys, on a machine with no AWS account. It never touches the
// network.
package mocksource

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// Key shapes of real temporary credentials: an ASIA key id of 20
// characters (base32's alphabet), a 40-character secret, a long token.
const (
	keyIDPrefix = "ASIA"
	keyIDLen    = 20
	secretBytes = 30  // 40 characters of base64
	tokenBytes  = 300 // about 400 base64 characters, within what SDKs see from STS
)

const base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// Credentials is a tenants.CredentialSource of fresh random credentials,
// each set valid for Spec.Duration: the store rotates them Spec.RefreshBefore
// ahead of expiry, as it does real ones.
type Credentials struct {
	Spec tenants.CredentialSpec
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Rand is the randomness; nil: crypto/rand.Reader.
	Rand io.Reader
}

// Retrieve implements tenants.CredentialSource.
func (c *Credentials) Retrieve(context.Context) (tenants.Credentials, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	r := c.Rand
	if r == nil {
		r = rand.Reader
	}
	buf := make([]byte, keyIDLen-len(keyIDPrefix)+secretBytes+tokenBytes)
	if _, err := io.ReadFull(r, buf); err != nil {
		return tenants.Credentials{}, &tenants.UpstreamError{Code: "MockCredentialsFailed",
			Message: "no randomness to make mock credentials from", Err: fmt.Errorf("read random: %w", err)}
	}
	id := []byte(keyIDPrefix)
	for _, b := range buf[:keyIDLen-len(keyIDPrefix)] {
		id = append(id, base32Alphabet[b%32])
	}
	buf = buf[keyIDLen-len(keyIDPrefix):]
	secret := base64.StdEncoding.EncodeToString(buf[:secretBytes])
	token := base64.StdEncoding.EncodeToString(buf[secretBytes:])
	t := now().UTC().Truncate(time.Second)
	return tenants.Credentials{
		AccessKeyID:     string(id),
		SecretAccessKey: secret,
		SessionToken:    token,
		Expiration:      t.Add(c.Spec.Duration),
		Retrieved:       t,
	}, nil
}
