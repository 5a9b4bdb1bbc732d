//go:build e2e

package main

// The /status page as a browser renders it: headless Chromium (Debian's
// chromium, which .ci/run installs) loads it from a running proxy whose
// tenants are ready, broken and credential-less, and the rendered DOM must
// show each of them and none of the secrets the proxy holds.

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

const chromiumPath = "/usr/bin/chromium"

// chromiumWait bounds each browser run: a cold start of Chromium on a
// loaded CI machine takes seconds, a hung one is killed with its children.
const chromiumWait = 30 * time.Second

// statusPageTenant is one row the page must show.
type statusPageTenant struct {
	name, src, instanceID string
	yaml                  string // the tenant's entry under tenants:
}

func TestE2EStatusPageChromium(t *testing.T) {
	_, err := os.Stat(chromiumPath)
	need(t, "chromium (apt-get install chromium)", err)
	m := motoStart(t) // skips without moto_server, or with -short

	// HOME is the test's: ~/.aws/credentials holds the long-term keys of
	// the static profile, and no other profile exists.
	home := t.TempDir()
	creds := motoWriteFile(t, home, ".aws/credentials", motoStaticProfile, 0o600)
	config := motoWriteFile(t, home, ".aws/config", "", 0o600)
	env := e2eEnv(t, "HOME="+home, "AWS_SHARED_CREDENTIALS_FILE="+creds, "AWS_CONFIG_FILE="+config,
		"AWS_ENDPOINT_URL="+m.url, "AWS_ENDPOINT_URL_STS="+m.url)

	keys := statusPageTenant{name: "keys", src: "127.0.0.2", instanceID: "i-0a1b2c3d4e5f6e001"}
	keys.yaml = motoTenant(keys.name, keys.src, keys.instanceID, "profile: static")
	broken := statusPageTenant{name: "broken", src: "127.0.0.3", instanceID: "i-0a1b2c3d4e5f6e002"}
	broken.yaml = motoTenant(broken.name, broken.src, broken.instanceID, "profile: nowhere")
	plain := statusPageTenant{name: "plain", src: "127.0.0.4", instanceID: "i-0a1b2c3d4e5f6e003"}
	plain.yaml = fmt.Sprintf("- name: %s\n  sources: [%q]\n  instance: {instance_id: %s}\n", plain.name, plain.src, plain.instanceID)
	p := motoStartProxy(t, env, motoConfig(t, "", keys.yaml, broken.yaml, plain.yaml))

	// The secrets the page must not show: the served credentials, fetched
	// through IMDS from keys' source, the profile's long-term keys, and
	// the IMDSv2 tokens the fetch used.
	leaks := &motoLeaks{}
	_, served := motoWarmCreds(t, p, keys.src, leaks)
	secrets := map[string]string{
		"the served AccessKeyId":              served.AccessKeyID,
		"the served SecretAccessKey":          served.SecretAccessKey,
		"the served Token":                    served.Token,
		"the profile's aws_access_key_id":     motoStaticKeyID,
		"the profile's aws_secret_access_key": motoStaticSecret,
	}
	leaks.add(motoStaticSecret)
	for _, r := range leaks.recs {
		for i, tok := range r.all() {
			secrets[fmt.Sprintf("IMDSv2 token %d of the credentials fetch", i)] = tok
		}
	}
	for what, s := range secrets {
		if len(s) < 8 {
			t.Fatalf("%s is %q: too short to look for", what, s)
		}
	}

	st := statusWait(t, p.adminAddr, func(st handlers.Status) bool {
		b := statusOf(st, broken.name)
		return b != nil && b.Credentials != nil && b.Credentials.LastError != ""
	})
	reason := statusOf(st, broken.name).Problems[0].Reason
	if k := statusOf(st, keys.name); !k.Ready || k.Credentials == nil ||
		k.Credentials.KeyID != strings.Repeat("*", len(served.AccessKeyID)-4)+served.AccessKeyID[len(served.AccessKeyID)-4:] {
		t.Errorf("/status.json for %s = %+v, want ready and the served key masked to its last 4", keys.name, k)
	}

	dir := t.TempDir()
	dom := chromium(t, dir, "--dump-dom", "http://"+p.adminAddr+"/status")
	for _, tn := range []statusPageTenant{keys, broken, plain} {
		row := domRow(dom, tn.name)
		if row == "" {
			t.Errorf("the rendered page has no <tr id=\"tenant-%s\">:\n%s", tn.name, dom)
			continue
		}
		for _, want := range []string{">" + tn.name + "<", tn.src + "/32", tn.instanceID} {
			if !strings.Contains(row, want) {
				t.Errorf("row of %s does not show %q:\n%s", tn.name, want, row)
			}
		}
		ready := strings.Contains(row, `<span class="ok">ready</span>`)
		switch {
		case tn.name == broken.name && (ready || !strings.Contains(row, "credentials: "+domText(reason))):
			t.Errorf("row of %s does not show its problem %q:\n%s", tn.name, reason, row)
		case tn.name != broken.name && !ready:
			t.Errorf("row of %s does not say ready:\n%s", tn.name, row)
		}
	}
	if !strings.Contains(domRow(dom, keys.name), ">static<") {
		t.Errorf("row of %s does not show its role static:\n%s", keys.name, domRow(dom, keys.name))
	}

	pages := map[string]string{
		"the rendered /status": dom,
		"/status.json":         adminGet(t, p.adminAddr, "/status.json"),
		"/metrics":             adminGet(t, p.adminAddr, "/metrics"),
	}
	for page, body := range pages {
		for what, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("%s contains %s", page, what)
			}
		}
	}
	for _, want := range []string{`imds_proxy_tenant_ready{tenant="keys"} 1`, `imds_proxy_tenant_ready{tenant="broken"} 0`,
		`imds_proxy_tenant_ready{tenant="plain"} 1`} {
		if !strings.Contains(pages["/metrics"], want) {
			t.Errorf("/metrics has no line %q", want)
		}
	}

	shot := os.Getenv("IMDS_PROXY_STATUS_SCREENSHOT") // a path to keep it at
	if shot == "" {
		shot = filepath.Join(dir, "status.png")
	}
	chromium(t, dir, "--screenshot="+shot, "--window-size=1200,600", "http://"+p.adminAddr+"/status")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.DecodeConfig(f)
	if fi, _ := f.Stat(); err != nil || fi.Size() == 0 || img.Width == 0 || img.Height == 0 {
		t.Errorf("screenshot %s is not a PNG with pixels: %v", shot, err)
	}
	t.Logf("screenshot of /status: %s (%dx%d)", shot, img.Width, img.Height)

	motoStop(t, p, leaks)
}

