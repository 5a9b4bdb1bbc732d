//go:build e2e

package main

// End-to-end tests with real, unmodified clients — the AWS CLI v2, boto3
// and aws-sdk-go-v2's ec2rolecreds provider — each receiving its own
// tenant's role credentials from the real binary, and then calling STS in
// moto with them.
//
// The CLI and boto3 cannot choose their source address, and on Linux a
// connection to any 127.0.0.0/8 address leaves from 127.0.0.1 (the local
// route's preferred source), so listening on 127.0.0.2..4 would not tell
// them apart. Each of them reaches the proxy through its own relay instead:
// a reverse proxy on 127.0.0.1 whose connections to the proxy leave from
// the tenant's address.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
)

// cliAWS is the AWS CLI v2 as Debian installs it; the `aws` first on PATH
// may be v1.
const cliAWS = "/usr/bin/aws"

// cliRelay forwards every request it receives on 127.0.0.1 to target, on a
// connection from src. Rewrite (rather than Director) adds no
// X-Forwarded-For, which would make the proxy refuse the token PUT; rec
// sees every IMDS token handed out.
func cliRelay(t *testing.T, target, src string, rec *tokenRecorder) string {
	t.Helper()
	to, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(to); pr.Out.Host = pr.In.Host },
		Transport: httpClientFrom(t, src, rec).Transport,
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// cliEnv is a client's environment: nothing of the developer's AWS setup,
// an empty HOME, and IMDS left enabled unless extra says otherwise.
func cliEnv(t *testing.T, extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"LANG=C.UTF-8",
		"AWS_DEFAULT_REGION=" + motoRegion,
	}, extra...)
}

// cliRun runs a client to completion.
func cliRun(t *testing.T, env []string, name string, args ...string) (stdout string, err error) {
	t.Helper()
	// Generous: a Python client's start-up alone takes seconds on a busy
	// 2-core machine.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errors.Join(err, errors.New(strings.TrimSpace(errOut.String())))
	}
	return out.String(), nil
}

// cliNeedAWSv2 needs the AWS CLI v2 at cliAWS (see need).
func cliNeedAWSv2(t *testing.T) {
	t.Helper()
	out, err := exec.Command(cliAWS, "--version").Output()
	if err == nil && !strings.HasPrefix(string(out), "aws-cli/2.") {
		err = fmt.Errorf("%s is %q", cliAWS, strings.TrimSpace(string(out)))
	}
	need(t, "the AWS CLI v2 at "+cliAWS, err)
}

// cliAWSCredentials runs `aws configure export-credentials` and returns
// what the CLI resolved; the secrets go to leaks.
func cliAWSCredentials(t *testing.T, env []string, leaks *motoLeaks) (keyID string, err error) {
	t.Helper()
	out, err := cliRun(t, env, cliAWS, "configure", "export-credentials", "--format", "process")
	if err != nil {
		return "", err
	}
	var c struct {
		Version                                   int
		AccessKeyID                               string `json:"AccessKeyId"`
		SecretAccessKey, SessionToken, Expiration string
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		return "", errors.Join(err, errors.New(out))
	}
	leaks.add(c.SecretAccessKey, c.SessionToken)
	if c.Version != 1 || c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" || c.Expiration == "" {
		t.Errorf("export-credentials = version %d, key %q, expiration %q; want 1 and a full set", c.Version, c.AccessKeyID, c.Expiration)
	}
	return c.AccessKeyID, nil
}

// cliCallerARN runs `aws sts get-caller-identity` against moto.
func cliCallerARN(t *testing.T, env []string, m *motoServer) (string, error) {
	t.Helper()
	// The CLI 2.9 of Debian predates AWS_ENDPOINT_URL.
	out, err := cliRun(t, env, cliAWS, "--endpoint-url", m.url, "--output", "json", "sts", "get-caller-identity")
	if err != nil {
		return "", err
	}
	var id struct{ Arn string }
	if err := json.Unmarshal([]byte(out), &id); err != nil {
		return "", errors.Join(err, errors.New(out))
	}
	return id.Arn, nil
}

// cliBoto3 prints what boto3's default chain resolves, and whose it is.
const cliBoto3 = `
import json, sys
import boto3
s = boto3.Session()
c = s.get_credentials()
f = c.get_frozen_credentials()
arn = s.client("sts", endpoint_url=sys.argv[1]).get_caller_identity()["Arn"]
print(json.dumps({"method": c.method, "key": f.access_key, "secret": f.secret_key, "token": f.token, "arn": arn}))
`

