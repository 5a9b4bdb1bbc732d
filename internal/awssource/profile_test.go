package awssource_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// awsFiles writes a shared config and credentials file into a fresh
// directory and points the SDK at them, with an environment that names no
// profile and no keys unless a test sets them. Nothing here reaches AWS:
// the endpoint is a closed port.
func awsFiles(t *testing.T, config, credentials string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"config": config, "credentials": credentials} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_REGION", "us-east-1")
	for _, v := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(v, "")
		os.Unsetenv(v) // t.Setenv restores it; the SDK must not see it set, even empty
	}
	return dir
}

const twoProfiles = "[default]\naws_access_key_id = AKIADEFAULTPROFILE00\naws_secret_access_key = default-secret\n" +
	"[other]\naws_access_key_id = AKIAOTHERPROFILE0000\naws_secret_access_key = other-secret\n"

// TestProfileDefaultIsTheProfileDefault: with a configuration file, a
// tenant naming `profile: default` (or no profile) gets the profile
// default, whatever AWS_PROFILE or AWS_ACCESS_KEY_ID the daemon was started
// with; seed mode keeps the SDK's default chain, as the AWS CLI resolves it.
func TestProfileDefaultIsTheProfileDefault(t *testing.T) {
	tests := []struct {
		name         string
		defaultChain bool
		profile      string
		env          map[string]string
		wantKey      string
	}{
		{"config mode ignores AWS_PROFILE", false, "default", map[string]string{"AWS_PROFILE": "other"}, "AKIADEFAULTPROFILE00"},
		{"config mode ignores environment keys", false, "default",
			map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00000", "AWS_SECRET_ACCESS_KEY": "env-secret"}, "AKIADEFAULTPROFILE00"},
		{"config mode: no profile is default", false, "", map[string]string{"AWS_PROFILE": "other"}, "AKIADEFAULTPROFILE00"},
		{"config mode: a named profile over environment keys", false, "other",
			map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00000", "AWS_SECRET_ACCESS_KEY": "env-secret"}, "AKIAOTHERPROFILE0000"},
		{"seed mode: environment keys first", true, "default",
			map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00000", "AWS_SECRET_ACCESS_KEY": "env-secret"}, "AKIAENVIRONMENT00000"},
		{"seed mode: AWS_PROFILE", true, "default", map[string]string{"AWS_PROFILE": "other"}, "AKIAOTHERPROFILE0000"},
		{"seed mode: nothing set", true, "default", nil, "AKIADEFAULTPROFILE00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			awsFiles(t, "", twoProfiles)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			ps := awssource.NewLoader(awssource.Profiles{DefaultChain: tc.defaultChain})
			p, err := ps.Profile(context.Background(), tc.profile)
			if err != nil {
				t.Fatal(err)
			}
			c, err := p.Credentials.Retrieve(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if c.AccessKeyID != tc.wantKey {
				t.Fatalf("profile %q got %s, want %s", tc.profile, c.AccessKeyID, tc.wantKey)
			}
			// The mirror's EC2 client resolves the same identity.
			ec2, err := ps.EC2(context.Background(), tc.profile, "")
			if err != nil || ec2.Region != "us-east-1" {
				t.Fatalf("LoadEC2: %v %+v", err, ec2)
			}
		})
	}
	t.Run("config mode: a missing default is not the environment's", func(t *testing.T) {
		awsFiles(t, "", "[other]\naws_access_key_id = AKIAOTHERPROFILE0000\naws_secret_access_key = other-secret\n")
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT00000")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
		p, err := awssource.NewLoader(awssource.Profiles{}).Profile(context.Background(), "default")
		if err == nil {
			c, rerr := p.Credentials.Retrieve(context.Background())
			if rerr == nil {
				t.Fatalf("profile default, which does not exist, got %s", c.AccessKeyID)
			}
		}
	})
}

// TestCredentialProcessStderrIsCaptured: the SDK hands credential_process
// helpers the proxy's stderr, where a failing helper's words — a token, a
// key, the user's ARN — went raw. They are captured into the error, which
// the log shows redacted; the proxy's stderr stays clean. This holds for a
// helper feeding a profile directly and for one feeding a role chain.
func TestCredentialProcessStderrIsCaptured(t *testing.T) {
	dir := t.TempDir()
	failing := filepath.Join(dir, "failing-helper")
	script := "#!/bin/sh\necho 'helper: refresh_token=SEKRETREFRESH123 rejected for arn:aws:iam::444455556666:user/alice' >&2\n" +
		"echo 'hint: AKIAIOSFODNN7EXAMPLE is disabled' >&2\nexit 3\n"
	if err := os.WriteFile(failing, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	working := filepath.Join(dir, "working-helper")
	script = "#!/bin/sh\necho 'helper: using the cache' >&2\n" +
		`echo '{"Version": 1, "AccessKeyId": "AKIAFROMHELPER000000", "SecretAccessKey": "helper-secret"}'` + "\n"
	if err := os.WriteFile(working, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	awsFiles(t, "[profile failing]\ncredential_process = "+failing+"\n"+
		"[profile chained]\nrole_arn = arn:aws:iam::111122223333:role/web\nsource_profile = failing\n"+
		"[profile self]\nrole_arn = arn:aws:iam::111122223333:role/self\ncredential_process = "+failing+"\n"+
		"[profile working]\ncredential_process = "+working+"\n", "")

	stderr := captureStderr(t)
	for _, profile := range []string{"failing", "chained", "self"} {
		t.Run(profile, func(t *testing.T) {
			src := &awssource.ProfileCredentials{Spec: tenants.CredentialSpec{Profile: profile, RoleARN: roleOf(profile)},
				Load: awssource.NewLoader(awssource.Profiles{}).Profile}
			_, err := src.Retrieve(context.Background())
			var ce *tenants.UpstreamError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want an UpstreamError", err)
			}
			cause := ce.Cause()
			if !strings.Contains(cause, "helper: refresh_token=") || !strings.Contains(cause, "hint:") {
				t.Fatalf("the log's cause lacks the helper's stderr: %s", cause)
			}
			for _, leak := range []string{"SEKRETREFRESH123", "user/alice", "AKIAIOSFODNN7EXAMPLE"} {
				if strings.Contains(cause, leak) || strings.Contains(ce.Message, leak) {
					t.Fatalf("%q leaks %s", err, leak)
				}
			}
			if profile == "failing" && !strings.Contains(ce.Message, "credential_process") {
				t.Errorf("message %q does not name the credential_process", ce.Message)
			}
		})
	}
	p, err := awssource.NewLoader(awssource.Profiles{}).Profile(context.Background(), "working")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := p.Credentials.Retrieve(context.Background()); err != nil || c.AccessKeyID != "AKIAFROMHELPER000000" {
		t.Fatalf("working helper: %v %s", err, c.AccessKeyID)
	}
	if got := stderr(); got != "" {
		t.Fatalf("helpers wrote to the proxy's stderr:\n%s", got)
	}
}

func roleOf(profile string) string {
	if profile == "failing" {
		return ""
	}
	return "arn:aws:iam::111122223333:role/tenant"
}

// captureStderr points os.Stderr, which the SDK hands helpers, at a pipe
// until the returned function reads what arrived.
func captureStderr(t *testing.T) func() string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	done := false
	read := func() string {
		if !done {
			done = true
			os.Stderr = saved
			w.Close()
		}
		return <-got
	}
	t.Cleanup(func() {
		if !done {
			read()
		}
	})
	return read
}
