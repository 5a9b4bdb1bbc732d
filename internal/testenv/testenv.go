// Package testenv holds what the module's tests share about their
// environment; only tests import it.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Need lets a test run only where what it drives is here (err == nil). In
// CI (the CI environment variable set, as .ci/run does) anything missing
// fails the test: a check must never silently stop running. Elsewhere the
// test is skipped, and the skip is appended to the file
// $IMDS_PROXY_SKIPPED names, which make test prints at its end.
func Need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s needs %s: %v", t.Name(), what, err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set: install it in .ci/run)")
	}
	if path := os.Getenv("IMDS_PROXY_SKIPPED"); path != "" {
		if f, ferr := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); ferr == nil {
			fmt.Fprintln(f, msg)
			_ = f.Close()
		}
	}
	t.Skip(msg)
}
