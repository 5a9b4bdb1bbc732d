//go:build e2e

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// reloadConfig is a configuration whose three "stable" tenants exist in
// every version: web, worker and batch on 127.0.0.2-4. Version v changes
// their instance type (so each reload is visible) and adds or removes
// "extra" on 127.0.0.5.
func reloadConfig(v int) string {
	var b strings.Builder
	b.WriteString("tenants:\n")
	for i, name := range []string{"web", "worker", "batch"} {
		// The clients below loop flat out: lift the per-source rate limit.
		fmt.Fprintf(&b, "  - name: %s\n    sources: [\"127.0.0.%d\"]\n    limits: {requests_per_second: 1000000, burst: 1000000}\n"+
			"    instance: {instance_id: i-0a1b2c3d4e5f6000%d, instance_type: t3.r%d}\n", name, i+2, i, v)
	}
	if v%2 == 1 {
		b.WriteString("  - name: extra\n    sources: [\"127.0.0.5\"]\n    instance: {instance_id: i-0a1b2c3d4e5f60009}\n")
	}
	return b.String()
}

// writeAtomically replaces a file the way editors do: write aside, rename.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestReloadUnderLoad rewrites the configuration a hundred times — tenants
// added, removed and changed, with an invalid version in between — while
// clients hammer three tenants that exist throughout: none of their
// requests may fail, and each change must be visible after its reload.
func TestReloadUnderLoad(t *testing.T) {
	e2eLoopback(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "imds-proxy.yaml")
	writeAtomically(t, path, reloadConfig(0))
	p := e2eStart(t, e2eEnv(t), "--config", path, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var served, failed atomic.Int64
	var firstFailure atomic.Value
	for i, src := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		wg.Add(1)
		go func(src, id string) {
			defer wg.Done()
			c := httpClientFrom(t, src, &tokenRecorder{})
			for ctx.Err() == nil {
				status, body, err := reloadGet(c, "http://"+p.imdsAddr+"/latest/meta-data/instance-id")
				if err != nil || status != 200 || body != id {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %d %q %v", src, status, body, err))
					continue
				}
				served.Add(1)
			}
		}(src, fmt.Sprintf("i-0a1b2c3d4e5f6000%d", i))
	}

	web := httpClientFrom(t, "127.0.0.2", &tokenRecorder{})
	extra := httpClientFrom(t, "127.0.0.5", &tokenRecorder{})
	for v := 1; v <= 100; v++ {
		if v == 50 {
			// An invalid version: rejected, the running one stays.
			writeAtomically(t, path, reloadConfig(v)+"  - name: web\n    sources: [\"nonsense\"]\n")
			waitFor(t, func() bool { return strings.Contains(p.log.String(), "configuration rejected") })
			if s, body, _ := reloadGet(web, "http://"+p.imdsAddr+"/latest/meta-data/instance-type"); s != 200 || body != "t3.r49" {
				t.Fatalf("after an invalid file: %d %q, want the running t3.r49", s, body)
			}
			continue
		}
		if v%10 == 0 {
			writeAtomically(t, path, reloadConfig(v)+"\n")
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		} else {
			writeAtomically(t, path, reloadConfig(v))
		}
		want := fmt.Sprintf("t3.r%d", v)
		waitFor(t, func() bool {
			s, body, _ := reloadGet(web, "http://"+p.imdsAddr+"/latest/meta-data/instance-type")
			return s == 200 && body == want
		})
		s, _, _ := reloadGet(extra, "http://"+p.imdsAddr+"/latest/meta-data/instance-id")
		if wantExtra := map[bool]int{true: 200, false: 403}[v%2 == 1]; s != wantExtra {
			t.Fatalf("version %d: tenant extra answered %d, want %d", v, s, wantExtra)
		}
	}
	cancel()
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests to stable tenants failed during reloads; first: %v", n, n+served.Load(), firstFailure.Load())
	}
	if served.Load() < 300 {
		t.Fatalf("only %d requests served: the load was not real", served.Load())
	}
	log := p.stop(t)
	if n := strings.Count(log, `"message":"configuration reloaded"`); n < 99 {
		t.Fatalf("%d reloads logged, want at least 99", n)
	}
	if !strings.Contains(log, "imds-proxy.yaml:") {
		t.Fatal("the rejected file's error does not name file:line")
	}
	t.Logf("%d requests served to stable tenants across 100 rewrites, none failed", served.Load())
}

func reloadGet(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls cond for up to 15 seconds (a bound for a hang, generous for
// a loaded machine).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
