package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/imds-proxy/imds-proxy/internal/awssource"
)

// startInProcess runs the proxy in this process with args and returns its
// IMDS and admin addresses; it stops when the test ends. No profile may be
// loaded: a test that needs AWS gives its own deps to startWith.
func startInProcess(t *testing.T, args ...string) (imdsAddr, adminAddr string) {
	t.Helper()
	return startWith(t, deps{profiles: func(_ context.Context, name string) (*awssource.Profile, error) {
		t.Errorf("profile %q loaded: nothing here may reach AWS", name)
		return nil, errors.New("no AWS in this test")
	}}, args...)
}

// startWith is startInProcess with the proxy's dependencies given: it
// polls /healthz, and checks that run returns nil once its context ends.
func startWith(t testing.TB, d deps, args ...string) (imdsAddr, adminAddr string) {
	t.Helper()
	return startLogged(t, d, newListenLog(), args...)
}

// startLogged is startWith writing the proxy's log to logs, for a test
// that reads the log afterwards.
func startLogged(t testing.TB, d deps, logs *listenLog, args ...string) (imdsAddr, adminAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runWith(ctx, d, args, func(string) string { return "" }, io.Discard, logs)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run returned %v after its context ended, want nil", err)
		}
	})
	addrs := map[string]string{}
	for addrs["imds"] == "" || addrs["admin"] == "" {
		select {
		case a := <-logs.addrs:
			addrs[a[0]] = a[1]
		case err := <-done:
			t.Fatalf("run returned before listening: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no listening lines within 10s")
		}
	}
	pollHealthy(t, "http://"+addrs["admin"]+"/healthz")
	return addrs["imds"], addrs["admin"]
}

// TestMockCredentialsInProcess: a mock tenant, from the seed's flag and
// from a configuration, gives the Go SDK's ec2rolecreds provider
// credentials shaped like STS's, with no profile ever loaded.
func TestMockCredentialsInProcess(t *testing.T) {
	config := filepath.Join(t.TempDir(), "c.yaml")
	write(t, config, `server: {listen: ["127.0.0.1:0"], admin_listen: "127.0.0.1:0"}
tenants:
  - {name: web, sources: [127.0.0.0/8], credentials: {mock: true, role_name: web, duration: 20m}}
`)
	cases := []struct {
		name, role string
		lifetime   time.Duration
		args       []string
	}{
		{"seed --mock-instance-profile", "imds-proxy-mock", time.Hour,
			[]string{"--mock-instance-profile", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}},
		{"credentials.mock", "web", 20 * time.Minute, []string{"--config", config}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			imdsAddr, _ := startInProcess(t, tc.args...)
			client := imds.New(imds.Options{Endpoint: "http://" + imdsAddr})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = client }).Retrieve(ctx)
			if err != nil {
				t.Fatalf("ec2rolecreds Retrieve: %v", err)
			}
			if !regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`).MatchString(c.AccessKeyID) || len(c.SecretAccessKey) != 40 || len(c.SessionToken) < 100 {
				t.Errorf("credentials %q, secret of %d, token of %d: want STS's shapes", c.AccessKeyID, len(c.SecretAccessKey), len(c.SessionToken))
			}
			if left := time.Until(c.Expires); !c.CanExpire || left > tc.lifetime || left < tc.lifetime-time.Minute {
				t.Errorf("credentials expire in %v, want about %v", left, tc.lifetime)
			}
			for path, want := range map[string]string{
				"iam/security-credentials/": tc.role,
				"iam/info":                  `"Code" : "Success"`,
			} {
				out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				b, _ := io.ReadAll(out.Content)
				_ = out.Content.Close()
				if !strings.Contains(string(b), want) || (path == "iam/info" && !strings.Contains(string(b), "instance-profile/"+tc.role)) {
					t.Errorf("GET %s = %s, want %s", path, b, want)
				}
			}
			resp, err := http.Get("http://" + imdsAddr + "/latest/meta-data/iam/security-credentials/" + tc.role)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if !strings.Contains(string(body), `"Code" : "Success"`) || !strings.Contains(string(body), c.AccessKeyID) {
				t.Errorf("IMDSv1 credentials %s, want the same keys as ec2rolecreds got", body)
			}
		})
	}
}

// TestSeedMockSpotTermination: the seed flag schedules a spot termination
// whose notice appears two minutes after start.
func TestSeedMockSpotTermination(t *testing.T) {
	o, err := parseFlags([]string{"--mock-spot-termination"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f, err := o.seedFile()
	if err != nil {
		t.Fatal(err)
	}
	if es := f.Tenants[0].Events; len(es) != 1 || es[0].Type != "spot-interruption" || es[0].Action != "terminate" || time.Duration(es[0].After) != 2*time.Minute {
		t.Errorf("seed events %+v, want a spot termination after 2m", es)
	}
}
