//go:build e2e || netns || dockere2e || kube

package main

// End-to-end tests: the real binary, built once, driven by the clients
// users run (aws-sdk-go-v2's IMDS client and curl), each bound to a tenant's
// loopback source address.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/imds-proxy/imds-proxy/internal/testenv"
)

// e2eWait bounds every wait on the process: start, a request, a stop.
const e2eWait = 15 * time.Second

var e2eBin struct {
	once sync.Once
	dir  string // removed by TestMain
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if e2eBin.dir != "" {
		_ = os.RemoveAll(e2eBin.dir)
	}
	os.Exit(code)
}

// e2eBinary builds the command once per test binary, on first use, so unit
// test runs never pay for it.
func e2eBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: skipped with -short")
	}
	e2eBin.once.Do(func() {
		e2eBin.dir, e2eBin.err = os.MkdirTemp("", "imds-proxy-e2e-")
		if e2eBin.err != nil {
			return
		}
		e2eBin.path = filepath.Join(e2eBin.dir, "imds-proxy")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", e2eBin.path, ".").CombinedOutput()
		if err != nil {
			e2eBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if e2eBin.err != nil {
		t.Fatal(e2eBin.err)
	}
	return e2eBin.path
}

// e2eEnv isolates the process from the developer's AWS setup: no profile,
// no real IMDS behind the SDK's credential chain, no HOSTNAME seed value.
func e2eEnv(t *testing.T, extra ...string) []string {
	home := t.TempDir()
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
	}, extra...)
}

// need is testenv.Need: skipped here when missing, failed in CI.
var need = testenv.Need

// e2eLoopback needs 127.0.0.0/8 beyond 127.0.0.1 to be local (it is not
// on macOS without aliases): tenants are told apart by those addresses.
func e2eLoopback(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.5:0")
	need(t, "127.0.0.5 as a local address", err)
	_ = l.Close()
}

// e2eProcess is one running imds-proxy.
type e2eProcess struct {
	cmd       *exec.Cmd
	log       *e2eLog
	imdsAddr  string
	adminAddr string
	// containerAddr is the container credentials listener's, if the
	// configuration has one (it is not waited for).
	containerAddr string
	exited        chan struct{}
	waitErr       error
}

// e2eLog collects the process's stderr and reports the listeners' addresses
// as the "listening" lines arrive.
type e2eLog struct {
	mu        sync.Mutex
	all       bytes.Buffer
	partial   []byte
	listening chan [2]string // listener, addr
}

func (l *e2eLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		var line struct{ Addr, Listener, Message string }
		if json.Unmarshal(l.partial[:i], &line) == nil && line.Message == "listening" {
			select {
			case l.listening <- [2]string{line.Listener, line.Addr}:
			default:
			}
		}
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *e2eLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// e2eStart runs the binary with args and waits until its IMDS listener is
// known and its admin /healthz answers 200.
func e2eStart(t *testing.T, env []string, args ...string) *e2eProcess {
	t.Helper()
	p := &e2eProcess{
		log:    &e2eLog{listening: make(chan [2]string, 8)},
		exited: make(chan struct{}),
	}
	p.cmd = exec.Command(e2eBinary(t), args...)
	p.cmd.Env = env
	p.cmd.Stderr = p.log
	p.cmd.WaitDelay = e2eWait
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("imds-proxy %s log:\n%s", strings.Join(args, " "), p.log)
		}
	})

	deadline := time.NewTimer(e2eWait)
	defer deadline.Stop()
	for p.imdsAddr == "" || p.adminAddr == "" {
		select {
		case l := <-p.log.listening:
			switch l[0] {
			case "imds":
				p.imdsAddr = l[1]
			case "admin":
				p.adminAddr = l[1]
			case "container":
				p.containerAddr = l[1]
			}
		case <-p.exited:
			t.Fatalf("imds-proxy exited before listening: %v\n%s", p.waitErr, p.log)
		case <-deadline.C:
			t.Fatalf("no imds and admin listening lines within %s:\n%s", e2eWait, p.log)
		}
	}
	p.waitHealthy(t, deadline.C)
	return p
}

func (p *e2eProcess) waitHealthy(t *testing.T, deadline <-chan time.Time) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	for {
		resp, err := c.Get("http://" + p.adminAddr + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-deadline:
			t.Fatalf("GET /healthz never answered 200 (last: %v)", err)
		case <-p.exited:
			t.Fatalf("imds-proxy exited: %v\n%s", p.waitErr, p.log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and expects a clean exit: status 0 and "stopped" logged.
func (p *e2eProcess) stop(t *testing.T) string {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(e2eWait):
		t.Fatalf("imds-proxy still running %s after SIGTERM", e2eWait)
	}
	if p.waitErr != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", p.waitErr)
	}
	log := p.log.String()
	if !strings.Contains(log, `"message":"stopped"`) {
		t.Errorf("log has no \"stopped\" line:\n%s", log)
	}
	return log
}

// tokenRecorder is an http.RoundTripper that remembers every IMDSv2 token
// the proxy hands out, so the test can look for them in the log.
type tokenRecorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	tokens []string
}

