package main

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// listenKey names, for each kind of listener, the flag and the key that
// choose its address: what a user changes when it cannot bind.
func listenKey(kind string) (flag, key string) {
	switch kind {
	case "container":
		return "--container-listen", "server.container_listen"
	case "ecs":
		return "--ecs-listen", "server.ecs_listen"
	case "podidentity":
		return "--pod-identity-listen", "server.pod_identity_listen"
	case "admin":
		return "--admin-listen", "server.admin_listen"
	}
	return "--listen", "server.listen"
}

// listenError says why a listener cannot bind, and what to change.
func listenError(kind, addr string, err error) error {
	var k struct{ flag, key string }
	k.flag, k.key = listenKey(kind)
	var hint string
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = fmt.Sprintf("another process (another imds-proxy?) listens on %s: stop it, or choose another address with %s or %s", addr, k.flag, k.key)
		if kind == "admin" {
			hint += ` ("off" disables the admin listener)`
		}
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = fmt.Sprintf("%s is not an address of this host", addr)
		if ap, perr := tenants.ParseListen(addr); perr == nil && isIMDSAddress(ap.Addr()) {
			hint += ": add it first with `imds-proxy setup --mode address" + setupEndpointFlag(kind) + "` (see docs/deployment.md), or listen elsewhere and redirect with `imds-proxy setup --mode dnat`"
		} else {
			hint += fmt.Sprintf(": choose one of its addresses with %s or %s", k.flag, k.key)
		}
	case errors.Is(err, syscall.EACCES):
		hint = "a port below 1024 needs root or CAP_NET_BIND_SERVICE (the systemd unit in dist/systemd grants it), or choose a port above 1023 with " + k.flag + " or " + k.key
	default:
		return fmt.Errorf("%s listener: %w", kind, err)
	}
	return fmt.Errorf("%s listener: %w; %s", kind, err, hint)
}

// setupEndpointFlag is the flag of `setup --mode address` that adds the
// addresses of a kind of listener besides IMDS's.
func setupEndpointFlag(kind string) string {
	switch kind {
	case "ecs":
		return " --ecs"
	case "podidentity":
		return " --pod-identity"
	}
	return ""
}

// isIMDSAddress reports whether a is an address IMDS answers on: a
// listener there needs the address on an interface first (imds-proxy setup).
func isIMDSAddress(a netip.Addr) bool {
	a = a.Unmap()
	return a == netip.AddrFrom4([4]byte{169, 254, 169, 254}) || a == netip.MustParseAddr("fd00:ec2::254") ||
		a == netip.AddrFrom4([4]byte{169, 254, 170, 2}) || a == netip.AddrFrom4([4]byte{169, 254, 170, 23}) ||
		a == netip.MustParseAddr("fd00:ec2::23")
}
