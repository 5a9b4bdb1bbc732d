package liveconfig_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/internal/docker/dockertest"
	"github.com/imds-proxy/imds-proxy/internal/liveconfig"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// TestWaitForSource: a request from an address a container is about to
// hold is released once the container's start is applied, and not before.
func TestWaitForSource(t *testing.T) {
	engine := dockertest.New(t)
	engine.Start(dockertest.Container{ID: "w1", Name: "web", Networks: map[string][]string{"app": {"172.30.0.2"}}})
	engine.Start(dockertest.Container{ID: "o1", Name: "other", Networks: map[string][]string{"app": {"172.30.0.3"}}})
	cfg, err := tenants.Parse("c.yaml", []byte(fmt.Sprintf(
		"server: {docker_socket: %s}\ntenants:\n  - name: web\n    sources: [{container: web}]\n", engine.Socket)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var applied appliedConfigs
	live := liveconfig.NewContainers(zerolog.New(zerolog.NewTestWriter(t)), "", cfg, applied.apply)
	addr := netip.MustParseAddr

	// Not following yet: nothing to wait for, even with no deadline.
	if live.WaitForSource(context.Background(), addr("172.30.0.2")) {
		t.Fatal("WaitForSource is true before the engine's containers are known")
	}

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
	waitSources(t, &applied, "web[172.30.0.2/32]")

	// Held already: at once, whether a tenant names the container or not.
	for _, a := range []string{"172.30.0.2", "172.30.0.3"} {
		if !live.WaitForSource(context.Background(), addr(a)) {
			t.Errorf("WaitForSource(%s) = false for a running container's address", a)
		}
	}

	// The start race: the waiter is released by the start event, and by
	// then the address is applied.
	type result struct {
		ok      bool
		sources string
	}
	res := make(chan result, 1)
	go func() {
		ok := live.WaitForSource(context.Background(), addr("172.30.0.9"))
		res <- result{ok, applied.sources()}
	}()
	engine.Die("w1")
	waitSources(t, &applied, "web[]")
	engine.Start(dockertest.Container{ID: "w2", Name: "web", Networks: map[string][]string{"app": {"172.30.0.9"}}})
	if r := <-res; !r.ok || r.sources != "web[172.30.0.9/32]" {
		t.Fatalf("released with %v and %q applied, want true and web[172.30.0.9/32]", r.ok, r.sources)
	}

	// An address no container takes waits until ctx ends.
	wctx, wcancel := context.WithCancel(context.Background())
	gone := make(chan bool, 1)
	go func() { gone <- live.WaitForSource(wctx, addr("172.30.0.2")) }()
	engine.Start(dockertest.Container{ID: "x1", Name: "x", Networks: map[string][]string{"app": {"172.30.0.4"}}})
	wcancel()
	if <-gone {
		t.Fatal("WaitForSource is true for the address of a container that died")
	}
}