func (r *tokenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil || req.Method != http.MethodPut || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.add(string(body))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (r *tokenRecorder) add(tok string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens = append(r.tokens, tok)
}

func (r *tokenRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tokens...)
}

// httpClientFrom returns a client whose connections leave from src, which
// is what chooses the tenant.
func httpClientFrom(t *testing.T, src string, rec *tokenRecorder) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	rec.next = tr
	return &http.Client{Transport: rec, Timeout: e2eWait}
}

// sdkClient is aws-sdk-go-v2's IMDS client as a process at src would use it.
// Without fallback it must use IMDSv2 and fails rather than drop to v1.
func sdkClient(t *testing.T, addr, src string, rec *tokenRecorder, fallback bool) *imds.Client {
	o := imds.Options{
		Endpoint:          "http://" + addr,
		HTTPClient:        httpClientFrom(t, src, rec),
		ClientEnableState: imds.ClientEnabled, // whatever AWS_EC2_METADATA_DISABLED says
	}
	if !fallback {
		o.EnableFallback = aws.FalseTernary
	}
	return imds.New(o)
}

func sdkMetadata(ctx context.Context, c *imds.Client, path string) (string, error) {
	out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", err
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	return string(b), err
}

// curlFrom runs curl bound to src and returns the status and body.
func curlFrom(t *testing.T, src string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	args = append([]string{"-s", "--max-time", "4", "--interface", src, "-w", "\n%{http_code}"}, args...)
	out, err := exec.CommandContext(ctx, "curl", args...).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", strings.Join(args, " "), err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	status, err := strconv.Atoi(s[i+1:])
	if err != nil {
		t.Fatalf("curl %s: no status in %q", strings.Join(args, " "), s)
	}
	return status, s[:i]
}

func needCurl(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("curl")
	need(t, "curl", err)
}

type e2eTenant struct {
	name, src, instanceID, zone, region, privateIP string
	tokensRequired                                 bool
}

var e2eTenants = []e2eTenant{
	{"web", "127.0.0.2", "i-0a1b2c3d4e5f60001", "us-east-1a", "us-east-1", "10.0.1.10", false},
	{"worker", "127.0.0.3", "i-0a1b2c3d4e5f60002", "eu-west-1b", "eu-west-1", "10.0.2.20", true},
	{"batch", "127.0.0.4", "i-0a1b2c3d4e5f60003", "ap-southeast-2c", "ap-southeast-2", "10.0.3.30", false},
}

// e2eUnknownSrc is a loopback address no tenant lists.
const e2eUnknownSrc = "127.0.0.5"

