package handlers

import (
	"context"
	"net/netip"
	"time"
)

// The start race: Docker starts a container's process as it emits the
// container's start event, so a client that asks for credentials at once
// can arrive before the proxy has applied the event, from an address no
// tenant lists yet. Options.WaitForSource lets such a request be held
// briefly instead of refused; these bound what holding may cost.
const (
	// SourceWaitBound is the longest a request from an unknown address is
	// held: the engine's events arrive within milliseconds, so a second is
	// ample, and short enough for SDKs, whose IMDS timeout is one second
	// or more, not to give up.
	SourceWaitBound = time.Second
	// MaxSourceWaiters is how many requests may be held at once. Beyond it
	// an unknown address is refused at once, so a flood of unknown
	// sources cannot pile up goroutines and connections.
	MaxSourceWaiters = 64
)

// sourceWaiters are the slots of the requests held at once.
type sourceWaiters chan struct{}

// waitForSource holds a request from the unknown address a for up to
// SourceWaitBound while Options.WaitForSource says that the address may
// yet be served, and reports whether a new configuration should be
// consulted. Without the hook, or with every slot taken, it returns false
// at once.
func (s *Server) waitForSource(ctx context.Context, a netip.Addr) bool {
	if s.opts.WaitForSource == nil {
		return false
	}
	select {
	case s.waiters <- struct{}{}:
	default:
		return false
	}
	defer func() { <-s.waiters }()
	ctx, cancel := context.WithTimeout(ctx, SourceWaitBound)
	defer cancel()
	return s.opts.WaitForSource(ctx, a)
}
