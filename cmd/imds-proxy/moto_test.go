//go:build e2e || netns || dockere2e || kube

package main

// End-to-end credential tests against moto: the real binary vends each kind
// of profile's credentials, and the test then uses them against moto's STS
// to prove whose they are. A counting reverse proxy between the binary and
// moto (AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_STS point at it) counts the
// upstream calls and can delay them or answer them itself.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// motoRegion is where the test's own STS clients sign; moto accepts any.
const motoRegion = "us-east-1"

// The long-term keys of the proxy's [static] profile.
const (
	motoStaticKeyID  = "AKIAMOTOSTATICKEY001"
	motoStaticSecret = "moto-static-secret/0123456789abcdefghijklmn"
)

// motoServer is one moto_server process on a free loopback port.
type motoServer struct {
	url string
}

// motoStart starts moto_server (see need) and waits until its API answers. It is stopped when the test ends.
func motoStart(t *testing.T) *motoServer {
	t.Helper()
	e2eLoopback(t)
	bin, err := exec.LookPath("moto_server")
	need(t, "moto_server on PATH", err)
	e2eBinary(t) // builds now, and skips with -short before moto is paid for
	port := motoFreePort(t)
	exited := e2eDaemon(t, "moto_server", filepath.Join(t.TempDir(), "moto.log"), bin, "-H", "127.0.0.1", "-p", port)

	m := &motoServer{url: "http://127.0.0.1:" + port}
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(m.url + "/moto-api/")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m
			}
		}
		select {
		case <-exited:
			t.Fatalf("moto_server exited before answering")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer GET /moto-api/ within 30s (last: %v)", err)
		}
	}
}

// e2eDaemon runs a server with its output in logPath, in its own process
// group (a wrapper such as the pyenv shim may leave a child behind). The
// group is killed when the test ends, and the log's tail shown if the test
// failed. The channel is closed when the server exits.
func e2eDaemon(t *testing.T, name, logPath, bin string, args ...string) <-chan struct{} {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		_ = logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s log (tail):\n%s", name, motoTail(string(b), 4000))
			}
		}
	})
	return exited
}

// reset forgets everything moto knows, so each test starts from nothing.
func (m *motoServer) reset(t *testing.T) {
	t.Helper()
	resp, err := http.Post(m.url+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("moto reset: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("moto reset: %s", resp.Status)
	}
}

func motoFreePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func motoTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// motoSTS is an STS client of the test itself, signing with creds and
// talking to moto directly (never through the counter).
func motoSTS(m *motoServer, keyID, secret, token string) *sts.Client {
	return sts.New(sts.Options{
		Region:       motoRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, token),
		BaseEndpoint: aws.String(m.url),
	})
}

// motoCallerARN is sts:GetCallerIdentity's ARN for the given credentials.
func motoCallerARN(ctx context.Context, t *testing.T, m *motoServer, d motoCreds) string {
	t.Helper()
	out, err := motoSTS(m, d.AccessKeyID, d.SecretAccessKey, d.Token).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity with the vended credentials: %v", err)
	}
	return aws.ToString(out.Arn)
}

// motoCounter is the STS endpoint the proxy's SDK is given: a reverse proxy
// to moto that counts calls by Action (and RoleArn, for AssumeRole), and can
// delay every call or answer one itself.
type motoCounter struct {
	url   string
	proxy *httputil.ReverseProxy

	mu     sync.Mutex
	calls  map[string]int
	delay  time.Duration
	answer func(action string) (status int, body string, ok bool)
}

func motoNewCounter(t *testing.T, m *motoServer) *motoCounter {
	target, err := url.Parse(m.url)
	if err != nil {
		t.Fatal(err)
	}
	c := &motoCounter{calls: map[string]int{}}
	c.proxy = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // as signed
	}}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 5 * time.Second}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	c.url = "http://" + l.Addr().String()
	return c
}