func e2eConfig(t *testing.T) string {
	var b strings.Builder
	b.WriteString("server:\n  listen: [\"127.0.0.1:0\"]\ntenants:\n")
	for _, tn := range e2eTenants {
		fmt.Fprintf(&b, "  - name: %s\n    sources: [%q]\n", tn.name, tn.src)
		if tn.tokensRequired {
			b.WriteString("    imds: {tokens: required}\n")
		}
		fmt.Fprintf(&b, "    instance:\n      instance_id: %s\n      availability_zone: %s\n      private_ip: %s\n",
			tn.instanceID, tn.zone, tn.privateIP)
	}
	path := filepath.Join(t.TempDir(), "imds-proxy.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestE2EMultiTenant(t *testing.T) {
	e2eLoopback(t)
	p := e2eStart(t, e2eEnv(t), "--config", e2eConfig(t), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	var minted []*tokenRecorder
	record := func() *tokenRecorder {
		r := &tokenRecorder{}
		minted = append(minted, r)
		return r
	}
	base := "http://" + p.imdsAddr

	for _, tn := range e2eTenants {
		t.Run("sdk/"+tn.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
			defer cancel()
			c := sdkClient(t, p.imdsAddr, tn.src, record(), false)
			for path, want := range map[string]string{
				"instance-id":                 tn.instanceID,
				"placement/availability-zone": tn.zone,
				"local-ipv4":                  tn.privateIP,
			} {
				got, err := sdkMetadata(ctx, c, path)
				if err != nil || got != want {
					t.Errorf("GetMetadata(%q) = %q, %v; want %q", path, got, err, want)
				}
			}
			doc, err := c.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
			if err != nil {
				t.Fatalf("GetInstanceIdentityDocument: %v", err)
			}
			if doc.InstanceID != tn.instanceID || doc.Region != tn.region ||
				doc.AvailabilityZone != tn.zone || doc.PrivateIP != tn.privateIP {
				t.Errorf("identity document = {InstanceID %q, Region %q, AvailabilityZone %q, PrivateIP %q}, want {%q, %q, %q, %q}",
					doc.InstanceID, doc.Region, doc.AvailabilityZone, doc.PrivateIP,
					tn.instanceID, tn.region, tn.zone, tn.privateIP)
			}
			region, err := c.GetRegion(ctx, &imds.GetRegionInput{})
			if err != nil || region.Region != tn.region {
				t.Errorf("GetRegion = %v, %v; want %q", region, err, tn.region)
			}
		})
	}

	t.Run("sdk/unknown-source", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
		defer cancel()
		// With fallback, as SDKs run by default: the PUT's 403 sends the
		// client to IMDSv1, whose GET is refused too.
		c := sdkClient(t, p.imdsAddr, e2eUnknownSrc, record(), true)
		if got, err := sdkMetadata(ctx, c, "instance-id"); err == nil {
			t.Errorf("GetMetadata from %s = %q, want an error", e2eUnknownSrc, got)
		}
	})

	t.Run("curl", func(t *testing.T) {
		needCurl(t)
		curlTokens := record()
		mint := func(t *testing.T, src string) string {
			t.Helper()
			status, tok := curlFrom(t, src, "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", base+"/latest/api/token")
			if status != http.StatusOK || tok == "" {
				t.Fatalf("PUT /latest/api/token from %s = %d %q, want 200 and a token", src, status, tok)
			}
			curlTokens.add(tok)
			return tok
		}
		for _, tn := range e2eTenants {
			t.Run("v1/"+tn.name, func(t *testing.T) {
				status, body := curlFrom(t, tn.src, base+"/latest/meta-data/instance-id")
				switch {
				case tn.tokensRequired && status != http.StatusUnauthorized:
					t.Errorf("tokens required, GET without a token = %d %q, want 401", status, body)
				case !tn.tokensRequired && (status != http.StatusOK || body != tn.instanceID):
					t.Errorf("GET instance-id = %d %q, want 200 %q", status, body, tn.instanceID)
				}
			})
			t.Run("v2/"+tn.name, func(t *testing.T) {
				tok := mint(t, tn.src)
				status, body := curlFrom(t, tn.src, "-H", "X-aws-ec2-metadata-token: "+tok, base+"/latest/meta-data/instance-id")
				if status != http.StatusOK || body != tn.instanceID {
					t.Errorf("GET instance-id with a token = %d %q, want 200 %q", status, body, tn.instanceID)
				}
			})
		}
		t.Run("unknown-source", func(t *testing.T) {
			if status, _ := curlFrom(t, e2eUnknownSrc, base+"/latest/meta-data/instance-id"); status != http.StatusForbidden {
				t.Errorf("GET instance-id from %s = %d, want 403", e2eUnknownSrc, status)
			}
			status, _ := curlFrom(t, e2eUnknownSrc, "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", base+"/latest/api/token")
			if status != http.StatusForbidden {
				t.Errorf("PUT /latest/api/token from %s = %d, want 403", e2eUnknownSrc, status)
			}
		})
		t.Run("token-of-another-tenant", func(t *testing.T) {
			tok := mint(t, "127.0.0.2") // web's
			// worker requires tokens; batch would serve a token-less GET,
			// so its 401 can only come from rejecting web's token.
			for _, src := range []string{"127.0.0.3", "127.0.0.4"} {
				status, body := curlFrom(t, src, "-H", "X-aws-ec2-metadata-token: "+tok, base+"/latest/meta-data/instance-id")
				if status != http.StatusUnauthorized {
					t.Errorf("web's token sent from %s = %d %q, want 401", src, status, body)
				}
			}
		})
	})

	log := p.stop(t)
	n := 0
	for _, r := range minted {
		for _, tok := range r.all() {
			n++
			if strings.Contains(log, tok) {
				t.Errorf("the log contains the IMDSv2 token %q", tok)
			}
		}
	}
	if n < len(e2eTenants) {
		t.Errorf("only %d tokens were minted; the SDK clients should have used IMDSv2", n)
	}
	for _, tn := range e2eTenants {
		if !regexp.MustCompile(`"tenant":"` + tn.name + `","src":"` + regexp.QuoteMeta(tn.src) + `".*"status":200,.*"imds":"v2"`).MatchString(log) {
			t.Errorf("no IMDSv2 access line with status 200 for %s from %s", tn.name, tn.src)
		}
	}
}

