package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/internal/docker/dockertest"
)

// BenchmarkDockerEvent is the time from a Docker event to the proxy
// serving what it changed, with 10,000 tenants each naming a running
// container: a container moves to a new address, and a client at that
// address asks its instance id at once (the proxy holds the request until
// the event is applied). One op: the event, then the 200.
func BenchmarkDockerEvent(b *testing.B) {
	const n = 10000
	if l, err := net.Listen("tcp", "127.2.0.1:0"); err != nil {
		b.Skipf("127.2.0.1 is not a local address here: %v", err)
	} else {
		_ = l.Close()
	}
	engine := dockertest.New(b)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "server: {listen: [\"127.0.0.1:0\"], admin_listen: \"127.0.0.1:0\", docker_socket: %s}\ntenants:\n", engine.Socket)
	for i := range n {
		addr := fmt.Sprintf("127.1.%d.%d", i/256, i%256)
		engine.Start(dockertest.Container{ID: fmt.Sprintf("id-%d", i), Name: fmt.Sprintf("c%d", i),
			Networks: map[string][]string{"app": {addr}}})
		fmt.Fprintf(&cfg, "  - {name: t%d, sources: [{container: c%d}], instance: {instance_id: i-%017d}}\n", i, i, i)
	}
	config := filepath.Join(b.TempDir(), "c.yaml")
	write(b, config, cfg.String())
	imdsAddr, _ := startWith(b, deps{}, "--config", config)
	get := func(src string) (int, string) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}}
		resp, err := c.Get("http://" + imdsAddr + "/latest/meta-data/instance-id")
		if err != nil {
			b.Fatalf("GET from %s: %v", src, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// Every container is followed before the clock starts.
	deadline := time.Now().Add(30 * time.Second)
	for code, _ := get("127.1.39.15"); code != http.StatusOK; code, _ = get("127.1.39.15") {
		if time.Now().After(deadline) {
			b.Fatalf("the last container's address is answered %d after 30s", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := fmt.Sprintf("i-%017d", 7)
	i := 0
	for b.Loop() {
		i++
		addr := fmt.Sprintf("127.2.%d.%d", i/256, i%256)
		engine.Start(dockertest.Container{ID: "id-7", Name: "c7", Networks: map[string][]string{"app": {addr}}})
		start := time.Now()
		for {
			code, body := get(addr)
			if code == http.StatusOK && body == want {
				break
			}
			if code != http.StatusForbidden || time.Since(start) > 10*time.Second {
				b.Fatalf("the moved container at %s is answered %d %q, want t7's %s", addr, code, body, want)
			}
			b.Logf("403 after %v", time.Since(start))
		}
	}
}
