//go:build e2e

package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestE2EMockCredentialsWithMoto is the no-AWS-account recipe of
// docs/credentials.md: the seed with --mock-instance-profile, an empty
// HOME and every route to AWS closed; the AWS CLI v2 and boto3 take the
// mock tenant's credentials from IMDS and sign requests to moto with them.
func TestE2EMockCredentialsWithMoto(t *testing.T) {
	m := motoStart(t)
	// Anything bound for AWS, from the proxy or a client, goes to a port
	// where nothing listens; loopback (moto, the proxy) is reached directly.
	noAWS := []string{"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=127.0.0.1",
		"AWS_ENDPOINT_URL=http://127.0.0.1:9"}
	p := e2eStart(t, e2eEnv(t, noAWS...), "--mock-instance-profile", "--role-name", "app",
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	endpoint := "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://" + p.imdsAddr + "/"
	leaks := &motoLeaks{}

	t.Run("aws-cli-v2", func(t *testing.T) {
		cliNeedAWSv2(t)
		env := cliEnv(t, append(noAWS[:3:3], endpoint)...)
		keyID, err := cliAWSCredentials(t, env, leaks)
		if err != nil {
			t.Fatalf("aws configure export-credentials: %v", err)
		}
		if !strings.HasPrefix(keyID, "ASIA") || len(keyID) != 20 {
			t.Errorf("the CLI resolved key %q, want a 20-character ASIA key", keyID)
		}
		arn, err := cliCallerARN(t, env, m)
		if err != nil || arn == "" {
			t.Fatalf("aws sts get-caller-identity = %q, %v", arn, err)
		}
	})
	t.Run("boto3", func(t *testing.T) {
		py := boto3Python(t)
		out, err := cliRun(t, cliEnv(t, append(noAWS[:3:3], endpoint)...), py, "-c", cliBoto3, m.url)
		if err != nil {
			t.Fatalf("boto3: %v", err)
		}
		var got struct{ Method, Key, Secret, Token, Arn string }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("boto3 printed %q: %v", out, err)
		}
		leaks.add(got.Secret, got.Token)
		if got.Method != "iam-role" || !strings.HasPrefix(got.Key, "ASIA") || got.Arn == "" {
			t.Errorf("boto3: credentials from %q, key %q, caller %q; want iam-role, ASIA…, an ARN", got.Method, got.Key, got.Arn)
		}
	})
	if log := p.stop(t); leaks.check(t, log) == 0 {
		t.Errorf("no secrets were checked against the log")
	}
}
