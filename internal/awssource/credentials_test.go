package awssource_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// fakeSTS records what it is asked and answers what the test set.
type fakeSTS struct {
	assumed  []*sts.AssumeRoleInput
	sessions []*sts.GetSessionTokenInput
	callers  int
	err      error
}

var fakeExpiry = time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC)

func stsCreds(prefix string) *ststypes.Credentials {
	return &ststypes.Credentials{
		AccessKeyId: aws.String(prefix + "KEYID1234"), SecretAccessKey: aws.String(prefix + "-secret"),
		SessionToken: aws.String(prefix + "-token"), Expiration: aws.Time(fakeExpiry),
	}
}

func (f *fakeSTS) AssumeRole(_ context.Context, in *sts.AssumeRoleInput, _ ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	f.assumed = append(f.assumed, in)
	if f.err != nil {
		return nil, f.err
	}
	return &sts.AssumeRoleOutput{Credentials: stsCreds("ASIAROLE"),
		AssumedRoleUser: &ststypes.AssumedRoleUser{Arn: aws.String("arn:aws:sts::111122223333:assumed-role/web/" + aws.ToString(in.RoleSessionName))}}, nil
}

func (f *fakeSTS) GetSessionToken(_ context.Context, in *sts.GetSessionTokenInput, _ ...func(*sts.Options)) (*sts.GetSessionTokenOutput, error) {
	f.sessions = append(f.sessions, in)
	if f.err != nil {
		return nil, f.err
	}
	return &sts.GetSessionTokenOutput{Credentials: stsCreds("ASIASESSION")}, nil
}

func (f *fakeSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	f.callers++
	return &sts.GetCallerIdentityOutput{Account: aws.String("444455556666"), Arn: aws.String("arn:aws:iam::444455556666:user/dev")}, nil
}

func loaderOf(p *awssource.Profile, err error) awssource.ProfileLoader {
	return func(context.Context, string) (*awssource.Profile, error) { return p, err }
}

func staticKeys() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider("AKIALONGTERM0000", "long-term-secret", "")
}

func TestRetrieve(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	temp := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "ASIASSO0000", SecretAccessKey: "sso-secret-value", SessionToken: "sso-session-token",
			CanExpire: true, Expires: fakeExpiry, AccountID: "777788889999"}, nil
	})
	tests := []struct {
		name        string
		spec        tenants.CredentialSpec
		creds       aws.CredentialsProvider
		wantKey     string
		wantAccount string
		check       func(t *testing.T, f *fakeSTS)
	}{
		{
			name: "long-term keys become a session token", spec: tenants.CredentialSpec{Profile: "dev", Duration: 2 * time.Hour},
			creds: staticKeys(), wantKey: "ASIASESSIONKEYID1234", wantAccount: "444455556666",
			check: func(t *testing.T, f *fakeSTS) {
				if len(f.sessions) != 1 || aws.ToInt32(f.sessions[0].DurationSeconds) != 7200 {
					t.Fatalf("GetSessionToken calls %+v, want one for 7200s", f.sessions)
				}
			},
		},
		{
			name: "role_arn assumes the role with every parameter",
			spec: tenants.CredentialSpec{Profile: "dev", RoleARN: "arn:aws:iam::111122223333:role/web", SessionName: "i-0abc",
				ExternalID: "ext", SourceIdentity: "alice", Policy: `{"Version":"2012-10-17"}`,
				PolicyARNs: []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}, Tags: map[string]string{"b": "2", "a": "1"}, Duration: time.Hour},
			creds: staticKeys(), wantKey: "ASIAROLEKEYID1234", wantAccount: "111122223333",
			check: func(t *testing.T, f *fakeSTS) {
				in := f.assumed[0]
				if aws.ToString(in.RoleArn) != "arn:aws:iam::111122223333:role/web" || aws.ToString(in.RoleSessionName) != "i-0abc" ||
					aws.ToString(in.ExternalId) != "ext" || aws.ToString(in.SourceIdentity) != "alice" ||
					aws.ToString(in.Policy) == "" || len(in.PolicyArns) != 1 || aws.ToInt32(in.DurationSeconds) != 3600 {
					t.Fatalf("AssumeRole input %+v", in)
				}
				if len(in.Tags) != 2 || aws.ToString(in.Tags[0].Key) != "a" {
					t.Fatalf("tags %+v, want a then b", in.Tags)
				}
				if len(f.sessions) != 0 {
					t.Fatal("GetSessionToken called although a role is assumed")
				}
			},
		},
		{
			name:  "role chaining caps the duration at 1h",
			spec:  tenants.CredentialSpec{Profile: "sso", RoleARN: "arn:aws:iam::111122223333:role/web", SessionName: "s1", Duration: 4 * time.Hour},
			creds: temp, wantKey: "ASIAROLEKEYID1234", wantAccount: "111122223333",
			check: func(t *testing.T, f *fakeSTS) {
				if d := aws.ToInt32(f.assumed[0].DurationSeconds); d != 3600 {
					t.Fatalf("chained AssumeRole asked %ds, want 3600", d)
				}
			},
		},
		{
			name: "temporary credentials are served as they are", spec: tenants.CredentialSpec{Profile: "sso", Duration: time.Hour},
			creds: temp, wantKey: "ASIASSO0000", wantAccount: "777788889999",
			check: func(t *testing.T, f *fakeSTS) {
				if len(f.assumed)+len(f.sessions)+f.callers != 0 {
					t.Fatalf("STS called for ready temporary credentials: %+v", f)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSTS{}
			src := &awssource.ProfileCredentials{Spec: tc.spec, Now: func() time.Time { return now },
				Load: loaderOf(&awssource.Profile{Name: tc.spec.Profile, Credentials: tc.creds, STS: f}, nil)}
			c, err := src.Retrieve(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if c.AccessKeyID != tc.wantKey || c.SessionToken == "" || !c.Expiration.Equal(fakeExpiry) || c.AccountID != tc.wantAccount || !c.Retrieved.Equal(now) {
				t.Fatalf("credentials %+v (key %s), want key %s account %s", c, c.AccessKeyID, tc.wantKey, tc.wantAccount)
			}
			if strings.Contains(c.String(), c.SecretAccessKey) || strings.Contains(c.String(), c.SessionToken) {
				t.Fatalf("String() shows a secret: %s", c)
			}
			tc.check(t, f)
		})
	}
}

