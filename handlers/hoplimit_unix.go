//go:build linux || darwin || freebsd || netbsd || openbsd

package handlers

import (
	"errors"
	"net"
	"syscall"
)

// SetHopLimit makes the packets of a TCP connection leave with the given IP
// TTL (IPv4) or hop limit (IPv6). Real IMDS sends its token responses with
// the instance's HttpPutResponseHopLimit, so that a client more hops away
// than allowed never receives a token; this reproduces that on the host.
func SetHopLimit(c net.Conn, hops int) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("hop limit: not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	v6 := false
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		v6 = a.IP.To4() == nil
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		if v6 {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, hops)
			return
		}
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL, hops)
	})
	if err != nil {
		return err
	}
	return serr
}
