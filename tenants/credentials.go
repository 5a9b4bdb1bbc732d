package tenants

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Credentials are temporary AWS credentials as a tenant receives them: IMDS
// always vends a session token and an expiry.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
	AccountID       string
	Retrieved       time.Time // when they were obtained: IMDS's LastUpdated
}

// String never shows the secret parts, so credentials can't leak through a
// %v in a log line or an error.
func (c Credentials) String() string {
	return fmt.Sprintf("credentials %s (expires %s)", MaskKeyID(c.AccessKeyID), c.Expiration.UTC().Format(time.RFC3339))
}

// MaskKeyID shows only the last four characters of an access key id.
func MaskKeyID(id string) string {
	if len(id) <= 4 {
		return "****"
	}
	return strings.Repeat("*", len(id)-4) + id[len(id)-4:]
}

// CredentialSource obtains fresh credentials for one CredentialSpec. Its
// failures are *UpstreamError saying what the operator should do.
type CredentialSource interface {
	Retrieve(ctx context.Context) (Credentials, error)
}

// InstanceSource copies one live instance (a MirrorSpec). Its failures are
// *UpstreamError.
type InstanceSource interface {
	Retrieve(ctx context.Context) (*Mirrored, error)
}

// digest shortens a value to a fingerprint ("-" when empty).
func digest(v string) string {
	if v == "" {
		return "-"
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:6])
}

// Key identifies what a spec obtains: tenants with equal keys share one
// cache entry and one upstream call. The role name is only a label and the
// session name matters only when a role is assumed.
func (s CredentialSpec) Key() string {
	var b strings.Builder
	if s.Mock {
		fmt.Fprintf(&b, "mock duration=%s", s.Duration)
		return b.String()
	}
	fmt.Fprintf(&b, "profile=%q role=%q duration=%s", s.Profile, s.RoleARN, s.Duration)
	if s.RoleARN != "" {
		// The key is logged: the external id and the policy appear as
		// digests, enough to tell specs apart and no more.
		fmt.Fprintf(&b, " session=%q external=%s identity=%q policy=%s arns=%q", s.SessionName, digest(s.ExternalID), s.SourceIdentity, digest(s.Policy), s.PolicyARNs)
		for _, k := range slices.Sorted(maps.Keys(s.Tags)) {
			fmt.Fprintf(&b, " tag:%q=%q", k, s.Tags[k])
		}
	}
	return b.String()
}
