package awssource

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// A profile with mfa_serial cannot be loaded by the SDK without someone at
// a terminal to type a code, which a daemon never has. So the proxy holds
// the MFA session itself: an operator hands it a code (`imds-proxy mfa`),
// the proxy exchanges the long-term keys and the code for a session
// (sts:GetSessionToken with SerialNumber and TokenCode), and every tenant
// whose profile is, or chains from, that profile assumes its roles with
// the session's credentials until the session ends.

// MFA says how a profile's credentials depend on an MFA session. A
// Profile with MFA holds, as Credentials and STS, the long-term keys the
// session is asked for with.
type MFA struct {
	// Profile names the profile with the mfa_serial: the profile asked
	// for, or the first of its source_profile chain that has one. One
	// session per such profile serves every tenant that reaches it.
	Profile string
	Serial  string // its mfa_serial
	// Roles are assumed in turn with the session's credentials, from the
	// MFA profile's own role_arn down to the profile asked for; none when
	// the MFA profile holds the keys and the chain assumes no role.
	Roles []ChainRole
	// Signed returns an STS client signing with creds, in the profile's
	// region and at its endpoint.
	Signed func(creds aws.Credentials) STSClient
}

// ChainRole is a role of a profile chain, as the shared config names it.
type ChainRole struct {
	Profile     string // whose role_arn it is
	ARN         string
	SessionName string        // role_session_name; empty: the tenant's session name
	ExternalID  string        // external_id
	Duration    time.Duration // duration_seconds; zero: the tenant's duration
}

// mfaChain finds the first profile of sc's source_profile chain with an
// mfa_serial (nil if none) and the roles assumed from it down to sc, in the
// order they are assumed.
func mfaChain(sc *config.SharedConfig) (*config.SharedConfig, []ChainRole) {
	var chain []*config.SharedConfig // from sc towards its sources
	for l, depth := sc, 0; l != nil && depth < maxChain; l, depth = l.Source, depth+1 {
		chain = append(chain, l)
		if l.MFASerial == "" {
			continue
		}
		var roles []ChainRole
		for i := len(chain) - 1; i >= 0; i-- {
			if c := chain[i]; c.RoleARN != "" {
				r := ChainRole{Profile: c.Profile, ARN: c.RoleARN, SessionName: c.RoleSessionName, ExternalID: c.ExternalID}
				if c.RoleDurationSeconds != nil {
					r.Duration = *c.RoleDurationSeconds
				}
				roles = append(roles, r)
			}
		}
		return l, roles
	}
	return nil, nil
}

// MFAProfile is the profile whose MFA session profile's credentials need:
// profile itself or a profile of its source_profile chain; "" when none has
// an mfa_serial or the profile cannot be read.
func MFAProfile(ctx context.Context, profile string) string {
	sc, err := sharedConfigProfile(ctx, profile)
	if err != nil {
		return ""
	}
	if root, _ := mfaChain(&sc); root != nil {
		return root.Profile
	}
	return ""
}

// mfaProfile loads a profile whose chain reaches root, an mfa_serial
// profile: its credentials are the long-term keys of root's source_profile,
// or of root itself when root assumes no role.
func (l *Loader) mfaProfile(ctx context.Context, profile string, root *config.SharedConfig, roles []ChainRole) (*Profile, error) {
	keys := root.Profile
	if root.RoleARN != "" {
		keys = root.SourceProfileName
	}
	if keys == "" || (keys == root.Profile && root.RoleARN != "") {
		// credential_source, or a profile that is its own source: the
		// keys cannot be loaded apart from the role.
		return nil, &tenants.UpstreamError{Code: "ProfileNotFound",
			Message: fmt.Sprintf("profile %q has mfa_serial and role_arn but no separate source_profile holding long-term keys; imds-proxy supports mfa_serial on a profile with keys, or on a role profile whose source_profile has them", root.Profile)}
	}
	cfg, err := l.config(ctx, keys)
	if err != nil {
		return nil, err
	}
	signed := func(c aws.Credentials) STSClient {
		return sts.NewFromConfig(cfg, func(o *sts.Options) {
			o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
		})
	}
	return &Profile{Name: profile, Credentials: cfg.Credentials, STS: sts.NewFromConfig(cfg),
		MFA: &MFA{Profile: root.Profile, Serial: root.MFASerial, Roles: roles, Signed: signed}}, nil
}

// mfaMargin is how long before its end a session stops being used: a role
// assumed with it must still be asked for while it is valid.
const mfaMargin = time.Minute

// MFASessions holds the MFA sessions of profiles with mfa_serial, by
// profile name: one sts:GetSessionToken serves every tenant whose profile
// is, or chains from, that profile.
type MFASessions struct {
	load ProfileLoader
	now  func() time.Time

	mu       sync.Mutex
	duration time.Duration
	sessions map[string]aws.Credentials // by MFA.Profile
}

