package awssource_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

const testSerial = "arn:aws:iam::111122223333:mfa/dev"

// mfaSTS is STS for an MFA profile: GetSessionToken with the long-term
// keys, AssumeRole signed with whatever credentials Signed was given.
type mfaSTS struct {
	mu       sync.Mutex
	now      func() time.Time
	sessions []*sts.GetSessionTokenInput
	assumed  []assumed
	refuse   bool // refuse the code, as STS does a wrong one
	n        int
}

type assumed struct {
	in     *sts.AssumeRoleInput
	signer string // access key id of the credentials that signed
}

func (f *mfaSTS) GetSessionToken(_ context.Context, in *sts.GetSessionTokenInput, _ ...func(*sts.Options)) (*sts.GetSessionTokenOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = append(f.sessions, in)
	if f.refuse {
		return nil, &smithy.GenericAPIError{Code: "AccessDenied", Message: "MultiFactorAuthentication failed with invalid MFA one time pass code."}
	}
	f.n++
	d := time.Duration(aws.ToInt32(in.DurationSeconds)) * time.Second
	return &sts.GetSessionTokenOutput{Credentials: &ststypes.Credentials{
		AccessKeyId: aws.String("ASIAMFASESSION" + string(rune('0'+f.n))), SecretAccessKey: aws.String("mfa-secret"),
		SessionToken: aws.String("mfa-token"), Expiration: aws.Time(f.now().Add(d))}}, nil
}

func (f *mfaSTS) AssumeRole(context.Context, *sts.AssumeRoleInput, ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	return nil, errors.New("AssumeRole with the long-term keys: the MFA session must sign it")
}

func (f *mfaSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Account: aws.String("111122223333"), Arn: aws.String("arn:aws:iam::111122223333:user/dev")}, nil
}

// signedSTS is the STS client Signed returns: it records its signer.
type signedSTS struct {
	*mfaSTS
	creds aws.Credentials
}

func (s signedSTS) AssumeRole(_ context.Context, in *sts.AssumeRoleInput, _ ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assumed = append(s.assumed, assumed{in: in, signer: s.creds.AccessKeyID})
	d := time.Duration(aws.ToInt32(in.DurationSeconds)) * time.Second
	return &sts.AssumeRoleOutput{
		Credentials: &ststypes.Credentials{AccessKeyId: aws.String("ASIAROLE" + aws.ToString(in.RoleSessionName)), SecretAccessKey: aws.String("role-secret"),
			SessionToken: aws.String("role-token"), Expiration: aws.Time(s.now().Add(d))},
		AssumedRoleUser: &ststypes.AssumedRoleUser{Arn: aws.String("arn:aws:sts::111122223333:assumed-role/x/" + aws.ToString(in.RoleSessionName))}}, nil
}

func (f *mfaSTS) profile(roles ...awssource.ChainRole) *awssource.Profile {
	return &awssource.Profile{Name: "dev", Credentials: staticKeys(), STS: f,
		MFA: &awssource.MFA{Profile: "dev", Serial: testSerial, Roles: roles,
			Signed: func(c aws.Credentials) awssource.STSClient { return signedSTS{f, c} }}}
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func upstreamCode(t *testing.T, err error) *tenants.UpstreamError {
	t.Helper()
	var ue *tenants.UpstreamError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v is not an UpstreamError", err)
	}
	return ue
}

