//go:build linux || darwin || freebsd || netbsd || openbsd

package handlers_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// hopOption is the socket option holding a connection's TTL or hop limit.
func hopOption(c *net.TCPConn) (level, opt int) {
	if c.LocalAddr().(*net.TCPAddr).IP.To4() == nil {
		return syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS
	}
	return syscall.IPPROTO_IP, syscall.IP_TTL
}

// hopLimit reads back the TTL or hop limit packets of c leave with.
func hopLimit(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	v, err := readHopLimit(c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// readHopLimit reads a socket's IP TTL or IPv6 hop limit.
func readHopLimit(c *net.TCPConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	level, opt := hopOption(c)
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), level, opt) }); err != nil {
		return 0, err
	}
	return v, serr
}

// acceptedPair returns the server side of a fresh loopback TCP connection
// on network ("tcp4" or "tcp6"), skipping the test if the host lacks it.
func acceptedPair(t *testing.T, network, addr string) *net.TCPConn {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback here: %v", network, err)
	}
	defer l.Close()
	client, err := net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return server.(*net.TCPConn)
}

func TestSetHopLimit(t *testing.T) {
	tests := []struct {
		name, network, addr string
		hops                int
	}{
		{"ipv4 one hop", "tcp4", "127.0.0.1:0", 1},
		{"ipv4 three hops", "tcp4", "127.0.0.1:0", 3},
		{"ipv4 sixty-three hops", "tcp4", "127.0.0.1:0", 63}, // 64 is the usual default
		{"ipv6 one hop", "tcp6", "[::1]:0", 1},
		{"ipv6 two hops", "tcp6", "[::1]:0", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := acceptedPair(t, tc.network, tc.addr)
			if err := handlers.SetHopLimit(c, tc.hops); err != nil {
				t.Fatalf("SetHopLimit: %v", err)
			}
			if got := hopLimit(t, c); got != tc.hops {
				t.Fatalf("hop limit %d, want %d", got, tc.hops)
			}
		})
	}
	t.Run("not a TCP connection", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if err := handlers.SetHopLimit(a, 1); err == nil {
			t.Fatal("SetHopLimit on a pipe succeeded")
		}
	})
}

// capturingListener hands every accepted connection to the test as well as
// to the server, and records its hop limit at the moment the server closes
// it (the PUT response closes its connection, as real IMDS does).
type capturingListener struct {
	net.Listener
	conns   chan *net.TCPConn
	atClose chan int
}

// recordingConn is the server's view of a connection: a *net.TCPConn that
// reports its hop limit when closed.
type recordingConn struct {
	*net.TCPConn
	l capturingListener
}

func (c recordingConn) Close() error {
	// net/http may close a connection twice; only an open socket reports.
	if v, err := readHopLimit(c.TCPConn); err == nil {
		select {
		case c.l.atClose <- v:
		default:
		}
	}
	return c.TCPConn.Close()
}

func (l capturingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		l.conns <- tc
		return recordingConn{tc, l}, nil
	}
	return c, err
}

// TestPutSetsHopLimit serves a real listener as imds-proxy does and checks
// that the connection a token PUT arrived on leaves with the tenant's hop
// limit, and that GETs before it do not change the system's default.
func TestPutSetsHopLimit(t *testing.T) {
	tests := []struct {
		name, network, listen, from string
		hops                        int
	}{
		{"ipv4, tenant hop limit 3", "tcp4", "127.0.0.1:0", "127.0.0.1", 3},
		{"ipv4, default hop limit 2", "tcp4", "127.0.0.1:0", "127.0.0.5", 2},
		{"ipv6, tenant hop limit 3", "tcp6", "[::1]:0", "::1", 3},
	}
	srv, _ := newServer(t, testConfig, handlers.Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.network == "tcp4" {
				requireLoopback(t, tc.from)
			}
			l, err := net.Listen(tc.network, tc.listen)
			if err != nil {
				t.Skipf("no %s loopback here: %v", tc.network, err)
			}
			cl := capturingListener{Listener: l, conns: make(chan *net.TCPConn, 4), atClose: make(chan int, 4)}
			hs := &http.Server{Handler: srv, ConnContext: handlers.ConnContext, ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = hs.Serve(cl) }()
			t.Cleanup(func() { _ = hs.Close() })

			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tc.from)}, Timeout: 5 * time.Second}
			c, err := d.Dial(tc.network, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			var server *net.TCPConn
			select {
			case server = <-cl.conns:
			case <-time.After(5 * time.Second):
				t.Fatal("the server accepted no connection")
			}
			before := hopLimit(t, server)
			if before == tc.hops {
				t.Fatalf("the system's default hop limit is already %d: choose another", before)
			}
			br := bufio.NewReader(c)

			exchange(t, c, br, "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n", http.StatusOK)
			if got := hopLimit(t, server); got != before {
				t.Fatalf("a GET changed the hop limit from %d to %d", before, got)
			}
			exchange(t, c, br, "PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\nContent-Length: 0\r\n\r\n", http.StatusOK)
			select {
			case got := <-cl.atClose:
				if got != tc.hops {
					t.Fatalf("the PUT response left with hop limit %d, want %d", got, tc.hops)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the server kept the connection of a token PUT open")
			}
		})
	}
}

// exchange writes one request on c and reads its response from br.
func exchange(t *testing.T, c net.Conn, br *bufio.Reader, request string, status int) {
	t.Helper()
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d", resp.StatusCode, status)
	}
}
