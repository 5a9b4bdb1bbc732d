package tenants_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

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
	return &sts.GetCallerIdentityOutput{Account: aws.String("444455556666")}, nil
}

func loaderOf(p *tenants.Profile, err error) tenants.ProfileLoader {
	return func(context.Context, string) (*tenants.Profile, error) { return p, err }
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
			src := &tenants.CredentialSource{Spec: tc.spec, Now: func() time.Time { return now },
				Load: loaderOf(&tenants.Profile{Name: tc.spec.Profile, Credentials: tc.creds, STS: f}, nil)}
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
		profile     *tenants.Profile
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
			profile: &tenants.Profile{SSO: true, SSOSession: "my-sso", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{}, errors.New("refresh cached SSO token failed, cached SSO token is expired, or not present, and cannot be refreshed")
			})},
			spec: tenants.CredentialSpec{Profile: "dev-sso"}, wantCode: "SSOSessionExpired", wantMessage: []string{"aws sso login --sso-session my-sso"},
		},
		{
			name: "legacy SSO profile names the profile",
			profile: &tenants.Profile{SSO: true, Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{}, &smithy.GenericAPIError{Code: "UnauthorizedException", Message: "Session token not found or invalid"}
			})},
			spec: tenants.CredentialSpec{Profile: "old-sso"}, wantCode: "SSOSessionExpired", wantMessage: []string{"aws sso login --profile old-sso"},
		},
		{
			name: "AccessDenied on AssumeRole names role and caller", profile: &tenants.Profile{Credentials: staticKeys()},
			spec:   tenants.CredentialSpec{Profile: "dev", RoleARN: "arn:aws:iam::111122223333:role/web", SessionName: "x1", Duration: time.Hour},
			stsErr: denied, wantCode: "AssumeRoleUnauthorizedAccess",
			wantMessage: []string{"arn:aws:iam::111122223333:role/web", "user/dev", "trust policy"},
		},
		{
			name: "rejected keys", profile: &tenants.Profile{Credentials: staticKeys()}, spec: tenants.CredentialSpec{Profile: "dev", Duration: time.Hour},
			stsErr:   &smithy.GenericAPIError{Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid."},
			wantCode: "InvalidCredentials", wantMessage: []string{`"dev"`, "renew"},
		},
		{
			name: "empty chain", spec: tenants.CredentialSpec{Profile: "default", Duration: time.Hour},
			profile: &tenants.Profile{Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{}, errors.New("failed to refresh cached credentials, no EC2 IMDS role found, operation error ec2imds: GetMetadata, access disabled")
			})},
			wantCode: "NoCredentials", wantMessage: []string{`"default"`, "~/.aws/credentials"},
		},
		{
			name: "network failure", profile: &tenants.Profile{Credentials: staticKeys()}, spec: tenants.CredentialSpec{Profile: "dev", Duration: time.Hour},
			stsErr: errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), wantCode: "CredentialsUnavailable", wantMessage: []string{"log"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.profile != nil {
				tc.profile.STS = &fakeSTS{err: tc.stsErr}
			}
			src := &tenants.CredentialSource{Spec: tc.spec, Load: loaderOf(tc.profile, tc.loadErr)}
			_, err := src.Retrieve(context.Background())
			var ce *tenants.CredentialError
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
		})
	}
}

func TestSpecKey(t *testing.T) {
	base := tenants.CredentialSpec{Profile: "dev", Duration: time.Hour, SessionName: "i-1"}
	other := base
	other.SessionName = "i-2"
	if base.Key() != other.Key() {
		t.Fatal("without a role, the session name must not split the cache entry")
	}
	withRole := base
	withRole.RoleARN = "arn:aws:iam::111122223333:role/web"
	otherRole := withRole
	otherRole.SessionName = "i-2"
	if withRole.Key() == otherRole.Key() {
		t.Fatal("with a role, different session names are different credentials")
	}
	tagged, tagged2 := withRole, withRole
	tagged.Tags = map[string]string{"a": "1", "b": "2"}
	tagged2.Tags = map[string]string{"b": "2", "a": "1"}
	if tagged.Key() != tagged2.Key() {
		t.Fatal("tag order must not matter")
	}
}

func TestMaskKeyID(t *testing.T) {
	if got := tenants.MaskKeyID("ASIAEXAMPLEKEY1234"); got != "**************1234" {
		t.Fatalf("MaskKeyID = %s", got)
	}
	if got := tenants.MaskKeyID("ab"); got != "****" {
		t.Fatalf("MaskKeyID(short) = %s", got)
	}
}

func TestSpecKeyShowsNoExternalID(t *testing.T) {
	spec := tenants.CredentialSpec{Profile: "dev", RoleARN: "arn:aws:iam::111122223333:role/web", SessionName: "s1",
		ExternalID: "very-private-external-id", Policy: `{"Statement":[]}`, Duration: time.Hour}
	other := spec
	other.ExternalID = "another-external-id"
	if strings.Contains(spec.Key(), spec.ExternalID) || strings.Contains(spec.Key(), "Statement") {
		t.Fatalf("key shows the external id or the policy: %s", spec.Key())
	}
	if spec.Key() == other.Key() {
		t.Fatal("different external ids must be different keys")
	}
}

func TestRenameKeepsTheInstanceProfileInStep(t *testing.T) {
	cfg, err := tenants.Parse("c.yaml", []byte("tenants:\n  - name: a\n    sources: [127.0.0.2]\n    credentials: {profile: dev}\n  - name: b\n    sources: [127.0.0.3]\n    credentials: {profile: dev, role_name: Developer}\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	renamed, built := cfg.Tenants[0].Role, cfg.Tenants[1].Role
	renamed.Rename("Developer")
	if renamed.Name != "Developer" || renamed.InstanceProfileARN != built.InstanceProfileARN || renamed.InstanceProfileID != built.InstanceProfileID {
		t.Fatalf("renamed %+v, want what building with role_name gives: %+v", renamed, built)
	}
}
