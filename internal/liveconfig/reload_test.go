package liveconfig_test

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/internal/liveconfig"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// TestReloader: a changed file is loaded through the caller's pipeline and
// applied once; an invalid one and an unchanged one are not.
func TestReloader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	config := func(name string) string { return "tenants:\n  - {name: " + name + ", sources: [10.0.0.1]}\n" }
	write := func(content string) {
		t.Helper()
		tmp := filepath.Join(dir, ".c.yaml.tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	loads := make(chan error, 256) // a reload loads until two loads agree
	load := func() (liveconfig.Loaded, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return liveconfig.Loaded{}, err
		}
		cfg, err := tenants.Parse(path, data, time.Now())
		loads <- err
		return liveconfig.Loaded{Config: cfg, Digest: sha256.Sum256(data)}, err
	}
	applied := make(chan string, 16)
	apply := func(cfg *tenants.Config) { applied <- cfg.Tenants[0].Name }

	write(config("one"))
	running, err := load()
	<-loads
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rl := liveconfig.NewReloader(path, running, load, apply, zerolog.New(zerolog.NewTestWriter(t)))
		liveconfig.SetWait(rl, func(context.Context, time.Duration) bool { return true })
		rl.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	// The look once the watch has begun finds the file as loaded, and does
	// not even parse it (unchanged bytes).

	// waitLoad waits for a load that failed (or not): later writes must
	// not overtake the one the reloader is to see.
	waitLoad := func(failed bool) {
		t.Helper()
		for (recv(t, loads) != nil) != failed {
		}
	}
	write(config("two"))
	if got := recv(t, applied); got != "two" {
		t.Fatalf("applied %q, want two", got)
	}
	write("tenants: [")
	waitLoad(true)
	write(config("two")) // as running: not applied again (not even parsed)
	write(config("three"))
	if got := recv(t, applied); got != "three" {
		t.Fatalf("applied %q, want three (an invalid or unchanged file applied?)", got)
	}
}

// recv waits for a value that an event the test caused must bring.
func recv[T any](t *testing.T, c <-chan T) T {
	t.Helper()
	for {
		select {
		case v := <-c:
			return v
		case <-time.After(10 * time.Second):
			var zero T
			t.Fatal("nothing within 10s")
			return zero
		}
	}
}
