package awssource

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ssocreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// ProfileCredentials obtains a tenant's credentials from its profile,
// through sts:AssumeRole when the spec names a role and through
// sts:GetSessionToken when the profile holds long-term keys.
type ProfileCredentials struct {
	Spec tenants.CredentialSpec
	Load ProfileLoader
	Now  func() time.Time // if nil, time.Now
	// Log receives, at the first successful fetch, the identity the
	// profile's credentials belong to (sts:GetCallerIdentity), so an
	// operator sees which user or role a profile resolved to. If zero,
	// nothing is logged and the identity is not asked for.
	Log zerolog.Logger
	// MFA holds the MFA sessions of profiles with mfa_serial. If nil, a
	// tenant of such a profile always answers MFARequired.
	MFA *MFASessions

	mu        sync.Mutex
	account   string // of the profile's identity, learnt once with GetCallerIdentity
	arn       string // the same identity's ARN
	announced bool   // its ARN is logged
}

// maxChainedDuration is STS's limit for a role assumed with temporary
// credentials (role chaining).
const maxChainedDuration = time.Hour

// Retrieve obtains fresh credentials (tenants.CredentialSource). Failures
// are *tenants.UpstreamError saying
// what the operator should do.
func (s *ProfileCredentials) Retrieve(ctx context.Context) (tenants.Credentials, error) {
	now := s.now
	p, err := s.Load(ctx, s.Spec.Profile)
	if err != nil {
		return tenants.Credentials{}, s.explain(nil, false, err)
	}
	if p.MFA != nil {
		c, err := s.viaMFA(ctx, p)
		if err != nil {
			return tenants.Credentials{}, err
		}
		c.Retrieved = now()
		s.announce(ctx, p)
		return c, nil
	}
	base, err := p.Credentials.Retrieve(ctx)
	if err != nil {
		return tenants.Credentials{}, s.explain(p, true, err)
	}
	var c tenants.Credentials
	switch {
	case s.Spec.RoleARN != "":
		c, err = s.assumeRole(ctx, p, base.SessionToken != "")
	case base.SessionToken == "":
		c, err = s.sessionToken(ctx, p)
	default:
		c = tenants.Credentials{AccessKeyID: base.AccessKeyID, SecretAccessKey: base.SecretAccessKey,
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
		return tenants.Credentials{}, s.explain(p, false, err)
	}
	c.Retrieved = now()
	s.announce(ctx, p)
	return c, nil
}

func (s *ProfileCredentials) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// announce logs, once, whose credentials the profile holds. It is best
// effort: a failed GetCallerIdentity is tried again at the next fetch.
func (s *ProfileCredentials) announce(ctx context.Context, p *Profile) {
	s.mu.Lock()
	done := s.announced
	s.mu.Unlock()
	if done {
		return
	}
	probe := s.Log.Info()
	if !probe.Enabled() {
		return // nobody to tell: no GetCallerIdentity either
	}
	probe.Discard()
	_, arn := s.caller(ctx, p)
	if arn == "" {
		return
	}
	s.mu.Lock()
	done, s.announced = s.announced, true
	s.mu.Unlock()
	if !done {
		e := s.Log.Info().Str("spec", s.Spec.Key()).Str("profile", profileName(s.Spec.Profile)).Str("caller", arn)
		if s.Spec.RoleARN != "" {
			e = e.Str("assumes", s.Spec.RoleARN)
		}
		e.Msg("the profile's credentials are this caller's (sts:GetCallerIdentity)")
	}
}

func (s *ProfileCredentials) assumeRole(ctx context.Context, p *Profile, chained bool) (tenants.Credentials, error) {
	return s.assume(ctx, p.STS, s.assumeInput(), s.Spec.Duration, chained, 0)
}

// assumeInput is the sts:AssumeRole of the spec's role.
func (s *ProfileCredentials) assumeInput() *sts.AssumeRoleInput {
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(s.Spec.RoleARN),
		RoleSessionName: aws.String(s.Spec.SessionName),
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
	return in
}

// assume calls in for d, capped at STS's limit for role chaining when
// chained and at limit when positive (but never under STS's minimum, 15m).
func (s *ProfileCredentials) assume(ctx context.Context, client STSClient, in *sts.AssumeRoleInput, d time.Duration, chained bool, limit time.Duration) (tenants.Credentials, error) {
	if chained && d > maxChainedDuration {
		d = maxChainedDuration
	}
	if limit > 0 && d > limit {
		d = max(limit.Truncate(time.Second), minSTSDuration)
	}
	in.DurationSeconds = aws.Int32(int32(d / time.Second))
	out, err := client.AssumeRole(ctx, in)
	if err != nil {
		return tenants.Credentials{}, fmt.Errorf("assume %s: %w", aws.ToString(in.RoleArn), err)
	}
	c := fromSTS(out.Credentials)
	if out.AssumedRoleUser != nil {
		c.AccountID = accountOf(aws.ToString(out.AssumedRoleUser.Arn))
	}
	return c, nil
}

// minSTSDuration is the shortest session STS issues.
const minSTSDuration = 15 * time.Minute

func (s *ProfileCredentials) sessionToken(ctx context.Context, p *Profile) (tenants.Credentials, error) {
	out, err := p.STS.GetSessionToken(ctx, &sts.GetSessionTokenInput{
		DurationSeconds: aws.Int32(int32(s.Spec.Duration / time.Second)),
	})
	if err != nil {
		// Not "get session token: …": Redact would take the word after
		// "token:" for a secret and blank the cause.
		return tenants.Credentials{}, fmt.Errorf("sts:GetSessionToken: %w", err)
	}
	c := fromSTS(out.Credentials)
	c.AccountID = s.callerAccount(ctx, p)
	return c, nil
}

// callerAccount learns the account of the profile's identity once. It is
// best effort: without it only AccountId fields stay empty.
func (s *ProfileCredentials) callerAccount(ctx context.Context, p *Profile) string {
	account, _ := s.caller(ctx, p)
	return account
}

// caller learns the profile's identity once (sts:GetCallerIdentity with the
// profile's own credentials); "" until a call succeeds.
func (s *ProfileCredentials) caller(ctx context.Context, p *Profile) (account, arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.account == "" && s.arn == "" {
		if out, err := p.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
			s.account, s.arn = aws.ToString(out.Account), aws.ToString(out.Arn)
		}
	}
	return s.account, s.arn
}

