package tenants_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/tenants"
)

func TestRedact(t *testing.T) {
	tests := []struct{ name, in string }{
		{"credential_process output", `failed to refresh cached credentials, process provider error: parse failed of process output: using cache {"Version":1,"AccessKeyId":"ASIAEXAMPLEKEY123456","SecretAccessKey":"TOPSECRETKEY","SessionToken":"SESSIONTOK"}`},
		{"fields anywhere", `oops SecretAccessKey="TOPSECRETKEY" session_token: SESSIONTOK`},
		{"json fields", `{"secretAccessKey":"TOPSECRETKEY","sessionToken":"SESSIONTOK","accessKeyId":"ASIAEXAMPLEKEY123456"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tenants.Redact(tc.in)
			for _, secret := range []string{"TOPSECRETKEY", "SESSIONTOK", "ASIAEXAMPLEKEY123456"} {
				if strings.Contains(got, secret) {
					t.Fatalf("Redact left %s in %q", secret, got)
				}
			}
		})
	}
	if got := tenants.Redact("dial tcp 127.0.0.1:1: connection refused"); got != "dial tcp 127.0.0.1:1: connection refused" {
		t.Fatalf("Redact changed an ordinary error: %q", got)
	}
	ce := &tenants.UpstreamError{Code: "CredentialsUnavailable", Message: "m", Err: errors.New(tests[0].in)}
	if strings.Contains(ce.Error(), "TOPSECRETKEY") || strings.Contains(ce.Cause(), "SESSIONTOK") {
		t.Fatalf("UpstreamError shows a secret: %v", ce)
	}
}

// TestRedactPrincipalsAndSecrets: STS and EC2 refusals name the caller
// (the operator's user, or an assumed role with the person's session name)
// and may quote keys; what leaves the process keeps the account and the
// kind of principal, enough to act on, and loses the names and secrets.
func TestRedactPrincipalsAndSecrets(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"IAM user",
			"User: arn:aws:iam::444455556666:user/dev is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/web",
			"User: arn:aws:iam::444455556666:user/*** is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/web"},
		{"user with a path",
			"User: arn:aws:iam::444455556666:user/division/alice.smith@example.com is not authorized",
			"User: arn:aws:iam::444455556666:user/*** is not authorized"},
		{"assumed role and session",
			"User: arn:aws-us-gov:sts::444455556666:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com is not authorized to perform: ec2:DescribeInstances",
			"User: arn:aws-us-gov:sts::444455556666:assumed-role/*** is not authorized to perform: ec2:DescribeInstances"},
		{"federated user", `caller "arn:aws:sts::444455556666:federated-user/bob"`, `caller "arn:aws:sts::444455556666:federated-user/***"`},
		{"secret access key alone", "signature for wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY did not match",
			"signature for [redacted] did not match"},
		{"session token alone", "token IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6 is expired",
			"token [redacted] is expired"},
		{"key id", "The security token included in the request is invalid: AKIAIOSFODNN7EXAMPLE",
			"The security token included in the request is invalid: ****************MPLE"},
		{"digests and words stay", "cache 0123456789abcdef0123456789abcdef01234567 AssumeRoleUnauthorizedAccessAssumeRoleUnauthorized",
			"cache 0123456789abcdef0123456789abcdef01234567 AssumeRoleUnauthorizedAccessAssumeRoleUnauthorized"},
		{"role ARNs stay", "may not assume arn:aws:iam::111122223333:role/web", "may not assume arn:aws:iam::111122223333:role/web"},
		{"paths stay", "open /tmp/TestSSOLogin2746139211/001/home/.aws/sso/cache/ee0b.json: no such file",
			"open /tmp/TestSSOLogin2746139211/001/home/.aws/sso/cache/ee0b.json: no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tenants.Redact(tc.in); got != tc.want {
				t.Fatalf("Redact(%q)\n = %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}
