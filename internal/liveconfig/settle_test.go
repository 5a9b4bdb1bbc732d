package liveconfig_test

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/internal/liveconfig"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// TestReloaderWaitsForAHalfWrittenFile: a file written in place, with a
// pause in the middle, was loaded half-written — valid YAML, one tenant
// short — and applied: the other tenant's clients got 403. The reloader
// loads only a file that reads the same twice; here the writer finishes
// after the first read: once before the watch begins, once while it runs.
func TestReloaderWaitsForAHalfWrittenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	full := "tenants:\n  - {name: three, sources: [10.0.0.3]}\n  - {name: four, sources: [10.0.0.4]}\n"
	half := full[:strings.Index(full, "  - {name: four")]
	full2 := strings.ReplaceAll(full, "10.0.0.", "10.0.1.") + "  - {name: five, sources: [10.0.1.5]}\n"
	half2 := full2[:strings.Index(full2, "  - {name: five")]
	if err := os.WriteFile(path, []byte("tenants:\n  - {name: one, sources: [10.0.0.1]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	running, err := parseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// An editor that writes in place has written half the new file.
	if err := os.WriteFile(path, []byte(half), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func() (liveconfig.Loaded, error) {
		l, err := parseFile(path)
		// The writer resumes once the reloader has looked.
		for from, to := range map[string]string{half: full, half2: full2} {
			if l.Digest == sha256.Sum256([]byte(from)) {
				if err := os.WriteFile(path, []byte(to), 0o600); err != nil {
					t.Error(err)
				}
			}
		}
		return l, err
	}
	applied := make(chan []string, 16)
	apply := func(cfg *tenants.Config) {
		var names []string
		for _, tn := range cfg.Tenants {
			names = append(names, tn.Name)
		}
		applied <- names
	}
	rl := liveconfig.NewReloader(path, running, load, apply, zerolog.New(zerolog.NewTestWriter(t)))
	liveconfig.SetWait(rl, func(context.Context, time.Duration) bool { return true })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rl.Run(ctx) // looks at the file at once: it changed since running was loaded
	}()
	defer func() {
		cancel()
		<-done
	}()
	if got := recv(t, applied); !slices.Equal(got, []string{"three", "four"}) {
		t.Fatalf("applied %v, want [three four]: a half-written file was applied", got)
	}
	// Written in place while watched: the write events say so.
	if err := os.WriteFile(path, []byte(half2), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, applied); !slices.Equal(got, []string{"three", "four", "five"}) {
		t.Fatalf("applied %v, want [three four five]: a half-written file was applied", got)
	}
}

func parseFile(path string) (liveconfig.Loaded, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return liveconfig.Loaded{}, err
	}
	cfg, err := tenants.Parse(path, data, time.Now())
	return liveconfig.Loaded{Config: cfg, Digest: sha256.Sum256(data)}, err
}

// TestReloaderLeavesAFileStillBeingWritten: a file that never reads the
// same twice is not applied; its writes still to come reload it.
func TestReloaderLeavesAFileStillBeingWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("tenants:\n  - {name: one, sources: [10.0.0.1]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	running, err := parseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The file on disk is no longer what runs: the look at start loads it.
	if err := os.WriteFile(path, []byte("tenants:\n  - {name: one, sources: [10.0.0.1]}\n# writing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := 0
	load := func() (liveconfig.Loaded, error) {
		n++ // another tenant at every read: a writer that never stops
		data := []byte("tenants:\n  - {name: one, sources: [10.0.0.1]}\n" + strings.Repeat("# more\n", n))
		cfg, err := tenants.Parse(path, data, time.Now())
		return liveconfig.Loaded{Config: cfg, Digest: sha256.Sum256(data)}, err
	}
	applied := make(chan struct{}, 1)
	warned := make(chan string, 1)
	log := zerolog.New(zerolog.ConsoleWriter{Out: writerFunc(func(p []byte) {
		if strings.Contains(string(p), "still being written") {
			warned <- string(p)
		}
	}), NoColor: true})
	rl := liveconfig.NewReloader(path, running, load, func(*tenants.Config) { applied <- struct{}{} }, log)
	waits := 0
	liveconfig.SetWait(rl, func(context.Context, time.Duration) bool { waits++; return true })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rl.Run(ctx)
	}()
	recv(t, warned)
	cancel()
	<-done
	select {
	case <-applied:
		t.Fatal("a file that never settled was applied")
	default:
	}
	if waits == 0 {
		t.Fatal("the reloader never waited for the file to settle")
	}
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) {
	f(p)
	return len(p), nil
}