func TestRetrieveExplainsFailures(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "AccessDenied", Message: "User: arn:aws:iam::444455556666:user/dev is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/web"}
	tests := []struct {
		name        string
		profile     *awssource.Profile
		loadErr     error
		spec        tenants.CredentialSpec
		stsErr      error
		wantCode    string
		wantMessage []string
	}{
		{
			name: "unknown profile", loadErr: errors.New("failed to get shared config profile, nope"),
			spec: tenants.CredentialSpec{Profile: "nope"}, wantCode: "ProfileNotFound", wantMessage: []string{`"nope"`, "~/.aws/config"},
		},
		{
			name: "expired SSO session names the login command",
			profile: &awssource.Profile{SSO: true, SSOSession: "my-sso", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{}, errors.New("refresh cached SSO token failed, cached SSO token is expired, or not present, and cannot be refreshed")
			})},
			spec: tenants.CredentialSpec{Profile: "dev-sso"}, wantCode: "SSOSessionExpired", wantMessage: []string{"aws sso login --sso-session my-sso"},
		},
		{
			name: "legacy SSO profile names the profile",
			profile: &awssource.Profile{SSO: true, Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{}, &smithy.GenericAPIError{Code: "UnauthorizedException", Message: "Session token not found or invalid"}
			})},
			spec: tenants.CredentialSpec{Profile: "old-sso"}, wantCode: "SSOSessionExpired", wantMessage: []string{"aws sso login --profile old-sso"},
		},
		{
			name: "AccessDenied on AssumeRole names role and caller", profile: &awssource.Profile{Credentials: staticKeys()},
			spec:   tenants.CredentialSpec{Profile: "dev", RoleARN: "arn:aws:iam::111122223333:role/web", SessionName: "x1", Duration: time.Hour},
			stsErr: denied, wantCode: "AssumeRoleUnauthorizedAccess",
			wantMessage: []string{"arn:aws:iam::111122223333:role/web", "arn:aws:iam::444455556666:user/***", "trust policy"},
		},
		{
			name: "other refusals quote AWS redacted", profile: &awssource.Profile{Credentials: staticKeys()},
			spec: tenants.CredentialSpec{Profile: "dev", Duration: time.Hour},
			stsErr: &smithy.GenericAPIError{Code: "RegionDisabledException",
				Message: "STS is not activated for AKIAIOSFODNN7EXAMPLE (secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY) of arn:aws:sts::444455556666:assumed-role/Admin/alice@example.com"},
			wantCode: "RegionDisabledException", wantMessage: []string{`"dev"`, "MPLE", "assumed-role/***"},
		},
		{
			name: "rejected keys", profile: &awssource.Profile{Credentials: staticKeys()}, spec: tenants.CredentialSpec{Profile: "dev", Duration: time.Hour},
			stsErr:   &smithy.GenericAPIError{Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid."},
			wantCode: "InvalidCredentials", wantMessage: []string{`"dev"`, "renew"},
		},
		{
			name: "empty chain", spec: tenants.CredentialSpec{Profile: "default", Duration: time.Hour},
			// The chain's last link as Loader.Profile leaves it: instance
			// metadata, disabled.
			profile: &awssource.Profile{Credentials: aws.NewCredentialsCache(ec2rolecreds.New(func(o *ec2rolecreds.Options) {
				o.Client = imds.New(imds.Options{ClientEnableState: imds.ClientDisabled})
			}))},
			wantCode: "NoCredentials", wantMessage: []string{`"default"`, "~/.aws/credentials"},
		},
		{
			name: "empty static keys", spec: tenants.CredentialSpec{Profile: "blank", Duration: time.Hour},
			profile:  &awssource.Profile{Credentials: credentials.NewStaticCredentialsProvider("", "", "")},
			wantCode: "NoCredentials", wantMessage: []string{`"blank"`},
		},
		{
			name: "SSO portal unreachable is not an expired session", spec: tenants.CredentialSpec{Profile: "dev-sso"},
			profile: &awssource.Profile{SSO: true, Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{}, &smithy.OperationError{ServiceID: "SSO", OperationName: "GetRoleCredentials", Err: errors.New("dial tcp: connection refused")}
			})},
			wantCode: "CredentialsUnavailable", wantMessage: []string{`"dev-sso"`},
		},
		{
			name: "network failure", profile: &awssource.Profile{Credentials: staticKeys()}, spec: tenants.CredentialSpec{Profile: "dev", Duration: time.Hour},
			stsErr: errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), wantCode: "CredentialsUnavailable", wantMessage: []string{"log"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.profile != nil {
				tc.profile.STS = &fakeSTS{err: tc.stsErr}
			}
			src := &awssource.ProfileCredentials{Spec: tc.spec, Load: loaderOf(tc.profile, tc.loadErr)}
			_, err := src.Retrieve(context.Background())
			var ce *tenants.UpstreamError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a CredentialError", err)
			}
			if ce.Code != tc.wantCode {
				t.Fatalf("code %s, want %s (%v)", ce.Code, tc.wantCode, err)
			}
			for _, w := range tc.wantMessage {
				if !strings.Contains(ce.Message, w) {
					t.Fatalf("message %q lacks %q", ce.Message, w)
				}
			}
			if strings.Contains(err.Error(), "long-term-secret") {
				t.Fatalf("error shows the secret: %v", err)
			}
			// The message reaches clients' failure documents, /status,
			// /readyz and the log as it is.
			for _, leak := range []string{"user/dev", "alice@example.com", "Admin/", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI"} {
				if strings.Contains(ce.Message, leak) || strings.Contains(ce.Summary(), leak) || strings.Contains(err.Error(), leak) {
					t.Fatalf("%q leaks %q", err, leak)
				}
			}
		})
	}
}

// TestRetrieveLogsTheCallerOnce: the first successful fetch of a spec logs
// the identity the profile resolved to, so that an operator sees whose
// credentials a profile (or the environment) holds; later fetches do not
// ask again.
func TestRetrieveLogsTheCallerOnce(t *testing.T) {
	var log strings.Builder
	f := &fakeSTS{}
	src := &awssource.ProfileCredentials{Spec: tenants.CredentialSpec{Profile: "dev", RoleARN: "arn:aws:iam::111122223333:role/web", SessionName: "s1", Duration: time.Hour},
		Load: loaderOf(&awssource.Profile{Credentials: staticKeys(), STS: f}, nil), Log: zerolog.New(&log)}
	for range 3 {
		if _, err := src.Retrieve(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(log.String(), "arn:aws:iam::444455556666:user/dev"); n != 1 || !strings.Contains(log.String(), `"profile":"dev"`) {
		t.Fatalf("log %s: want the caller once, with the profile", log.String())
	}
	if f.callers != 1 {
		t.Fatalf("GetCallerIdentity called %d times, want once", f.callers)
	}
}
