package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// notifier tells the service manager about the proxy's state, as
// sd_notify(3) does: one datagram to the unix socket $NOTIFY_SOCKET names
// (a leading "@" is Linux's abstract namespace, which package net reads
// as such). Without the variable (not a Type=notify service) it does
// nothing.
type notifier struct{ socket string }

// notify sends state, such as "READY=1"; errors are for the log only, as a
// service manager that cannot hear does not stop the proxy from serving.
func (n notifier) notify(state string) error {
	if n.socket == "" {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", n.socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", n.socket, err)
	}
	return nil
}

// stateReloading is sent before a reload is read and READY=1 after, so
// that `systemctl reload` returns once the file is read (systemd then
// reports the unit reloading, not active). Type=notify-reload, which also
// wants MONOTONIC_USEC, is not used: its clock is not in package time.
const stateReloading = "RELOADING=1"

// prefetchWait bounds how long readiness waits for the first credentials:
// a tenant whose profile is broken is reported by /readyz and the log, and
// must not keep the service from starting.
const prefetchWait = 20 * time.Second

// readyState waits until every tenant with a role has had its first
// credentials fetched (or its first fetch failed), or until prefetchWait,
// then returns the READY=1 state with a STATUS line saying which.
func readyState(ctx context.Context, cfg *tenants.Config, creds *credentialCache, tick time.Duration) string {
	deadline := time.NewTimer(prefetchWait)
	defer deadline.Stop()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		waiting := prefetching(cfg, creds)
		if len(waiting) == 0 {
			return fmt.Sprintf("READY=1\nSTATUS=serving %d tenants", len(cfg.Tenants))
		}
		select {
		case <-ctx.Done():
			return ""
		case <-deadline.C:
			return fmt.Sprintf("READY=1\nSTATUS=serving %d tenants; credentials still fetching for %s",
				len(cfg.Tenants), strings.Join(waiting, ", "))
		case <-t.C:
		}
	}
}

// prefetching names the tenants whose first credentials fetch has not
// ended yet.
func prefetching(cfg *tenants.Config, creds *credentialCache) []string {
	var out []string
	for _, t := range cfg.Tenants {
		st := creds.State(t)
		if st != nil && !st.Valid && st.Failures == 0 {
			out = append(out, t.Name)
		}
	}
	return out
}