func fromSTS(c *ststypes.Credentials) tenants.Credentials {
	if c == nil {
		return tenants.Credentials{}
	}
	return tenants.Credentials{
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
// it; fromProfile says the profile's own credentials failed, before any
// STS call. The message goes to clients too, so it names profiles and
// roles, never keys.
func (s *ProfileCredentials) explain(p *Profile, fromProfile bool, err error) error {
	var ce *tenants.UpstreamError
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
		return &tenants.UpstreamError{Code: "ProfileNotFound", Err: err,
			Message: fmt.Sprintf("AWS profile %q cannot be loaded; check ~/.aws/config and ~/.aws/credentials", profile)}
	case p.SSO && ssoExpired(err, api, fromProfile):
		login := "aws sso login --profile " + profile
		if p.SSOSession != "" {
			login = "aws sso login --sso-session " + p.SSOSession
		}
		return &tenants.UpstreamError{Code: "SSOSessionExpired", Err: err,
			Message: fmt.Sprintf("the SSO session of profile %q has expired or is missing: run `%s`; it is picked up without a restart", profile, login)}
	case isAPI && s.Spec.RoleARN != "" && (api.ErrorCode() == "AccessDenied" || api.ErrorCode() == "AccessDeniedException"):
		return &tenants.UpstreamError{Code: "AssumeRoleUnauthorizedAccess", Err: err,
			Message: fmt.Sprintf("profile %q may not assume %s (%s); allow sts:AssumeRole for it in the role's trust policy", profile, s.Spec.RoleARN, awsSaid(api))}
	case isAPI && (api.ErrorCode() == "ExpiredToken" || api.ErrorCode() == "InvalidClientTokenId" || api.ErrorCode() == "SignatureDoesNotMatch"):
		return &tenants.UpstreamError{Code: "InvalidCredentials", Err: err,
			Message: fmt.Sprintf("the credentials of profile %q are rejected by AWS (%s); renew them", profile, api.ErrorCode())}
	case isAPI:
		return &tenants.UpstreamError{Code: api.ErrorCode(), Err: err,
			Message: fmt.Sprintf("AWS refused credentials for profile %q: %s", profile, awsSaid(api))}
	}
	if noCredentials(err) {
		where := "add keys to ~/.aws/credentials or run `aws configure sso`"
		if p.DefaultChain {
			where = "add keys to ~/.aws/credentials, set AWS_ACCESS_KEY_ID, or run `aws configure sso`"
		}
		return &tenants.UpstreamError{Code: "NoCredentials", Err: err,
			Message: fmt.Sprintf("profile %q has no credentials: %s", profile, where)}
	}
	if isHelperError(err) {
		return &tenants.UpstreamError{Code: "CredentialsUnavailable", Err: err,
			Message: fmt.Sprintf("the credential_process of profile %q failed; the imds-proxy log has what it wrote to stderr", profile)}
	}
	return &tenants.UpstreamError{Code: "CredentialsUnavailable", Err: err,
		Message: fmt.Sprintf("credentials for profile %q could not be obtained; the imds-proxy log has the cause", profile)}
}

// awsSaid is an AWS error's message as it may leave the process: every
// UpstreamError message quoting AWS goes to clients' failure documents,
// /status, /readyz and the log, and AWS quotes the caller's ARN ("User:
// arn:aws:iam::…:user/dev is not authorized") and sometimes keys.
func awsSaid(api smithy.APIError) string { return tenants.Redact(api.ErrorMessage()) }

// noCredentials recognises the SDK's "nothing in the chain" failure: empty
// static keys, or the chain's last link, instance metadata, which this
// proxy disables for itself (so that it never asks itself).
func noCredentials(err error) bool {
	var empty *credentials.StaticCredentialsEmptyError
	if errors.As(err, &empty) {
		return true
	}
	var op *smithy.OperationError
	for errors.As(err, &op) {
		if op.ServiceID == imds.ServiceID {
			return true
		}
		err = op.Err
	}
	return false
}

// ssoExpired recognises an IAM Identity Center session that must be renewed
// with `aws sso login`: the portal refuses the token, or the token could
// not be used at all — missing, expired, unreadable — which the SDK finds
// locally, before it calls any service.
func ssoExpired(err error, api smithy.APIError, fromProfile bool) bool {
	var invalid *ssocreds.InvalidTokenError
	var op *smithy.OperationError
	switch {
	case api != nil:
		return api.ErrorCode() == "UnauthorizedException" || api.ErrorCode() == "InvalidGrantException"
	case errors.As(err, &invalid):
		return true
	}
	return fromProfile && !errors.As(err, &op)
}