// TestMFASession: tenants of an mfa_serial profile are told the command
// to run, one code serves them all, and the end of the session brings the
// command back.
func TestMFASession(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	f := &mfaSTS{now: clock.Now}
	p := f.profile(awssource.ChainRole{Profile: "dev", ARN: "arn:aws:iam::111122223333:role/admin"})
	load := loaderOf(p, nil)
	sessions := awssource.NewMFASessions(load, clock.Now)
	web := &awssource.ProfileCredentials{Spec: tenants.CredentialSpec{Profile: "dev", SessionName: "i-web", Duration: time.Hour}, Load: load, MFA: sessions, Now: clock.Now}
	worker := &awssource.ProfileCredentials{Spec: tenants.CredentialSpec{Profile: "dev", SessionName: "i-worker", Duration: time.Hour,
		RoleARN: "arn:aws:iam::111122223333:role/worker"}, Load: load, MFA: sessions, Now: clock.Now}
	ctx := context.Background()

	for _, src := range []*awssource.ProfileCredentials{web, worker} {
		_, err := src.Retrieve(ctx)
		ue := upstreamCode(t, err)
		if ue.Code != "MFARequired" || !strings.Contains(ue.Message, "`imds-proxy mfa --profile dev`") || !strings.Contains(ue.Message, testSerial) {
			t.Fatalf("before a code: %v, want MFARequired naming `imds-proxy mfa --profile dev` and the device", err)
		}
	}
	if len(f.sessions) != 0 {
		t.Fatalf("GetSessionToken called %d times before a code", len(f.sessions))
	}

	started, err := sessions.Start(ctx, "dev", "123456")
	if err != nil {
		t.Fatal(err)
	}
	if started.Profile != "dev" || !started.Expiration.Equal(clock.Now().Add(12*time.Hour)) {
		t.Errorf("started %+v, want profile dev for 12h", started)
	}
	if len(f.sessions) != 1 {
		t.Fatalf("GetSessionToken calls: %d, want 1", len(f.sessions))
	}
	in := f.sessions[0]
	if aws.ToString(in.SerialNumber) != testSerial || aws.ToString(in.TokenCode) != "123456" || aws.ToInt32(in.DurationSeconds) != 43200 {
		t.Errorf("GetSessionToken(serial %q, code %q, %ds), want %q, 123456, 43200s",
			aws.ToString(in.SerialNumber), aws.ToString(in.TokenCode), aws.ToInt32(in.DurationSeconds), testSerial)
	}

	c, err := web.Retrieve(ctx)
	if err != nil || c.AccessKeyID != "ASIAROLEi-web" {
		t.Fatalf("web after the code: %v %v, want the profile's role", c, err)
	}
	c, err = worker.Retrieve(ctx)
	if err != nil || c.AccessKeyID != "ASIAROLEi-worker" {
		t.Fatalf("worker after the code: %v %v, want its role", c, err)
	}
	if len(f.sessions) != 1 {
		t.Errorf("GetSessionToken calls: %d, want the one session for both tenants", len(f.sessions))
	}
	// web: the profile's role, signed by the session. worker: the
	// profile's role, then its own, signed by the first (chained: 1h).
	want := []assumed{
		{signer: "ASIAMFASESSION1"}, {signer: "ASIAMFASESSION1"}, {signer: "ASIAROLEi-worker"},
	}
	if len(f.assumed) != len(want) {
		t.Fatalf("AssumeRole calls %d, want %d", len(f.assumed), len(want))
	}
	for i, w := range want {
		if f.assumed[i].signer != w.signer {
			t.Errorf("AssumeRole %d (%s) signed by %s, want %s", i, aws.ToString(f.assumed[i].in.RoleArn), f.assumed[i].signer, w.signer)
		}
	}
	if got := aws.ToString(f.assumed[2].in.RoleArn); got != "arn:aws:iam::111122223333:role/worker" {
		t.Errorf("the tenant's role assumed last: %s", got)
	}

	// Near its end, nothing assumed outlives the session.
	clock.Add(11*time.Hour + 30*time.Minute)
	c, err = web.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last := f.assumed[len(f.assumed)-1]; aws.ToInt32(last.in.DurationSeconds) != int32((29 * time.Minute).Seconds()) {
		t.Errorf("AssumeRole 30m before the session ends asks %ds, want %ds", aws.ToInt32(last.in.DurationSeconds), int32((29 * time.Minute).Seconds()))
	}

	clock.Add(time.Hour) // the session is over
	_, err = web.Retrieve(ctx)
	if ue := upstreamCode(t, err); ue.Code != "MFARequired" || !strings.Contains(ue.Message, "ended at") ||
		!strings.Contains(ue.Message, "`imds-proxy mfa --profile dev`") {
		t.Errorf("after the session: %v, want MFARequired saying it ended", err)
	}
}

