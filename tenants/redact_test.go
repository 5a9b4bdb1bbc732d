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