func (c *motoCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// STS speaks the query protocol: the Action is a form value of the
	// POST body, which the reverse proxy must then send on intact.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	action := form.Get("Action")

	c.mu.Lock()
	c.calls[action]++
	if role := form.Get("RoleArn"); role != "" {
		c.calls[action+" "+role]++
	}
	delay, answer := c.delay, c.answer
	c.mu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if answer != nil {
		if status, b, ok := answer(action); ok {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, b)
			return
		}
	}
	c.proxy.ServeHTTP(w, r)
}

// count is how many calls of action (for AssumeRole: of role, if given)
// reached the counter.
func (c *motoCounter) count(action, role string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if role != "" {
		return c.calls[action+" "+role]
	}
	return c.calls[action]
}

func (c *motoCounter) set(delay time.Duration, answer func(action string) (int, string, bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delay, c.answer = delay, answer
}

// motoLeaks collects every secret a test handles — secret keys, session
// tokens, IMDS and container tokens, SSO bearer tokens — and checks that
// the proxy's log holds none of them.
type motoLeaks struct {
	mu      sync.Mutex
	secrets map[string]bool
	recs    []*tokenRecorder
}

func (l *motoLeaks) add(secrets ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.secrets == nil {
		l.secrets = map[string]bool{}
	}
	for _, s := range secrets {
		if s != "" {
			l.secrets[s] = true
		}
	}
}

// recorder returns a recorder of the IMDSv2 tokens a client is given.
func (l *motoLeaks) recorder() *tokenRecorder {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &tokenRecorder{}
	l.recs = append(l.recs, r)
	return r
}

// check fails the test for each collected secret found in log, and
// returns how many secrets were looked for.
func (l *motoLeaks) check(t *testing.T, log string) int {
	t.Helper()
	l.mu.Lock()
	var all []string
	for s := range l.secrets {
		all = append(all, s)
	}
	for _, r := range l.recs {
		all = append(all, r.all()...)
	}
	l.mu.Unlock()
	for _, s := range all {
		if strings.Contains(log, s) {
			t.Errorf("the proxy's log contains a secret or token: %q", s)
		}
	}
	return len(all)
}

// motoStop stops the proxy and checks its whole log for leaked secrets:
// every test of this file, sso_test.go and clients_test.go ends with it.
func motoStop(t *testing.T, p *e2eProcess, leaks *motoLeaks) string {
	t.Helper()
	log := p.stop(t)
	if n := leaks.check(t, log); n == 0 {
		t.Errorf("no secrets were collected to look for in the log")
	}
	return log
}

// motoWriteFile writes content to dir/name and returns the path.
func motoWriteFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// motoEnv is the proxy's environment: e2eEnv's, with HOME at home and the
// shared config and credentials files written there under the names
// AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE give — not the default
// ones, as for a user who sets those variables — and the STS endpoint at
// endpoint.
func motoEnv(t *testing.T, home, endpoint, config, creds string, extra ...string) []string {
	t.Helper()
	env := []string{
		"HOME=" + home,
		"AWS_CONFIG_FILE=" + motoWriteFile(t, home, "aws/config", config, 0o600),
		"AWS_SHARED_CREDENTIALS_FILE=" + motoWriteFile(t, home, "aws/credentials", creds, 0o600),
	}
	if endpoint != "" {
		// Both: the SDK resolves AWS_ENDPOINT_URL after the credential
		// chain, so the STS client of a source_profile chain sees only
		// AWS_ENDPOINT_URL_STS (aws-sdk-go-v2/config resolveCredentials
		// runs before resolveBaseEndpoint).
		env = append(env, "AWS_ENDPOINT_URL="+endpoint, "AWS_ENDPOINT_URL_STS="+endpoint)
	}
	return e2eEnv(t, append(env, extra...)...)
}

// motoConfig writes the proxy's YAML: a server block listening on loopback
// and the given tenants' YAML, indented under tenants:.
func motoConfig(t *testing.T, server string, tenants ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("server:\n  listen: [\"127.0.0.1:0\"]\n")
	b.WriteString(server)
	b.WriteString("tenants:\n")
	for _, tn := range tenants {
		for _, line := range strings.Split(strings.TrimRight(tn, "\n"), "\n") {
			b.WriteString("  " + line + "\n")
		}
	}
	return motoWriteFile(t, t.TempDir(), "imds-proxy.yaml", b.String(), 0o600)
}

// motoTenant is the YAML of one tenant; creds is its credentials block's
// body, one "key: value" a line.
func motoTenant(name, src, instanceID, creds string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- name: %s\n  sources: [%q]\n  instance: {instance_id: %s}\n  credentials:\n", name, src, instanceID)
	for _, line := range strings.Split(strings.TrimSpace(creds), "\n") {
		b.WriteString("    " + strings.TrimSpace(line) + "\n")
	}
	return b.String()
}

func motoStartProxy(t *testing.T, env []string, config string) *e2eProcess {
	t.Helper()
	return e2eStart(t, env, "--config", config, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
}

// motoCreds is an iam/security-credentials/<role> document, success or
// failure.
type motoCreds struct {
	Code            string
	Message         string
	LastUpdated     string
	Type            string
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	Token           string
	Expiration      string
}

// motoIMDSCreds reads a tenant's credentials the way aws-sdk-go-v2 does:
// IMDSv2 from src, role name from the listing first. Secrets go to leaks.
func motoIMDSCreds(ctx context.Context, t *testing.T, p *e2eProcess, src string, leaks *motoLeaks) (role string, d motoCreds, err error) {
	t.Helper()
	c := sdkClient(t, p.imdsAddr, src, leaks.recorder(), false)
	role, err = sdkMetadata(ctx, c, "iam/security-credentials/")
	if err != nil {
		return "", d, fmt.Errorf("list roles from %s: %w", src, err)
	}
	body, err := sdkMetadata(ctx, c, "iam/security-credentials/"+role)
	if err != nil {
		return role, d, fmt.Errorf("credentials of %s from %s: %w", role, src, err)
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		return role, d, fmt.Errorf("credentials of %s from %s: %v in %q", role, src, err, body)
	}
	leaks.add(d.SecretAccessKey, d.Token)
	return role, d, nil
}

// motoWarmCreds polls until src's tenant has credentials and returns them:
// the prefetch may still be on its way when a test starts asking.
func motoWarmCreds(t *testing.T, p *e2eProcess, src string, leaks *motoLeaks) (string, motoCreds) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2eWait)
	defer cancel()
	for {
		role, d, err := motoIMDSCreds(ctx, t, p, src, leaks)
		if err == nil && d.Code == "Success" {
			return role, d
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no credentials for %s within %s: %v, last %+v", src, 2*e2eWait, err, motoRedact(d))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// motoRedact keeps secrets out of test failure messages.
func motoRedact(d motoCreds) motoCreds {
	if d.SecretAccessKey != "" {
		d.SecretAccessKey = "<redacted>"
	}
	if d.Token != "" {
		d.Token = "<redacted>"
	}
	return d
}

// motoGet is a plain IMDSv1 GET from src: status, body and how long it took.
func motoGet(t *testing.T, c *http.Client, addr, path string) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b), time.Since(start)
}

// motoWaitLog waits until the log matches re at least n times.
func motoWaitLog(t *testing.T, p *e2eProcess, re *regexp.Regexp, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(re.FindAllStringIndex(p.log.String(), -1)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the log matched %s fewer than %d times within %s", re, n, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// motoAssumeRole assumes a role in moto directly, as some other tool would
// have, for profiles whose credentials come from outside the proxy.
func motoAssumeRole(ctx context.Context, t *testing.T, m *motoServer, role, session string) motoCreds {
	t.Helper()
	out, err := motoSTS(m, motoStaticKeyID, motoStaticSecret, "").AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(role), RoleSessionName: aws.String(session),
	})
	if err != nil {
		t.Fatalf("AssumeRole %s in moto: %v", role, err)
	}
	c := out.Credentials
	return motoCreds{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey),
		Token: aws.ToString(c.SessionToken), Expiration: aws.ToTime(c.Expiration).UTC().Format(time.RFC3339)}
}

