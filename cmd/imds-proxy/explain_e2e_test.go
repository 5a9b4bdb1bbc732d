//go:build e2e

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestE2EExplain(t *testing.T) {
	e2eBinary(t) // built outside e2eRun's 5 s bound
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(explainConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := e2eRun(t, "explain", "--config", path, "10.1.7.7")
	if code != 0 || !strings.HasPrefix(out, "10.1.7.7 is served as tenant team.\n  matched source  10.1.0.0/16") ||
		!strings.Contains(out, "10.0.0.0/8 of tenant office: shadowed by a longer prefix") {
		t.Errorf("explain 10.1.7.7 = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = e2eRun(t, "explain", "--config", path, "192.0.2.1")
	if code != 1 || !strings.Contains(out, "no tenant lists this address") || !strings.Contains(errOut, "no tenant lists it") {
		t.Errorf("explain 192.0.2.1 = exit %d, stdout %q, stderr %q; want exit 1 and no tenant", code, out, errOut)
	}
}
