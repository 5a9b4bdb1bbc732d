package docker_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/internal/docker"
	"github.com/imds-proxy/imds-proxy/internal/docker/dockertest"
)

// follow runs a watcher of engine until the test ends and returns what it
// reports, each report rendered by describe.
func follow(t *testing.T, socket string) <-chan string {
	t.Helper()
	reports := make(chan string, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := &docker.Watcher{
		Client:     docker.NewClient(socket),
		Log:        zerolog.New(zerolog.NewTestWriter(t)),
		Changed:    func(cs []docker.Container) { reports <- describe(cs) },
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond,
	}
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return reports
}

func describe(cs []docker.Container) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s%v", c.Name, c.Addrs))
	}
	return strings.Join(parts, " ")
}

// expect waits for the report want, skipping the ones before it.
func expect(t *testing.T, reports <-chan string, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	var seen []string
	for {
		select {
		case got := <-reports:
			if got == want {
				return
			}
			seen = append(seen, got)
		case <-deadline:
			t.Fatalf("no report %q within 5s; saw %q", want, seen)
		}
	}
}

func TestWatcherFollowsContainers(t *testing.T) {
	e := dockertest.New(t)
	e.Start(dockertest.Container{ID: "a1", Name: "web", Networks: map[string][]string{"bridge": {"172.17.0.2", "fd00:17::2"}}})
	e.Start(dockertest.Container{ID: "b1", Name: "stopped", Networks: map[string][]string{"bridge": {"172.17.0.3"}}})
	e.Die("b1")
	reports := follow(t, e.Socket)
	expect(t, reports, "web[172.17.0.2 fd00:17::2]")

	e.Start(dockertest.Container{ID: "c1", Name: "worker", Labels: map[string]string{"tier": "back"},
		Networks: map[string][]string{"app": {"172.30.0.11"}}})
	expect(t, reports, "web[172.17.0.2 fd00:17::2] worker[172.30.0.11]")

	e.Connect("c1", "bridge", "172.17.0.4")
	expect(t, reports, "web[172.17.0.2 fd00:17::2] worker[172.17.0.4 172.30.0.11]")

	// A restart that changes the address: gone at "die", back with the new
	// address at "start".
	e.Die("a1")
	expect(t, reports, "worker[172.17.0.4 172.30.0.11]")
	e.Start(dockertest.Container{ID: "a1", Name: "web", Networks: map[string][]string{"bridge": {"172.17.0.9"}}})
	expect(t, reports, "web[172.17.0.9] worker[172.17.0.4 172.30.0.11]")

	e.Remove("c1")
	expect(t, reports, "web[172.17.0.9]")
}

func TestWatcherReconnects(t *testing.T) {
	e := dockertest.New(t)
	e.Start(dockertest.Container{ID: "a1", Name: "web", Networks: map[string][]string{"bridge": {"172.17.0.2"}}})
	reports := follow(t, e.Socket)
	expect(t, reports, "web[172.17.0.2]")

	// The stream ends (an engine restart): nothing is served until the
	// engine is listed again, which finds what changed meanwhile.
	e.CloseStreams()
	expect(t, reports, "")
	expect(t, reports, "web[172.17.0.2]")
}

func TestWatcherWaitsForTheSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "docker.sock")
	reports := follow(t, socket)
	time.Sleep(50 * time.Millisecond) // a few failed attempts: no socket yet
	select {
	case r := <-reports:
		t.Fatalf("report %q without an engine", r)
	default:
	}
	e := dockertest.Listen(t, socket)
	e.Start(dockertest.Container{ID: "a1", Name: "web", Networks: map[string][]string{"bridge": {"172.17.0.2"}}})
	expect(t, reports, "web[172.17.0.2]")
}

func TestExplain(t *testing.T) {
	const sock = "/var/run/docker.sock"
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"permission", &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}, "add the user imds-proxy runs as to the docker group"},
		{"no socket", &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ENOENT)}, "no Docker socket at /var/run/docker.sock"},
		{"refused", &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "is the Docker daemon running?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := docker.Explain(sock, fmt.Errorf("docker /events: %w", tt.err)); !strings.Contains(got, tt.want) {
				t.Errorf("Explain = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}