const motoStaticProfile = "[static]\naws_access_key_id = " + motoStaticKeyID + "\naws_secret_access_key = " + motoStaticSecret + "\n"

// motoAccessDenied is what STS answers an AssumeRole its caller may not make.
const motoAccessDenied = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: arn:aws:iam::123456789012:user/dev is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/locked</Message>
  </Error>
  <RequestId>4f1e2d3c-0000-4000-8000-000000000001</RequestId>
</ErrorResponse>
`

func TestMoto(t *testing.T) {
	m := motoStart(t)

	t.Run("profile kinds", func(t *testing.T) {
		m.reset(t)
		motoProfileKinds(t, m)
	})
	t.Run("cold stampede", func(t *testing.T) {
		m.reset(t)
		motoColdStampede(t, m)
	})
	t.Run("access denied", func(t *testing.T) {
		m.reset(t)
		motoAccessDeniedAnswer(t, m)
	})
	t.Run("upstream down", func(t *testing.T) {
		m.reset(t)
		motoUpstreamDown(t, m)
	})
}

// motoProfileKinds: one tenant per kind of profile, each one's vended
// credentials used against moto; and two tenants sharing one spec.
func motoProfileKinds(t *testing.T, m *motoServer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leaks := &motoLeaks{}
	leaks.add(motoStaticSecret)
	counter := motoNewCounter(t, m)
	home := t.TempDir()

	// credential_process prints credentials some other tool obtained:
	// a role assumed in moto beforehand, so their ARN is known.
	const processRole = "arn:aws:iam::777788889999:role/process-role"
	proc := motoAssumeRole(ctx, t, m, processRole, "process-session")
	leaks.add(proc.SecretAccessKey, proc.Token)
	procJSON, err := json.Marshal(map[string]any{"Version": 1, "AccessKeyId": proc.AccessKeyID,
		"SecretAccessKey": proc.SecretAccessKey, "SessionToken": proc.Token, "Expiration": proc.Expiration})
	if err != nil {
		t.Fatal(err)
	}
	script := motoWriteFile(t, home, "bin/credential-process.sh", "#!/bin/sh\ncat <<'EOF'\n"+string(procJSON)+"\nEOF\n", 0o700)

	awsConfig := "[profile chain]\nrole_arn = arn:aws:iam::444455556666:role/chained\nsource_profile = static\n\n" +
		"[profile process]\ncredential_process = " + script + "\n"
	env := motoEnv(t, home, counter.url, awsConfig, motoStaticProfile)

	const (
		webRole    = "arn:aws:iam::111122223333:role/web"
		sharedRole = "arn:aws:iam::111122223333:role/shared"
		chainRole  = "arn:aws:iam::444455556666:role/chained"
	)
	tenants := []struct {
		name, src, instanceID, creds string
		wantRole                     string
		wantARN                      *regexp.Regexp
	}{
		{"static-keys", "127.0.0.2", "i-0a1b2c3d4e5f6a001", "profile: static", "static",
			// moto's GetSessionToken always returns its example key, whose
			// caller is moto's default user.
			regexp.MustCompile(`^arn:aws:sts::123456789012:user/moto$`)},
		{"assume", "127.0.0.3", "i-0a1b2c3d4e5f6a002", "profile: static\nrole_arn: " + webRole, "web",
			// The session name defaults to the instance id, as on EC2.
			regexp.MustCompile(`^arn:aws:sts::111122223333:assumed-role/web/i-0a1b2c3d4e5f6a002$`)},
		{"chain", "127.0.0.4", "i-0a1b2c3d4e5f6a003", "profile: chain", "chained",
			// The SDK names the chained session itself.
			regexp.MustCompile(`^arn:aws:sts::444455556666:assumed-role/chained/[\w+=,.@-]+$`)},
		{"process", "127.0.0.5", "i-0a1b2c3d4e5f6a004", "profile: process", "process",
			regexp.MustCompile(`^arn:aws:sts::777788889999:assumed-role/process-role/process-session$`)},
		{"shared-1", "127.0.0.6", "i-0a1b2c3d4e5f6a005", "profile: static\nrole_arn: " + sharedRole + "\nsession_name: shared-session", "shared",
			regexp.MustCompile(`^arn:aws:sts::111122223333:assumed-role/shared/shared-session$`)},
		{"shared-2", "127.0.0.7", "i-0a1b2c3d4e5f6a006", "profile: static\nrole_arn: " + sharedRole + "\nsession_name: shared-session", "shared",
			regexp.MustCompile(`^arn:aws:sts::111122223333:assumed-role/shared/shared-session$`)},
	}
	var yaml []string
	for _, tn := range tenants {
		yaml = append(yaml, motoTenant(tn.name, tn.src, tn.instanceID, tn.creds))
	}
	p := motoStartProxy(t, env, motoConfig(t, "", yaml...))

	got := map[string]motoCreds{}
	for _, tn := range tenants {
		t.Run(tn.name, func(t *testing.T) {
			role, d := motoWarmCreds(t, p, tn.src, leaks)
			got[tn.name] = d
			if role != tn.wantRole {
				t.Errorf("iam/security-credentials/ = %q, want %q", role, tn.wantRole)
			}
			if d.Type != "AWS-HMAC" || d.AccessKeyID == "" || d.SecretAccessKey == "" || d.Token == "" || d.Expiration == "" {
				t.Errorf("credentials = %+v, want AWS-HMAC with a key, secret, token and expiry", motoRedact(d))
			}
			if arn := motoCallerARN(ctx, t, m, d); !tn.wantARN.MatchString(arn) {
				t.Errorf("GetCallerIdentity with the vended credentials = %s, want %s", arn, tn.wantARN)
			}
		})
	}

	t.Run("static keys go through GetSessionToken", func(t *testing.T) {
		d := got["static-keys"]
		if d.AccessKeyID == motoStaticKeyID || d.SecretAccessKey == motoStaticSecret {
			t.Errorf("the long-term keys were served as they are")
		}
		if n := counter.count("GetSessionToken", ""); n != 1 {
			t.Errorf("GetSessionToken calls = %d, want 1", n)
		}
	})
	t.Run("credential_process is served as it is", func(t *testing.T) {
		d := got["process"]
		if d.AccessKeyID != proc.AccessKeyID || d.SecretAccessKey != proc.SecretAccessKey || d.Token != proc.Token {
			t.Errorf("credentials = %+v, want the process's %+v", motoRedact(d), motoRedact(proc))
		}
		if d.Expiration != proc.Expiration { // both YYYY-MM-DDTHH:MM:SSZ
			t.Errorf("Expiration = %s, want the process's %s", d.Expiration, proc.Expiration)
		}
	})
	t.Run("one AssumeRole per role", func(t *testing.T) {
		for _, role := range []string{webRole, chainRole, sharedRole} {
			if n := counter.count("AssumeRole", role); n != 1 {
				t.Errorf("AssumeRole calls for %s = %d, want 1", role, n)
			}
		}
		if a, b := got["shared-1"], got["shared-2"]; a.AccessKeyID == "" || a.AccessKeyID != b.AccessKeyID {
			t.Errorf("tenants sharing a spec got access keys %q and %q, want the same", a.AccessKeyID, b.AccessKeyID)
		}
	})
	motoStop(t, p, leaks)
}

// motoColdStampede: 1,000 concurrent requests while the one AssumeRole of
// the prefetch is slow upstream.
func motoColdStampede(t *testing.T, m *motoServer) {
	const (
		requests = 1000
		clients  = 8
		delay    = time.Second // upstream latency of every STS call
		src      = "127.0.0.2"
		role     = "arn:aws:iam::111122223333:role/stampede"
	)
	leaks := &motoLeaks{}
	leaks.add(motoStaticSecret)
	counter := motoNewCounter(t, m)
	counter.set(delay, nil)
	env := motoEnv(t, t.TempDir(), counter.url, "", motoStaticProfile)
	// The default per-source limits (64 connections) would turn most of a
	// 1,000-connection burst from one address away before any handler.
	tenant := motoTenant("stampede", src, "i-0a1b2c3d4e5f6b001", "profile: static\nrole_arn: "+role) +
		"  limits: {connections: 2000, requests_per_second: 5000, burst: 5000}\n"
	config := motoConfig(t, "", tenant)
	launched := time.Now()
	p := motoStartProxy(t, env, config)

	path := "/latest/meta-data/iam/security-credentials/stampede"
	var transports []*tokenRecorder
	fire := func(n int) map[string]int {
		codes := map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < clients; i++ {
			rec := &tokenRecorder{}
			transports = append(transports, rec)
			c := httpClientFrom(t, src, rec)
			// The proxy answers each request within ColdWait; on a loaded
			// machine the test's own 1,000 dials and reads are what is
			// slow, and a client timeout there would not be an answer.
			c.Timeout = 30 * time.Second
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 20 * time.Second}
			rec.next.(*http.Transport).DialContext = d.DialContext
			for j := 0; j < n/clients; j++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					var code string
					resp, err := c.Get("http://" + p.imdsAddr + path)
					if err != nil {
						code = "transport error: " + err.Error()
					} else {
						var d motoCreds
						b, _ := io.ReadAll(resp.Body)
						_ = resp.Body.Close()
						switch {
						case resp.StatusCode != http.StatusOK:
							code = fmt.Sprintf("HTTP %d", resp.StatusCode)
						case json.Unmarshal(b, &d) != nil:
							code = "not JSON"
						default:
							code = d.Code
							leaks.add(d.SecretAccessKey, d.Token)
						}
					}
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}()
			}
		}
		close(start)
		wg.Wait()
		return codes
	}

	began := time.Now()
	cold := fire(requests)
	t.Logf("%d cold requests fired %s after the process was started, all answered %s later: %v",
		requests, began.Sub(launched).Round(time.Millisecond), time.Since(began).Round(time.Millisecond), cold)
	if cold["Success"]+cold["CredentialsNotReady"] != requests {
		t.Errorf("cold answers = %v, want only Success or CredentialsNotReady", cold)
	}
	if cold["CredentialsNotReady"] == 0 {
		t.Logf("no request saw CredentialsNotReady: the prefetch completed within every request's cold wait")
	}
	motoWarmCreds(t, p, src, leaks)
	warm := fire(200)
	if warm["Success"] != 200 {
		t.Errorf("warm answers = %v, want 200 Success", warm)
	}
	if n := counter.count("AssumeRole", role); n != 1 {
		t.Errorf("AssumeRole calls = %d, want 1 for %d requests", n, requests+200)
	}
	// Connections the transports dialled but never used are "new" to the
	// server, and http.Server.Shutdown waits 5s before it closes those.
	for _, rec := range transports {
		rec.next.(*http.Transport).CloseIdleConnections()
	}
	motoStop(t, p, leaks)
}

// motoAccessDeniedAnswer: STS refuses the AssumeRole; IMDS's failure shape
// says what to do, fast, and the log names the role and the caller's
// account and kind, never the caller's name (the operator's user).
func motoAccessDeniedAnswer(t *testing.T, m *motoServer) {
	const (
		src  = "127.0.0.2"
		role = "arn:aws:iam::111122223333:role/locked"
	)
	leaks := &motoLeaks{}
	leaks.add(motoStaticSecret)
	counter := motoNewCounter(t, m)
	counter.set(0, func(action string) (int, string, bool) {
		return http.StatusForbidden, motoAccessDenied, action == "AssumeRole"
	})
	env := motoEnv(t, t.TempDir(), counter.url, "", motoStaticProfile)
	p := motoStartProxy(t, env, motoConfig(t, "",
		motoTenant("locked", src, "i-0a1b2c3d4e5f6c001", "profile: static\nrole_arn: "+role)))

	rec := leaks.recorder()
	status, body, took := motoGet(t, httpClientFrom(t, src, rec), p.imdsAddr, "/latest/meta-data/iam/security-credentials/locked")
	var d motoCreds
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if status != http.StatusOK || !strings.Contains(body, `"Code" : "AssumeRoleUnauthorizedAccess"`) || !strings.Contains(d.Message, role) {
		t.Errorf("answer = %d %s, want 200 and Code AssumeRoleUnauthorizedAccess naming %s", status, body, role)
	}
	if took >= time.Second {
		t.Errorf("the failure took %s to answer; SDKs give up after 1s", took)
	}

	if strings.Contains(body, "user/dev") {
		t.Errorf("the client's failure document names the operator: %s", body)
	}
	log := motoStop(t, p, leaks)
	for _, want := range []string{role, "arn:aws:iam::123456789012:user/***", `"code":"AssumeRoleUnauthorizedAccess"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not contain %q", want)
		}
	}
	if strings.Contains(log, "user/dev") {
		t.Errorf("the log names the operator's user: %s", log)
	}
}

