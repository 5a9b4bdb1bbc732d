package tenants

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
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

// CredentialError is a credential failure as IMDS reports it to clients
// (Code) and as the operator must act on it (Message).
type CredentialError struct {
	Code    string // e.g. AssumeRoleUnauthorizedAccess
	Message string // what to do; safe to send to the client and to log
	Err     error  // the underlying cause, for the log
}

func (e *CredentialError) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Cause()
	}
	return e.Code + ": " + e.Message
}

func (e *CredentialError) Unwrap() error { return e.Err }

// STSClient is the part of the STS API a credential source uses; the
// method signatures are the SDK's, so *sts.Client satisfies it.
type STSClient interface {
	AssumeRole(context.Context, *sts.AssumeRoleInput, ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
	GetSessionToken(context.Context, *sts.GetSessionTokenInput, ...func(*sts.Options)) (*sts.GetSessionTokenOutput, error)
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Profile is a loaded AWS profile: its credentials, an STS client signing
// with them, and what the shared config says about it.
type Profile struct {
	Name        string
	Credentials aws.CredentialsProvider
	STS         STSClient
	SSOSession  string // sso_session of the profile, if any
	SSO         bool   // credentials come from IAM Identity Center
}

// ProfileLoader loads a named profile afresh. It is called on every refresh,
// so edits to ~/.aws and a new `aws sso login` are seen without a restart.
type ProfileLoader func(ctx context.Context, profile string) (*Profile, error)

// CredentialSource obtains a tenant's credentials from its profile,
// through sts:AssumeRole when the spec names a role and through
// sts:GetSessionToken when the profile holds long-term keys.
type CredentialSource struct {
	Spec CredentialSpec
	Load ProfileLoader
	Now  func() time.Time // if nil, time.Now

	mu      sync.Mutex
	account string // of long-term keys, learnt once with GetCallerIdentity
}

// maxChainedDuration is STS's limit for a role assumed with temporary
// credentials (role chaining).
const maxChainedDuration = time.Hour

// Retrieve obtains fresh credentials. Failures are *CredentialError saying
// what the operator should do.
func (s *CredentialSource) Retrieve(ctx context.Context) (Credentials, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	p, err := s.Load(ctx, s.Spec.Profile)
	if err != nil {
		return Credentials{}, s.explain(nil, err)
	}
	base, err := p.Credentials.Retrieve(ctx)
	if err != nil {
		return Credentials{}, s.explain(p, err)
	}
	var c Credentials
	switch {
	case s.Spec.RoleARN != "":
		c, err = s.assumeRole(ctx, p, base.SessionToken != "")
	case base.SessionToken == "":
		c, err = s.sessionToken(ctx, p)
	default:
		c = Credentials{AccessKeyID: base.AccessKeyID, SecretAccessKey: base.SecretAccessKey,
			SessionToken: base.SessionToken, Expiration: base.Expires, AccountID: base.AccountID}
		if !base.CanExpire {
			// Temporary keys of unknown lifetime (environment variables):
			// read them again well before the refresh would.
			c.Expiration = now().Add(s.Spec.RefreshBefore + 5*time.Minute)
		}
		if c.AccountID == "" {
			c.AccountID = s.callerAccount(ctx, p)
		}
	}
	if err != nil {
		return Credentials{}, s.explain(p, err)
	}
	c.Retrieved = now()
	return c, nil
}

func (s *CredentialSource) assumeRole(ctx context.Context, p *Profile, chained bool) (Credentials, error) {
	d := s.Spec.Duration
	if chained && d > maxChainedDuration {
		d = maxChainedDuration
	}
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(s.Spec.RoleARN),
		RoleSessionName: aws.String(s.Spec.SessionName),
		DurationSeconds: aws.Int32(int32(d / time.Second)),
	}
	if s.Spec.ExternalID != "" {
		in.ExternalId = aws.String(s.Spec.ExternalID)
	}
	if s.Spec.Policy != "" {
		in.Policy = aws.String(s.Spec.Policy)
	}
	if s.Spec.SourceIdentity != "" {
		in.SourceIdentity = aws.String(s.Spec.SourceIdentity)
	}
	for _, a := range s.Spec.PolicyARNs {
		in.PolicyArns = append(in.PolicyArns, ststypes.PolicyDescriptorType{Arn: aws.String(a)})
	}
	for _, k := range slices.Sorted(maps.Keys(s.Spec.Tags)) {
		in.Tags = append(in.Tags, ststypes.Tag{Key: aws.String(k), Value: aws.String(s.Spec.Tags[k])})
	}
	out, err := p.STS.AssumeRole(ctx, in)
	if err != nil {
		return Credentials{}, fmt.Errorf("assume %s: %w", s.Spec.RoleARN, err)
	}
	c := fromSTS(out.Credentials)
	if out.AssumedRoleUser != nil {
		c.AccountID = accountOf(aws.ToString(out.AssumedRoleUser.Arn))
	}
	return c, nil
}

func (s *CredentialSource) sessionToken(ctx context.Context, p *Profile) (Credentials, error) {
	out, err := p.STS.GetSessionToken(ctx, &sts.GetSessionTokenInput{
		DurationSeconds: aws.Int32(int32(s.Spec.Duration / time.Second)),
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("get session token: %w", err)
	}
	c := fromSTS(out.Credentials)
	c.AccountID = s.callerAccount(ctx, p)
	return c, nil
}

// callerAccount learns the account of the profile's identity once. It is
// best effort: without it only AccountId fields stay empty.
func (s *CredentialSource) callerAccount(ctx context.Context, p *Profile) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.account == "" {
		if out, err := p.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
			s.account = aws.ToString(out.Account)
		}
	}
	return s.account
}