func TestE2ESeedMode(t *testing.T) {
	e2eLoopback(t)
	const flagID, envID = "i-0123456789abcdef0", "i-0fedcba9876543210"
	cases := []struct {
		name       string
		args, env  []string
		id, zone   string
		wantRegion string
	}{
		{
			name: "flags beat environment",
			args: []string{"--instance-id", flagID, "--availability-zone", "eu-west-1b"},
			env:  []string{"INSTANCE_ID=" + envID, "AVAILABILITY_ZONE=ap-southeast-2c"},
			id:   flagID, zone: "eu-west-1b", wantRegion: "eu-west-1",
		},
		{
			name: "environment applies without flags",
			env:  []string{"INSTANCE_ID=" + envID, "AVAILABILITY_ZONE=ap-southeast-2c"},
			id:   envID, zone: "ap-southeast-2c", wantRegion: "ap-southeast-2",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, tc.args...)
			p := e2eStart(t, e2eEnv(t, tc.env...), args...)
			ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
			defer cancel()
			// The seed's tenant serves all of 127.0.0.0/8.
			rec := &tokenRecorder{}
			c := sdkClient(t, p.imdsAddr, "127.0.0.2", rec, false)
			if got, err := sdkMetadata(ctx, c, "instance-id"); err != nil || got != tc.id {
				t.Errorf("instance-id = %q, %v; want %q", got, err, tc.id)
			}
			if got, err := sdkMetadata(ctx, c, "placement/availability-zone"); err != nil || got != tc.zone {
				t.Errorf("availability-zone = %q, %v; want %q", got, err, tc.zone)
			}
			if r, err := c.GetRegion(ctx, &imds.GetRegionInput{}); err != nil || r.Region != tc.wantRegion {
				t.Errorf("GetRegion = %v, %v; want %q", r, err, tc.wantRegion)
			}
			log := p.stop(t)
			for _, tok := range rec.all() {
				if strings.Contains(log, tok) {
					t.Errorf("the log contains the IMDSv2 token %q", tok)
				}
			}
		})
	}
}

// e2eRun runs the binary to completion and returns its exit code and output.
func e2eRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return e2eRunEnv(t, e2eEnv(t), args...)
}

// e2eRunEnv is e2eRun in the environment env.
func e2eRunEnv(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	bin := e2eBinary(t) // built before the clock starts: a build may take longer than e2eWait
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		code = exit.ExitCode()
	default:
		t.Fatalf("imds-proxy %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errOut.String()
}

func TestE2EVersion(t *testing.T) {
	for _, arg := range []string{"--version", "version"} {
		code, out, errOut := e2eRun(t, arg)
		if code != 0 || !strings.HasPrefix(out, "imds-proxy ") {
			t.Errorf("imds-proxy %s = exit %d, stdout %q, stderr %q; want 0 and \"imds-proxy <version>\"", arg, code, out, errOut)
		}
	}
}

func TestE2ECheck(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		code, out, errOut := e2eRun(t, "check", "--config", e2eConfig(t))
		if code != 0 {
			t.Fatalf("check = exit %d, stderr %q", code, errOut)
		}
		lines := strings.Split(out, "\n")
	tenants:
		for _, tn := range e2eTenants {
			for _, l := range lines {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == tn.name {
					if f[1] != tn.src+"/32" {
						t.Errorf("check shows %s with sources %q, want %s/32", tn.name, f[1], tn.src)
					}
					continue tenants
				}
			}
			t.Errorf("check output has no line for tenant %s:\n%s", tn.name, out)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bad.yaml")
		bad := "tenants:\n  - name: web\n    sources: [\"127.0.0.2\"]\n    instance:\n      instance_id: i-nothex\n"
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := e2eRun(t, "check", "--config", path)
		if code == 0 {
			t.Fatalf("check of an invalid config exited 0; stdout %q", out)
		}
		if want := path + ":5:"; !strings.Contains(errOut, want) {
			t.Errorf("stderr %q does not locate the error at %s", errOut, want)
		}
	})
}

// A listener that cannot bind must say why: the process used to exit 1 in
// silence, its log writer having closed stderr before main reported.
func TestE2EListenFailureReported(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	code, _, errOut := e2eRun(t, "--config", e2eConfig(t), "--listen", busy.Addr().String(), "--admin-listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errOut, "imds-proxy: imds listener:") || !strings.Contains(errOut, busy.Addr().String()) {
		t.Errorf("listening on a busy %s = exit %d, stderr %q; want non-zero and the listener error", busy.Addr(), code, errOut)
	}
}
