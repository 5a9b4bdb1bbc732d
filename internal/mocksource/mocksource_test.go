package mocksource_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/internal/mocksource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

var (
	keyIDShape  = regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`)
	secretShape = regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
	tokenShape  = regexp.MustCompile(`^[A-Za-z0-9+/=]{300,}$`)
)

func TestCredentialsLookLikeSTS(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 500, time.UTC)
	clock := func() time.Time { return now }
	src := &mocksource.Credentials{Spec: tenants.CredentialSpec{Mock: true, Duration: 15 * time.Minute}, Now: clock}
	first, err := src.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		re *regexp.Regexp
		v  string
	}{"AccessKeyID": {keyIDShape, first.AccessKeyID}, "SecretAccessKey": {secretShape, first.SecretAccessKey}, "SessionToken": {tokenShape, first.SessionToken}} {
		if !c.re.MatchString(c.v) {
			t.Errorf("%s = %q, want %s", name, c.v, c.re)
		}
	}
	if want := now.Truncate(time.Second).Add(15 * time.Minute); !first.Expiration.Equal(want) || !first.Retrieved.Equal(now.Truncate(time.Second)) {
		t.Errorf("Expiration %v, Retrieved %v; want %v and the clock's second", first.Expiration, first.Retrieved, want)
	}

	// A refresh later: new keys, a later expiry.
	now = now.Add(10 * time.Minute)
	second, err := src.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if second.AccessKeyID == first.AccessKeyID || second.SecretAccessKey == first.SecretAccessKey || second.SessionToken == first.SessionToken {
		t.Errorf("a second retrieval repeated the first's keys")
	}
	if !second.Expiration.Equal(first.Expiration.Add(10 * time.Minute)) {
		t.Errorf("second Expiration %v, want 10m after %v", second.Expiration, first.Expiration)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, context.DeadlineExceeded }

func TestNoRandomnessIsAnUpstreamError(t *testing.T) {
	_, err := (&mocksource.Credentials{Rand: failingReader{}}).Retrieve(context.Background())
	if ue, ok := err.(*tenants.UpstreamError); !ok || ue.Code != "MockCredentialsFailed" {
		t.Errorf("err = %v, want an UpstreamError MockCredentialsFailed", err)
	}
}
