//go:build e2e

package main

// Docker-aware resolution end to end: the real binary follows a fake
// Docker Engine on a unix socket, and clients bound to the fake
// containers' (loopback) addresses are served as the tenants that name
// those containers.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/internal/docker/dockertest"
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
