//go:build e2e

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EVersionFromBuildInfo builds the command as a user's go command
// does, with no -ldflags, from a clean checkout of this commit tagged
// v1.2.3: the go command records the tag as the main module's version
// (what `go install …@v1.2.3` records too), and the binary reports it.
func TestE2EVersionFromBuildInfo(t *testing.T) {
	_, err := exec.LookPath("git")
	need(t, "git", err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	top := run(".", "git", "rev-parse", "--show-toplevel")
	if dirty := run(top, "git", "status", "--porcelain", "--untracked-files=no"); dirty != "" {
		t.Logf("uncommitted changes are left out: the clone is of HEAD")
	}
	clone := filepath.Join(t.TempDir(), "src")
	run(".", "git", "clone", "--quiet", "--no-local", top, clone)
	run(clone, "git", "-c", "user.name=test", "-c", "user.email=test@example.com", "tag", "-a", "v1.2.3", "-m", "test release")
	bin := filepath.Join(t.TempDir(), "imds-proxy")
	// VCS stamping on, whatever GOFLAGS the machine sets (a user's go
	// install records the module version without it).
	build := exec.CommandContext(ctx, "go", "build", "-buildvcs=true", "-o", bin, "./cmd/imds-proxy")
	build.Dir = clone
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if got := run(".", bin, "version"); !strings.HasPrefix(got, "imds-proxy v1.2.3") {
		t.Fatalf("version = %q, want imds-proxy v1.2.3 (…)", got)
	}
}
