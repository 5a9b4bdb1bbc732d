package liveconfig_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/internal/docker/dockertest"
	"github.com/imds-proxy/imds-proxy/internal/liveconfig"
	"github.com/imds-proxy/imds-proxy/tenants"
	"github.com/rs/zerolog"
)

// appliedConfigs records what containerSources applies.
type appliedConfigs struct {
	mu   sync.Mutex
	last *tenants.Config
	n    int
}

func (a *appliedConfigs) apply(cfg *tenants.Config) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last, a.n = cfg, a.n+1
}

// sources renders the last applied configuration's tenants and sources.
func (a *appliedConfigs) sources() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		return ""
	}
	var parts []string
	for _, t := range a.last.Tenants {
		parts = append(parts, fmt.Sprintf("%s%v", t.Name, t.Sources))
	}
	return strings.Join(parts, " ")
}

func waitSources(t *testing.T, a *appliedConfigs, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for a.sources() != want {
		if time.Now().After(deadline) {
			t.Fatalf("applied %q after 3s, want %q", a.sources(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestContainerSources(t *testing.T) {
	engine := dockertest.New(t)
	engine.Start(dockertest.Container{ID: "w1", Name: "web", Networks: map[string][]string{"bridge": {"172.17.0.2"}}})
	parse := func(yaml string) *tenants.Config {
		t.Helper()
		cfg, err := tenants.Parse("c.yaml", []byte(yaml), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	named := parse(fmt.Sprintf("server: {docker_socket: %s}\ntenants:\n  - name: web\n    sources: [{container: web}, 10.0.0.1]\n", engine.Socket))
	plain := parse("tenants:\n  - name: web\n    sources: [10.0.0.1]\n")

	var applied appliedConfigs
	live := liveconfig.NewContainers(zerolog.New(zerolog.NewTestWriter(t)), "", plain, applied.apply)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		live.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	// A file that names no container is applied as it is, and no engine
	// is followed.
	live.SetFile(plain)
	if applied.last != plain || engine.Streams() != 0 {
		t.Fatalf("a file naming no container: applied a copy (%v) or followed the engine (%d streams)", applied.last != plain, engine.Streams())
	}

	// A reload that names a container starts following the engine.
	live.SetFile(named)
	waitSources(t, &applied, "web[10.0.0.1/32 172.17.0.2/32]")

	// Reloads and container events, concurrently: the last of each wins.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			live.SetFile(named)
		}
	}()
	for i := 0; i < 10; i++ {
		engine.Die("w1")
		engine.Start(dockertest.Container{ID: "w1", Name: "web", Networks: map[string][]string{"bridge": {fmt.Sprintf("172.17.0.%d", 10+i)}}})
	}
	wg.Wait()
	waitSources(t, &applied, "web[10.0.0.1/32 172.17.0.19/32]")

	// A reload that names no container any more stops following.
	live.SetFile(plain)
	waitSources(t, &applied, "web[10.0.0.1/32]")
	deadline := time.Now().Add(3 * time.Second)
	for engine.Streams() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("still following the engine after the last container was dropped from the file")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