// motoUpstreamDown: STS fails while credentials are cached; they are still
// served, and replaced once STS is back.
func motoUpstreamDown(t *testing.T, m *motoServer) {
	const (
		src  = "127.0.0.2"
		role = "arn:aws:iam::111122223333:role/steady"
	)
	leaks := &motoLeaks{}
	leaks.add(motoStaticSecret)
	counter := motoNewCounter(t, m)
	// One attempt per refresh, so that a failed refresh shows in the log
	// at once rather than after the SDK's retries.
	env := motoEnv(t, t.TempDir(), counter.url, "", motoStaticProfile, "AWS_MAX_ATTEMPTS=1")
	// 15m credentials refreshed 14m59s ahead: a refresh about every second.
	p := motoStartProxy(t, env, motoConfig(t, "",
		motoTenant("steady", src, "i-0a1b2c3d4e5f6d001", "profile: static\nrole_arn: "+role+"\nduration: 15m\nrefresh_before: 14m59s")))
	motoWarmCreds(t, p, src, leaks)

	failed := regexp.MustCompile(`"level":"warn"[^\n]*"failures":\d+`)
	refreshed := regexp.MustCompile(`"message":"credentials refreshed"`)
	counter.set(0, func(string) (int, string, bool) {
		return http.StatusServiceUnavailable, "<html><body>Service Unavailable</body></html>", true
	})
	motoWaitLog(t, p, failed, 1, 10*time.Second)
	_, held := motoWarmCreds(t, p, src, leaks)
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		_, d := motoWarmCreds(t, p, src, leaks)
		if d.AccessKeyID != held.AccessKeyID {
			t.Fatalf("access key changed from %s to %s while STS was down", held.AccessKeyID, d.AccessKeyID)
		}
	}
	if n := len(failed.FindAllString(p.log.String(), -1)); n < 2 {
		t.Errorf("%d failed refreshes logged while STS was down for 2s, want retries", n)
	}

	before := len(refreshed.FindAllString(p.log.String(), -1))
	counter.set(0, nil)
	motoWaitLog(t, p, refreshed, before+1, 20*time.Second)
	if _, d := motoWarmCreds(t, p, src, leaks); d.AccessKeyID == held.AccessKeyID {
		t.Errorf("the same access key %s is served after STS came back and a refresh succeeded", d.AccessKeyID)
	}
	motoStop(t, p, leaks)
}
