package handlers

import (
	"net"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// addrConn is a connection that only has a remote address: all admit reads.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// TestAdmitRefusedAtCeilingUnlistsTrustedProxy: a trusted proxy's
// connection refused at the ceiling is closed by the listener without ever
// being a limitedConn that closes; admit must take it off its shard's list,
// or every such refusal leaks an entry that every search for an idle
// connection walks.
func TestAdmitRefusedAtCeilingUnlistsTrustedProxy(t *testing.T) {
	cfg, err := tenants.Parse("test", []byte(`
server:
  trusted_proxies: ["127.0.0.9"]
tenants:
  - name: web
    sources: ["127.0.0.2"]
`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{MaxConnections: 1})
	if err != nil {
		t.Fatal(err)
	}
	held := s.admit(addrConn{remote: &net.TCPAddr{IP: net.ParseIP("127.0.0.2"), Port: 1}})
	if held == nil {
		t.Fatal("the tenant's first connection was refused")
	}
	proxy := &net.TCPAddr{IP: net.ParseIP("127.0.0.9"), Port: 2}
	if c := s.admit(addrConn{remote: proxy}); c != nil {
		t.Fatal("the proxy's connection was admitted past a ceiling of 1 held by a busy connection")
	}
	psh := s.sources.shard(proxy.AddrPort().Addr())
	psh.mu.Lock()
	for c := psh.conns.head; c != nil; c = c.next {
		if c != held {
			t.Errorf("a refused connection from %v is still on its shard's list", c.src)
		}
	}
	psh.mu.Unlock()
}