// chromium runs headless Chromium on its own profile in dir and returns
// what it printed; the run and every process it started end within
// chromiumWait.
func chromium(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chromiumWait)
	defer cancel()
	args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "chromium-profile")}, args...)
	cmd := exec.CommandContext(ctx, chromiumPath, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	// Its own process group, so the renderer and zygote children go too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // any child left behind
	}
	if err != nil {
		t.Fatalf("chromium %s: %v (within %s)\nstderr:\n%s", strings.Join(args, " "), err, chromiumWait, motoTail(stderr.String(), 4000))
	}
	return string(out)
}

// domRow is the serialized <tr> of a tenant, "" if there is none.
func domRow(dom, tenant string) string {
	i := strings.Index(dom, `<tr id="tenant-`+tenant+`">`)
	if i < 0 {
		return ""
	}
	j := strings.Index(dom[i:], "</tr>")
	if j < 0 {
		return dom[i:]
	}
	return dom[i : i+j]
}

// domText is s as a DOM serializer writes a text node: only &, < and >
// are escaped (quotes are not, unlike in html/template's source).
func domText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func adminGet(t *testing.T, addr, path string) string {
	t.Helper()
	c := &http.Client{Timeout: e2eWait}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %s, %v", path, resp.Status, err)
	}
	return string(b)
}

// statusWait polls /status.json until done says the state is reached.
func statusWait(t *testing.T, addr string, done func(handlers.Status) bool) handlers.Status {
	t.Helper()
	deadline := time.Now().Add(2 * e2eWait)
	for {
		var st handlers.Status
		if err := json.Unmarshal([]byte(adminGet(t, addr, "/status.json")), &st); err != nil {
			t.Fatalf("/status.json: %v", err)
		}
		if done(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status.json did not reach the awaited state within %s: %+v", 2*e2eWait, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func statusOf(st handlers.Status, tenant string) *handlers.TenantStatus {
	for i := range st.Tenants {
		if st.Tenants[i].Name == tenant {
			return &st.Tenants[i]
		}
	}
	return nil
}
