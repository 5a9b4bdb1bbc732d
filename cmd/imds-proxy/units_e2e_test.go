//go:build e2e

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnits runs systemd-analyze verify on the units of
// dist/systemd, with their ExecStart pointed at an executable that exists
// here (verify checks that it does).
func TestSystemdUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	need(t, "systemd-analyze (apt-get install systemd)", err)
	bin := e2eBinary(t)
	units, err := filepath.Glob(filepath.Join("..", "..", "dist", "systemd", "*.service"))
	if err != nil || len(units) < 2 {
		t.Fatalf("dist/systemd has %d units (%v), want imds-proxy.service and imds-proxy-setup.service", len(units), err)
	}
	dir := t.TempDir()
	var copies []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, want := range []string{"ExecStart=/usr/local/bin/imds-proxy"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %s", u, want)
			}
		}
		c := filepath.Join(dir, filepath.Base(u))
		write(t, c, strings.ReplaceAll(text, "/usr/local/bin/imds-proxy", bin))
		copies = append(copies, c)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, copies...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
