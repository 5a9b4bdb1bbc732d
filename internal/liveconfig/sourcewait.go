package liveconfig

import (
	"context"
	"net/netip"
	"slices"
)

// WaitForSource closes the start race for handlers.Options.WaitForSource:
// Docker runs a container's process as it emits the start event, so the
// container's first request can arrive before the event is applied. While
// an engine is followed, it blocks until a running container holds addr
// (its configuration is applied by then; true) or ctx ends (false). It
// returns false at once when no engine is followed or its containers are
// not known yet, and true at once when a container already holds addr
// (a container no tenant names is then refused without waiting).
func (c *Containers) WaitForSource(ctx context.Context, addr netip.Addr) bool {
	return waitForSource(ctx, func() (following, held bool, applied <-chan struct{}) {
		c.mu.Lock()
		defer c.mu.Unlock()
		following = c.socket != "" && c.reported
		return following, following && c.holdsLocked(addr), c.applied
	})
}

// waitForSource is the loop of both WaitForSource methods: it reads state
// (under the source's lock) until the source is not followed (false) or
// holds the address (true), waiting for the next apply in between, or ctx
// ends (false).
func waitForSource(ctx context.Context, state func() (following, held bool, applied <-chan struct{})) bool {
	for {
		following, held, applied := state()
		switch {
		case !following:
			return false
		case held:
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-applied:
		}
	}
}

func (c *Containers) holdsLocked(addr netip.Addr) bool {
	for _, ct := range c.containers {
		if slices.Contains(ct.Addrs, addr) {
			return true
		}
	}
	return false
}