// TestMFAWrongCode: a refused code is an error saying so, and the session
// in use stays.
func TestMFAWrongCode(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	f := &mfaSTS{now: clock.Now}
	load := loaderOf(f.profile(), nil)
	sessions := awssource.NewMFASessions(load, clock.Now)
	sessions.SetDuration(36 * time.Hour)
	ctx := context.Background()
	if _, err := sessions.Start(ctx, "dev", "123456"); err != nil {
		t.Fatal(err)
	}
	if d := aws.ToInt32(f.sessions[0].DurationSeconds); d != 36*3600 {
		t.Errorf("DurationSeconds %d, want 36h as set", d)
	}
	f.refuse = true
	_, err := sessions.Start(ctx, "dev", "654321")
	ue := upstreamCode(t, err)
	if ue.Code != "MFACodeRejected" || !strings.Contains(ue.Message, "nothing changed") || strings.Contains(err.Error(), "654321") {
		t.Errorf("wrong code: %v, want MFACodeRejected saying nothing changed, without the code", err)
	}
	src := &awssource.ProfileCredentials{Spec: tenants.CredentialSpec{Profile: "dev", Duration: time.Hour}, Load: load, MFA: sessions, Now: clock.Now}
	c, err := src.Retrieve(ctx)
	if err != nil || c.AccessKeyID != "ASIAMFASESSION1" {
		t.Errorf("after a wrong code: %v %v, want the first session still served", c, err)
	}
	for _, bad := range []string{"12345", "abcdef", "1234567", ""} {
		_, err := sessions.Start(ctx, "dev", bad)
		if ue := upstreamCode(t, err); ue.Code != "InvalidMFACode" {
			t.Errorf("code %q: %v, want InvalidMFACode", bad, err)
		}
	}
	if len(f.sessions) != 2 {
		t.Errorf("GetSessionToken calls %d, want 2: malformed codes never reach STS", len(f.sessions))
	}
}

func TestMFANotNeeded(t *testing.T) {
	load := loaderOf(&awssource.Profile{Name: "plain", Credentials: staticKeys(), STS: &fakeSTS{}}, nil)
	_, err := awssource.NewMFASessions(load, nil).Start(context.Background(), "plain", "123456")
	if ue := upstreamCode(t, err); ue.Code != "NoMFASerial" {
		t.Errorf("a profile without mfa_serial: %v, want NoMFASerial", err)
	}
}

// TestLoaderMFAProfiles: the SDK refuses mfa_serial role profiles without a
// terminal; the loader loads them as the long-term keys of their source
// and the roles to assume with the MFA session, for the profile itself
// and for profiles chained from it.
func TestLoaderMFAProfiles(t *testing.T) {
	awsFiles(t, "[profile admin]\nrole_arn = arn:aws:iam::111122223333:role/admin\nsource_profile = keys\nmfa_serial = "+testSerial+"\nrole_session_name = me\n"+
		"[profile deeper]\nrole_arn = arn:aws:iam::444455556666:role/deploy\nsource_profile = admin\nexternal_id = ext\n"+
		"[profile keysmfa]\naws_access_key_id = AKIAKEYSMFA000000000\naws_secret_access_key = keysmfa-secret\nmfa_serial = "+testSerial+"\n",
		"[keys]\naws_access_key_id = AKIAKEYS000000000000\naws_secret_access_key = keys-secret\n")
	tests := []struct {
		profile, root, key string
		roles              []string
	}{
		{"admin", "admin", "AKIAKEYS000000000000", []string{"arn:aws:iam::111122223333:role/admin"}},
		{"deeper", "admin", "AKIAKEYS000000000000", []string{"arn:aws:iam::111122223333:role/admin", "arn:aws:iam::444455556666:role/deploy"}},
		{"keysmfa", "keysmfa", "AKIAKEYSMFA000000000", nil},
	}
	loader := awssource.NewLoader(awssource.Profiles{})
	for _, tc := range tests {
		t.Run(tc.profile, func(t *testing.T) {
			p, err := loader.Profile(context.Background(), tc.profile)
			if err != nil {
				t.Fatal(err)
			}
			if p.MFA == nil || p.MFA.Profile != tc.root || p.MFA.Serial != testSerial {
				t.Fatalf("MFA %+v, want the mfa_serial of %s", p.MFA, tc.root)
			}
			var roles []string
			for _, r := range p.MFA.Roles {
				roles = append(roles, r.ARN)
			}
			if strings.Join(roles, " ") != strings.Join(tc.roles, " ") {
				t.Errorf("roles %q, want %q", roles, tc.roles)
			}
			c, err := p.Credentials.Retrieve(context.Background())
			if err != nil || c.AccessKeyID != tc.key {
				t.Errorf("credentials %s %v, want the long-term keys %s", c.AccessKeyID, err, tc.key)
			}
			if got := awssource.MFAProfile(context.Background(), tc.profile); got != tc.root {
				t.Errorf("MFAProfile(%s) = %q, want %q", tc.profile, got, tc.root)
			}
		})
	}
	if got := awssource.MFAProfile(context.Background(), "keys"); got != "" {
		t.Errorf("MFAProfile(keys) = %q, want none", got)
	}
}