func fromSTS(c *ststypes.Credentials) Credentials {
	if c == nil {
		return Credentials{}
	}
	return Credentials{
		AccessKeyID:     aws.ToString(c.AccessKeyId),
		SecretAccessKey: aws.ToString(c.SecretAccessKey),
		SessionToken:    aws.ToString(c.SessionToken),
		Expiration:      aws.ToTime(c.Expiration),
	}
}

func accountOf(a string) string {
	if parsed, err := arn.Parse(a); err == nil {
		return parsed.AccountID
	}
	return ""
}

// explain turns an upstream failure into what the operator must do about
// it. The message goes to clients too, so it names profiles and roles,
// never keys.
func (s *CredentialSource) explain(p *Profile, err error) error {
	var ce *CredentialError
	if errors.As(err, &ce) {
		return err
	}
	profile := s.Spec.Profile
	if profile == "" {
		profile = "default"
	}
	var api smithy.APIError
	isAPI := errors.As(err, &api)
	switch {
	case p == nil:
		return &CredentialError{Code: "ProfileNotFound", Err: err,
			Message: fmt.Sprintf("AWS profile %q cannot be loaded; check ~/.aws/config and ~/.aws/credentials", profile)}
	case p.SSO && ssoExpired(err, api):
		login := "aws sso login --profile " + profile
		if p.SSOSession != "" {
			login = "aws sso login --sso-session " + p.SSOSession
		}
		return &CredentialError{Code: "SSOSessionExpired", Err: err,
			Message: fmt.Sprintf("the SSO session of profile %q has expired or is missing: run `%s`; it is picked up without a restart", profile, login)}
	case isAPI && s.Spec.RoleARN != "" && (api.ErrorCode() == "AccessDenied" || api.ErrorCode() == "AccessDeniedException"):
		return &CredentialError{Code: "AssumeRoleUnauthorizedAccess", Err: err,
			Message: fmt.Sprintf("profile %q may not assume %s (%s); allow sts:AssumeRole for it in the role's trust policy", profile, s.Spec.RoleARN, api.ErrorMessage())}
	case isAPI && (api.ErrorCode() == "ExpiredToken" || api.ErrorCode() == "InvalidClientTokenId" || api.ErrorCode() == "SignatureDoesNotMatch"):
		return &CredentialError{Code: "InvalidCredentials", Err: err,
			Message: fmt.Sprintf("the credentials of profile %q are rejected by AWS (%s); renew them", profile, api.ErrorCode())}
	case isAPI:
		return &CredentialError{Code: api.ErrorCode(), Err: err,
			Message: fmt.Sprintf("AWS refused credentials for profile %q: %s", profile, api.ErrorMessage())}
	}
	if noCredentials(err) {
		return &CredentialError{Code: "NoCredentials", Err: err,
			Message: fmt.Sprintf("profile %q has no credentials: add keys to ~/.aws/credentials, set AWS_ACCESS_KEY_ID, or run `aws configure sso`", profile)}
	}
	return &CredentialError{Code: "CredentialsUnavailable", Err: err,
		Message: fmt.Sprintf("credentials for profile %q could not be obtained; the imds-proxy log has the cause", profile)}
}

// noCredentials recognises the SDK's "nothing in the chain" failure, which
// this proxy meets when its instance-metadata fallback is disabled.
func noCredentials(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "no EC2 IMDS role found") || strings.Contains(msg, "failed to retrieve credentials") ||
		strings.Contains(msg, "static credentials are empty")
}

func ssoExpired(err error, api smithy.APIError) bool {
	if api != nil {
		return api.ErrorCode() == "UnauthorizedException" || api.ErrorCode() == "InvalidGrantException"
	}
	msg := err.Error()
	return strings.Contains(msg, "SSO session has expired") || strings.Contains(msg, "SSO token") ||
		strings.Contains(msg, "sso/cache")
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