// NewMFASessions returns a holder of no session yet, loading profiles with
// load; now is the clock (if nil, time.Now).
func NewMFASessions(load ProfileLoader, now func() time.Time) *MFASessions {
	if now == nil {
		now = time.Now
	}
	return &MFASessions{load: load, now: now, duration: tenants.DefaultMFADuration, sessions: map[string]aws.Credentials{}}
}

// SetDuration sets how long the sessions started from now on last (zero:
// tenants.DefaultMFADuration); sessions already started keep theirs.
func (m *MFASessions) SetDuration(d time.Duration) {
	if d <= 0 {
		d = tenants.DefaultMFADuration
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.duration = d
}

// session returns the session of the MFA profile named profile while it is
// usable, and when the last one ended (zero if there was none).
func (m *MFASessions) session(profile string) (aws.Credentials, time.Time, bool) {
	if m == nil {
		return aws.Credentials{}, time.Time{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.sessions[profile]
	if !ok {
		return aws.Credentials{}, time.Time{}, false
	}
	if !m.now().Before(c.Expires.Add(-mfaMargin)) {
		return aws.Credentials{}, c.Expires, false
	}
	return c, time.Time{}, true
}

// forget drops the session c of profile, which AWS no longer accepts; a
// newer session stays.
func (m *MFASessions) forget(profile string, c aws.Credentials) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.sessions[profile]; ok && cur.AccessKeyID == c.AccessKeyID {
		cur.Expires = m.now()
		m.sessions[profile] = cur
	}
}

// MFAStarted is a session started with a code.
type MFAStarted struct {
	Profile    string // the profile with the mfa_serial (MFA.Profile)
	Serial     string
	Expiration time.Time
}

// Start asks STS for a session of profile's MFA profile with code. The
// code goes to STS and nowhere else: not into an error, not into a log. A
// refused code changes nothing: the current session, if any, stays.
// Failures are *tenants.UpstreamError.
func (m *MFASessions) Start(ctx context.Context, profile, code string) (MFAStarted, error) {
	name := profileName(profile)
	if !validMFACode(code) {
		return MFAStarted{}, &tenants.UpstreamError{Code: "InvalidMFACode",
			Message: fmt.Sprintf("an MFA code is the 6 digits the device of profile %q shows", name)}
	}
	p, err := m.load(ctx, profile)
	if err != nil {
		var ue *tenants.UpstreamError
		if errors.As(err, &ue) {
			return MFAStarted{}, err
		}
		return MFAStarted{}, &tenants.UpstreamError{Code: "ProfileNotFound", Err: err,
			Message: fmt.Sprintf("AWS profile %q cannot be loaded; check ~/.aws/config and ~/.aws/credentials", name)}
	}
	if p.MFA == nil {
		return MFAStarted{}, &tenants.UpstreamError{Code: "NoMFASerial",
			Message: fmt.Sprintf("profile %q has no mfa_serial, nor has any profile of its source_profile chain: it needs no MFA code", name)}
	}
	m.mu.Lock()
	d := m.duration
	m.mu.Unlock()
	out, err := p.STS.GetSessionToken(ctx, &sts.GetSessionTokenInput{
		SerialNumber:    aws.String(p.MFA.Serial),
		TokenCode:       aws.String(code),
		DurationSeconds: aws.Int32(int32(d / time.Second)),
	})
	if err != nil {
		return MFAStarted{}, mfaRefused(p.MFA, err)
	}
	c := fromSTS(out.Credentials)
	s := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		CanExpire: true, Expires: c.Expiration, Source: "imds-proxy mfa"}
	m.mu.Lock()
	m.sessions[p.MFA.Profile] = s
	m.mu.Unlock()
	return MFAStarted{Profile: p.MFA.Profile, Serial: p.MFA.Serial, Expiration: c.Expiration}, nil
}

// mfaRefused explains a failed sts:GetSessionToken with a code.
func mfaRefused(mfa *MFA, err error) error {
	again := fmt.Sprintf("run `imds-proxy mfa --profile %s` again with the code the device shows now", mfa.Profile)
	var api smithy.APIError
	switch {
	case errors.As(err, &api) && (api.ErrorCode() == "AccessDenied" || api.ErrorCode() == "AccessDeniedException"):
		return &tenants.UpstreamError{Code: "MFACodeRejected", Err: err,
			Message: fmt.Sprintf("AWS refused the MFA code for %s (profile %q): %s; nothing changed: %s", mfa.Serial, mfa.Profile, awsSaid(api), again)}
	case errors.As(err, &api):
		return &tenants.UpstreamError{Code: api.ErrorCode(), Err: err,
			Message: fmt.Sprintf("AWS refused an MFA session for profile %q: %s; nothing changed", mfa.Profile, awsSaid(api))}
	}
	return &tenants.UpstreamError{Code: "CredentialsUnavailable", Err: err,
		Message: fmt.Sprintf("no MFA session for profile %q: sts:GetSessionToken failed (the imds-proxy log has the cause); nothing changed", mfa.Profile)}
}

// validMFACode accepts what STS accepts as a TokenCode: six digits.
func validMFACode(code string) bool {
	if len(code) != 6 {
		return false
	}
	for _, r := range code {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// MFARequiredError is the cause of an MFARequired failure: the profile
// whose MFA session is missing or over.
type MFARequiredError struct {
	Profile string    // the profile with the mfa_serial
	Ended   time.Time // when the last session ended; zero: there was none
}

func (e *MFARequiredError) Error() string {
	if e.Ended.IsZero() {
		return fmt.Sprintf("no MFA session for profile %q", e.Profile)
	}
	return fmt.Sprintf("the MFA session of profile %q ended at %s", e.Profile, e.Ended.UTC().Format(time.RFC3339))
}

// mfaRequired is the failure of a tenant whose profile waits for a code.
func (s *ProfileCredentials) mfaRequired(p *Profile, ended time.Time) error {
	profile := profileName(s.Spec.Profile)
	what := fmt.Sprintf("profile %q has mfa_serial", profile)
	if p.MFA.Profile != profile {
		what = fmt.Sprintf("profile %q chains from profile %q, which has mfa_serial", profile, p.MFA.Profile)
	}
	state := "no MFA session yet"
	if !ended.IsZero() {
		state = "its MFA session ended at " + ended.UTC().Format(time.RFC3339)
	}
	return &tenants.UpstreamError{Code: "MFARequired", Err: &MFARequiredError{Profile: p.MFA.Profile, Ended: ended},
		Message: fmt.Sprintf("%s and %s: run `imds-proxy mfa --profile %s` on the proxy's host with a code from %s; its tenants are served at once, without a restart",
			what, state, p.MFA.Profile, p.MFA.Serial)}
}

// viaMFA obtains a tenant's credentials from the MFA session of its
// profile: the chain's roles, then the tenant's role_arn, each assumed
// with the credentials before it; with no role at all, the session's own
// credentials.
func (s *ProfileCredentials) viaMFA(ctx context.Context, p *Profile) (tenants.Credentials, error) {
	sess, ended, ok := s.MFA.session(p.MFA.Profile)
	if !ok {
		return tenants.Credentials{}, s.mfaRequired(p, ended)
	}
	// Nothing assumed with the session outlives it: when it ends, its
	// tenants are told to give a new code rather than silently served on.
	left := sess.Expires.Sub(s.now()) - mfaMargin
	cur := tenants.Credentials{AccessKeyID: sess.AccessKeyID, SecretAccessKey: sess.SecretAccessKey,
		SessionToken: sess.SessionToken, Expiration: sess.Expires}
	chained := false
	for _, r := range p.MFA.Roles {
		in := &sts.AssumeRoleInput{RoleArn: aws.String(r.ARN), RoleSessionName: aws.String(cmp.Or(r.SessionName, s.Spec.SessionName, "imds-proxy"))}
		if r.ExternalID != "" {
			in.ExternalId = aws.String(r.ExternalID)
		}
		c, err := s.assume(ctx, p.MFA.Signed(awsCreds(cur)), in, firstDuration(r.Duration, s.Spec.Duration), chained, left)
		if err != nil {
			return tenants.Credentials{}, s.sessionFailed(p, sess, err)
		}
		cur, chained = c, true
	}
	if s.Spec.RoleARN != "" {
		c, err := s.assume(ctx, p.MFA.Signed(awsCreds(cur)), s.assumeInput(), s.Spec.Duration, chained, left)
		if err != nil {
			return tenants.Credentials{}, s.sessionFailed(p, sess, err)
		}
		cur = c
	}
	if cur.AccountID == "" {
		cur.AccountID = s.callerAccount(ctx, p)
	}
	return cur, nil
}

// sessionFailed explains a failure of a call signed with the MFA session:
// a session AWS no longer accepts (revoked, or its keys deactivated) is
// forgotten, and its tenants asked for a new code.
func (s *ProfileCredentials) sessionFailed(p *Profile, sess aws.Credentials, err error) error {
	var api smithy.APIError
	if errors.As(err, &api) && (api.ErrorCode() == "ExpiredToken" || api.ErrorCode() == "InvalidClientTokenId") {
		s.MFA.forget(p.MFA.Profile, sess)
		return s.mfaRequired(p, s.now())
	}
	return s.explain(p, false, err)
}

func awsCreds(c tenants.Credentials) aws.Credentials {
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		CanExpire: true, Expires: c.Expiration}
}

func firstDuration(d ...time.Duration) time.Duration {
	for _, v := range d {
		if v > 0 {
			return v
		}
	}
	return time.Hour
}
