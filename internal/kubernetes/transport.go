package kubernetes

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"sync"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
)

// httpClient is the HTTP client of cfg that rest.HTTPClientFor would make,
// on net/http's own HTTP/2 instead of golang.org/x/net/http2: client-go's
// transport cache configures the health check of its HTTP/2 connections
// through x/net/http2, which with the copy of IDNA and Unicode tables it
// brings weighs 0.66 MB of the binary, while net/http's HTTP2Config sets
// the same two timeouts. The rest is client-go's: the TLS configuration
// (CA, client certificate files read again once stale, an exec plugin's
// certificates), the authentication (bearer token and its file, basic,
// exec and auth-provider plugins), impersonation, the user agent, the
// proxy with NO_PROXY's CIDRs, and the dialer, timeouts and idle pool of
// its transports. Two of the cache's extras are not kept: closing the open
// connections when a client certificate file changes (new connections use
// the new certificate), and the environment variables DISABLE_HTTP2,
// HTTP2_READ_IDLE_TIMEOUT_SECONDS and HTTP2_PING_TIMEOUT_SECONDS
// (GODEBUG=http2client=0 turns HTTP/2 off). Its CA file rotation is
// caRotation.
func httpClient(cfg *rest.Config, now func() time.Time) (*http.Client, error) {
	tc, err := cfg.TransportConfig()
	if err != nil {
		return nil, err
	}
	if tc.Transport != nil {
		return nil, errors.New("a rest.Config with its own Transport is not supported")
	}
	// TLSConfigFor reads the CA and certificate files, and marks the CA
	// file for reloading (tc.TLS.ReloadCAFiles) when client-go's
	// ClientsAllowCARotation feature is on, as it is by default.
	tlsConfig, err := transport.TLSConfigFor(tc)
	if err != nil {
		return nil, err
	}
	t := &http.Transport{
		Proxy:               tc.Proxy,
		TLSClientConfig:     tlsConfig,
		MaxIdleConnsPerHost: 25,
		DisableCompression:  tc.DisableCompression,
		// Without it a transport with its own TLS configuration or dialer
		// speaks HTTP/1.1 only.
		ForceAttemptHTTP2: true,
		// A connection that has been silent for 30 s is pinged, and closed
		// when no answer comes within 15 s, so that a watch on a dead
		// connection fails and is made again instead of waiting for the
		// kernel's TCP timeout (client-go's values).
		HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
	if tc.DialHolder != nil {
		// An exec plugin's: it closes the connections when its
		// credentials rotate.
		t.DialContext = tc.DialHolder.Dial
	}
	// What client-go's transports get from it too: without a proxy of
	// the config's own, the environment's with NO_PROXY's CIDRs; the
	// 30 s dialer; the TLS handshake and idle timeouts.
	utilnet.SetOldTransportDefaults(t)
	var rt http.RoundTripper = t
	if tc.TLS.ReloadCAFiles && tlsConfig != nil && tlsConfig.RootCAs != nil && tc.TLS.CAFile != "" {
		rt = &caRotation{file: tc.TLS.CAFile, data: tc.TLS.CAData, now: now, checked: now(), t: t}
	}
	rt, err = transport.HTTPWrappersForConfig(tc, rt)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt, Timeout: cfg.Timeout}, nil
}

// caReloadEvery is how long a CA file is trusted as read: client-go's
// period.
const caReloadEvery = 5 * time.Minute

// caRotation follows a CA file that is rewritten when the cluster's CA
// rotates (the in-cluster service account's ca.crt): on a request at least
// caReloadEvery after the last look, it reads the file again and, when it
// has changed, moves to a copy of the transport that trusts the new CAs and
// closes the old one's idle connections. A file that cannot be read or
// parsed leaves the CAs as they were, until the next look.
type caRotation struct {
	file string
	now  func() time.Time

	mu      sync.Mutex
	data    []byte // the PEM the transport trusts
	checked time.Time
	t       *http.Transport
}

func (c *caRotation) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.transport().RoundTrip(req)
}

func (c *caRotation) transport() *http.Transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.checked) >= caReloadEvery {
		c.checked = now
		c.reloadLocked()
	}
	return c.t
}

func (c *caRotation) reloadLocked() {
	data, err := os.ReadFile(c.file)
	if err != nil || len(data) == 0 || bytes.Equal(data, c.data) {
		return
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return
	}
	t := c.t.Clone()
	t.TLSClientConfig.RootCAs = pool
	old := c.t
	c.t, c.data = t, data
	old.CloseIdleConnections()
}

// CloseIdleConnections closes the idle connections of the transport in use,
// for http.Client.CloseIdleConnections.
func (c *caRotation) CloseIdleConnections() {
	c.mu.Lock()
	t := c.t
	c.mu.Unlock()
	t.CloseIdleConnections()
}
