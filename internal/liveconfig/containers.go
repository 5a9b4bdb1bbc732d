package liveconfig

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/internal/docker"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// Containers is the one place a configuration is applied once the
// proxy serves: it combines the latest configuration file (from the
// reloader) with the running containers (from the Docker Engine) and
// applies the combination under one mutex, so that a reload and a
// container event never interleave. A file whose tenants name no container
// is applied as it is, and no engine is asked anything.
type Containers struct {
	log        zerolog.Logger
	dockerHost string                // DOCKER_HOST
	apply      func(*tenants.Config) // the server's whole apply path

	mu         sync.Mutex
	file       *tenants.Config
	containers []tenants.Container
	socket     string // the engine to follow; "": none
	gen        int    // of the watcher that may report; older ones are ignored
	warned     string // the conflicts last logged
	served     map[string]string
	wake       chan struct{}
	reported   bool          // the followed engine's containers are known
	applied    chan struct{} // closed, and replaced, when containers are applied
}

// NewContainers starts from cfg, which is already applied; dockerHost is
// DOCKER_HOST, the engine followed when server.docker_socket is not set.
func NewContainers(log zerolog.Logger, dockerHost string, cfg *tenants.Config, apply func(*tenants.Config)) *Containers {
	c := &Containers{log: log, dockerHost: dockerHost, apply: apply, file: cfg,
		served: map[string]string{}, wake: make(chan struct{}, 1), applied: make(chan struct{})}
	c.socket = c.socketFor(cfg)
	return c
}

// SetFile applies a new configuration file with the containers running now.
func (c *Containers) SetFile(cfg *tenants.Config) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.file = cfg
	if s := c.socketFor(cfg); s != c.socket {
		c.socket, c.containers, c.reported = s, nil, false
		c.gen++
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.applyLocked()
}

// socketFor is the engine cfg needs followed: server.docker_socket, else
// DOCKER_HOST's unix socket, else the default; "" when no tenant names a
// container.
func (c *Containers) socketFor(cfg *tenants.Config) string {
	switch {
	case !cfg.NamesContainers():
		return ""
	case cfg.Server.DockerSocket != "":
		return cfg.Server.DockerSocket
	case c.dockerHost != "":
		s, err := tenants.ParseDockerSocket(c.dockerHost)
		if err == nil {
			return s
		}
		c.log.Warn().Str("DOCKER_HOST", c.dockerHost).Msgf("DOCKER_HOST is not a unix socket; following %s instead (set server.docker_socket to choose)", tenants.DefaultDockerSocket)
	}
	return tenants.DefaultDockerSocket
}

// changed takes the running containers reported by watcher gen.
func (c *Containers) changed(gen int, running []docker.Container) {
	cs := make([]tenants.Container, len(running))
	for i, r := range running {
		cs[i] = tenants.Container{ID: r.ID, Name: r.Name, Labels: r.Labels, Addrs: r.Addrs}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // a watcher of an engine no longer followed
	}
	c.containers, c.reported = cs, true
	c.applyLocked()
	close(c.applied) // after apply: a waiter woken now finds it served
	c.applied = make(chan struct{})
}

func (c *Containers) applyLocked() {
	if !c.file.NamesContainers() {
		c.apply(c.file)
		return
	}
	cfg, warnings := c.file.WithContainers(c.containers)
	if w := strings.Join(warnings, "\n"); w != c.warned {
		for _, msg := range warnings {
			c.log.Warn().Msg(msg)
		}
		c.warned = w
	}
	c.logServed(cfg)
	c.apply(cfg)
}

// logServed logs each tenant whose containers' addresses changed.
func (c *Containers) logServed(cfg *tenants.Config) {
	for i, t := range cfg.Tenants {
		if len(t.Containers()) == 0 {
			continue
		}
		addrs := t.Sources[len(c.file.Tenants[i].Sources):] // appended after the static ones
		s := fmt.Sprint(addrs)
		if prev, ok := c.served[t.Name]; ok && prev == s {
			continue
		}
		c.served[t.Name] = s
		c.log.Info().Str("tenant", t.Name).Interface("containers", addrs).Msg("container sources changed")
	}
}

// Run follows the engine the configuration needs, if any, until ctx ends;
// a reload that changes the engine, or stops or starts naming containers,
// restarts or stops the watcher.
func (c *Containers) Run(ctx context.Context) {
	var stop context.CancelFunc = func() {}
	done := make(chan struct{})
	close(done)
	following := -1 // the generation of the running watcher
	for {
		c.mu.Lock()
		socket, gen := c.socket, c.gen
		c.mu.Unlock()
		if gen != following {
			// Unlocked: the old watcher may be waiting for the mutex to
			// report, which its generation makes void.
			stop()
			<-done
			following = gen
			if socket != "" {
				wctx, cancel := context.WithCancel(ctx)
				stop, done = cancel, make(chan struct{})
				w := &docker.Watcher{Client: docker.NewClient(socket), Log: c.log.With().Str("from", "docker").Logger(),
					Changed: func(cs []docker.Container) { c.changed(gen, cs) }}
				go func(done chan struct{}) {
					defer close(done)
					w.Run(wctx)
				}(done)
			}
		}
		select {
		case <-ctx.Done():
			stop()
			<-done
			return
		case <-c.wake:
		}
	}
}
