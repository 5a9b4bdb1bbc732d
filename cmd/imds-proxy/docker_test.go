package main

// Docker-aware resolution end to end: the real binary follows a fake
// Docker Engine on a unix socket, and clients bound to the fake
// containers' (loopback) addresses are served as the tenants that name
// those containers.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/internal/docker/dockertest"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// prober asks the proxy who addresses are.
type prober struct {
	t       *testing.T
	p       *e2eProcess
	clients map[string]*http.Client
}

func newProber(t *testing.T, p *e2eProcess) *prober {
	return &prober{t: t, p: p, clients: map[string]*http.Client{}}
}

// whoAmI asks for the instance id from src: the tenant's id, or the
// status. One kept-alive client per address: unknown sources may hold only
// a few connections.
func (pr *prober) whoAmI(src string) string {
	t := pr.t
	t.Helper()
	c := pr.clients[src]
	if c == nil {
		c = httpClientFrom(t, src, &tokenRecorder{})
		pr.clients[src] = c
	}
	resp, err := c.Get("http://" + pr.p.imdsAddr + "/latest/meta-data/instance-id")
	if err != nil {
		t.Fatalf("GET from %s: %v", src, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprint(resp.StatusCode)
	}
	return string(body)
}

// eventually polls src until it is answered want, for at most 3s; no
// answer on the way may be one of never.
func (pr *prober) eventually(src, want string, never ...string) {
	t := pr.t
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	var got string
	for {
		got = pr.whoAmI(src)
		for _, n := range never {
			if got == n {
				t.Fatalf("%s is served %s, which it must never be again", src, got)
			}
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is served %s after 3s, want %s", src, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const (
	webID    = "i-0a1b2c3d4e5f60021"
	workerID = "i-0a1b2c3d4e5f60022"
)

func TestE2EDockerAwareSources(t *testing.T) {
	e2eLoopback(t)
	engine := dockertest.New(t)
	engine.Start(dockertest.Container{ID: "c-web-1", Name: "web", Networks: map[string][]string{"app": {"127.0.0.21"}}})
	engine.Start(dockertest.Container{ID: "c-api-1", Name: "api", Labels: map[string]string{"imds-proxy.tenant": "worker"},
		Networks: map[string][]string{"app": {"127.0.0.22"}}})
	engine.Start(dockertest.Container{ID: "c-db-1", Name: "db", Networks: map[string][]string{"app": {"127.0.0.23"}}})

	config := filepath.Join(t.TempDir(), "imds-proxy.yaml")
	yaml := fmt.Sprintf(`server:
  docker_socket: %s
tenants:
  - name: web
    sources: [{container: web}]
    instance: {instance_id: %s}
  - name: worker
    sources:
      - label: imds-proxy.tenant=worker
    instance: {instance_id: %s}
`, engine.Socket, webID, workerID)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := e2eStart(t, e2eEnv(t), "--config", config, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	pr := newProber(t, p)

	// By name and by label; a container no tenant names is no tenant.
	pr.eventually("127.0.0.21", webID)
	pr.eventually("127.0.0.22", workerID)
	pr.eventually("127.0.0.23", "403")

	// A restart that changes the address: the old one is refused as soon
	// as the container dies, the new one is web once it starts.
	engine.Die("c-web-1")
	pr.eventually("127.0.0.21", "403")
	engine.Start(dockertest.Container{ID: "c-web-1", Name: "web", Networks: map[string][]string{"app": {"127.0.0.24"}}})
	pr.eventually("127.0.0.24", webID)
	if got := pr.whoAmI("127.0.0.21"); got != "403" {
		t.Errorf("web's old address is served %s after web moved, want 403", got)
	}

	// Web's old address reused by another tenant's container: that
	// tenant's, never web's.
	engine.Start(dockertest.Container{ID: "c-api-2", Name: "api-2", Labels: map[string]string{"imds-proxy.tenant": "worker"},
		Networks: map[string][]string{"app": {"127.0.0.21"}}})
	pr.eventually("127.0.0.21", workerID, webID)

	// Worker's address reused by a container no tenant names: refused,
	// never worker's.
	engine.Die("c-api-1")
	pr.eventually("127.0.0.22", "403")
	engine.Remove("c-api-1")
	engine.Start(dockertest.Container{ID: "c-cache-1", Name: "cache", Networks: map[string][]string{"app": {"127.0.0.22"}}})
	pr.eventually("127.0.0.22", "403", workerID)
	for i := 0; i < 20; i++ {
		if got := pr.whoAmI("127.0.0.22"); got != "403" {
			t.Fatalf("the reused address 127.0.0.22 is served %s, want 403", got)
		}
	}

	// A reload combines with the containers running now: web names
	// cache instead, and is served at cache's address without a restart.
	yaml = strings.Replace(yaml, "[{container: web}]", "[{container: cache}]", 1)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pr.eventually("127.0.0.22", webID, workerID)
	pr.eventually("127.0.0.24", "403")

	log := p.stop(t)
	for _, want := range []string{`"message":"following Docker containers"`, `"message":"container sources changed"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log has no %s line", want)
		}
	}
}

// TestE2EDockerUnreachable: an engine that cannot be reached leaves the
// proxy serving every other tenant, and says what to do.
func TestE2EDockerUnreachable(t *testing.T) {
	e2eLoopback(t)
	config := filepath.Join(t.TempDir(), "imds-proxy.yaml")
	yaml := fmt.Sprintf(`server:
  docker_socket: %s
tenants:
  - name: web
    sources: [{container: web}]
  - name: static
    sources: [127.0.0.25]
    instance: {instance_id: %s}
`, filepath.Join(t.TempDir(), "absent.sock"), workerID)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := e2eStart(t, e2eEnv(t), "--config", config, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	pr := newProber(t, p)
	pr.eventually("127.0.0.25", workerID)
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(p.log.String(), "no Docker socket at") {
		if time.Now().After(deadline) {
			t.Fatalf("no \"no Docker socket at\" warning within 3s:\n%s", p.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.stop(t)
}

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
	live := newContainerSources(zerolog.New(zerolog.NewTestWriter(t)), "", plain, applied.apply)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		live.run(ctx)
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
