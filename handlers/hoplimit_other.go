//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package handlers

import (
	"errors"
	"net"
)

// SetHopLimit is not available on this platform; token responses leave with
// the system's default TTL.
func SetHopLimit(net.Conn, int) error { return errors.New("hop limit: unsupported platform") }