func TestCLIClients(t *testing.T) {
	m := motoStart(t)
	m.reset(t)
	leaks := &motoLeaks{}
	leaks.add(motoStaticSecret)
	const containerToken = "cli-container-token-8c1f0b9e2d7a4356"
	leaks.add(containerToken)

	type tenant struct{ name, src, instanceID string }
	var (
		cli       = tenant{"cli", "127.0.0.2", "i-0a1b2c3d4e5f6f001"}
		boto      = tenant{"boto", "127.0.0.3", "i-0a1b2c3d4e5f6f002"}
		gosdk     = tenant{"gosdk", "127.0.0.4", "i-0a1b2c3d4e5f6f003"}
		container = tenant{"container", "127.0.0.5", "i-0a1b2c3d4e5f6f004"}
	)
	var yaml []string
	for _, tn := range []tenant{cli, boto, gosdk, container} {
		y := motoTenant(tn.name, tn.src, tn.instanceID, "profile: static\nrole_arn: arn:aws:iam::111122223333:role/"+tn.name+"-role")
		if tn == container {
			y += "  container_credentials: {token: " + containerToken + "}\n"
		}
		yaml = append(yaml, y)
	}
	wantARN := func(tn tenant) *regexp.Regexp {
		return regexp.MustCompile(`^arn:aws:sts::111122223333:assumed-role/` + tn.name + `-role/` + tn.instanceID + `$`)
	}

	env := motoEnv(t, t.TempDir(), m.url, "", motoStaticProfile)
	p := motoStartProxy(t, env, motoConfig(t, "  container_listen: \"127.0.0.1:0\"\n", yaml...))
	if p.containerAddr == "" {
		t.Fatal("no container listener in the log")
	}
	// Clients give up on IMDS after a second: let the prefetch finish.
	for _, tn := range []tenant{cli, boto, gosdk, container} {
		motoWarmCreds(t, p, tn.src, leaks)
	}

	// The clients run side by side: most of their time is interpreter start-up
	// and the CLI's own retries.
	wrongTokenSent := false
	t.Run("clients", func(t *testing.T) {
		t.Run("aws-cli-v2", func(t *testing.T) {
			t.Parallel()
			cliNeedAWSv2(t)
			rec := leaks.recorder()
			env := cliEnv(t, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+cliRelay(t, p.imdsAddr, cli.src, rec)+"/")
			if _, err := cliAWSCredentials(t, env, leaks); err != nil {
				t.Fatalf("aws configure export-credentials: %v", err)
			}
			arn, err := cliCallerARN(t, env, m)
			if err != nil {
				t.Fatalf("aws sts get-caller-identity: %v", err)
			}
			if !wantARN(cli).MatchString(arn) {
				t.Errorf("aws sts get-caller-identity = %s, want %s", arn, wantARN(cli))
			}
			if len(rec.all()) == 0 {
				t.Errorf("the CLI minted no IMDSv2 token")
			}
		})

		t.Run("boto3", func(t *testing.T) {
			t.Parallel()
			py := boto3Python(t)
			rec := leaks.recorder()
			env := cliEnv(t, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+cliRelay(t, p.imdsAddr, boto.src, rec)+"/")
			out, err := cliRun(t, env, py, "-c", cliBoto3, m.url)
			if err != nil {
				t.Fatalf("boto3: %v", err)
			}
			var got struct{ Method, Key, Secret, Token, Arn string }
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("boto3 printed %q: %v", out, err)
			}
			leaks.add(got.Secret, got.Token)
			if got.Method != "iam-role" || !wantARN(boto).MatchString(got.Arn) {
				t.Errorf("boto3 credentials from %q, caller %s; want iam-role and %s", got.Method, got.Arn, wantARN(boto))
			}
			if len(rec.all()) == 0 {
				t.Errorf("boto3 minted no IMDSv2 token")
			}
		})

		t.Run("aws-sdk-go-v2 ec2rolecreds", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
			defer cancel()
			rec := leaks.recorder()
			provider := ec2rolecreds.New(func(o *ec2rolecreds.Options) {
				o.Client = sdkClient(t, p.imdsAddr, gosdk.src, rec, false)
			})
			c, err := provider.Retrieve(ctx)
			if err != nil {
				t.Fatalf("ec2rolecreds Retrieve: %v", err)
			}
			leaks.add(c.SecretAccessKey, c.SessionToken)
			if !c.CanExpire || time.Until(c.Expires) < 30*time.Minute {
				t.Errorf("credentials expire %v (CanExpire %v), want about an hour ahead", c.Expires, c.CanExpire)
			}
			d := motoCreds{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, Token: c.SessionToken}
			if arn := motoCallerARN(ctx, t, m, d); !wantARN(gosdk).MatchString(arn) {
				t.Errorf("GetCallerIdentity = %s, want %s", arn, wantARN(gosdk))
			}
			if len(rec.all()) == 0 {
				t.Errorf("ec2rolecreds minted no IMDSv2 token")
			}
		})

		t.Run("aws-cli-v2 container provider", func(t *testing.T) {
			t.Parallel()
			cliNeedAWSv2(t)
			uri := cliRelay(t, p.containerAddr, container.src, leaks.recorder()) + "/credentials"
			// IMDS off: a failure can only come from the container provider.
			base := []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + uri, "AWS_EC2_METADATA_DISABLED=true"}
			env := cliEnv(t, append(base, "AWS_CONTAINER_AUTHORIZATION_TOKEN="+containerToken)...)
			arn, err := cliCallerARN(t, env, m)
			if err != nil {
				t.Fatalf("aws sts get-caller-identity: %v", err)
			}
			if !wantARN(container).MatchString(arn) {
				t.Errorf("aws sts get-caller-identity = %s, want %s", arn, wantARN(container))
			}

			wrongTokenSent = true
			wrong := cliEnv(t, append(base, "AWS_CONTAINER_AUTHORIZATION_TOKEN=not-the-container-token-0000")...)
			if arn, err := cliCallerARN(t, wrong, m); err == nil {
				t.Errorf("with a wrong token, aws sts get-caller-identity = %s, want a failure", arn)
			}
		})
	})
	log := motoStop(t, p, leaks)
	if wrongTokenSent && !regexp.MustCompile(`"src":"127\.0\.0\.5","method":"GET","path":"/credentials","status":403`).MatchString(log) {
		t.Errorf("no 403 access line for the wrong container token")
	}
}
