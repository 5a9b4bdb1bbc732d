package handlers

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// wellKnownHosts are the names by which clients legitimately reach IMDS.
var wellKnownHosts = map[string]bool{
	"localhost":                  true,
	"instance-data":              true, // EC2's legacy name of 169.254.169.254
	"instance-data.ec2.internal": true,
	"host.docker.internal":       true, // Docker Desktop's name for the host
}

// hostAllowed accepts a Host header that is empty, an IP literal, a
// well-known IMDS name or a configured one. Any other name is how a DNS
// rebinding attack reaches a local service from a browser: the page's own
// domain, now resolving to this address.
func hostAllowed(host string, extra []string) bool {
	if host == "" {
		return true
	}
	if strings.LastIndexByte(host, ':') > strings.LastIndexByte(host, ']') {
		// Only then is there a port; SplitHostPort would allocate an
		// error for the usual portless "169.254.169.254".
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if wellKnownHosts[host] {
		return true
	}
	for _, h := range extra {
		if h == host {
			return true
		}
	}
	return false
}

// fromBrowser recognises requests a web page made: Origin, Referer or any
// Sec-Fetch-* header (Fetch Metadata; browsers send several, and new ones
// appear, such as Sec-Fetch-Storage-Access). No SDK or tool sends any of
// them, and IMDS must never answer a page.
func fromBrowser(r *http.Request) bool {
	h := r.Header
	if len(h["Origin"]) > 0 || len(h["Referer"]) > 0 {
		return true
	}
	for k := range h {
		// Keys are canonical (textproto), so one spelling suffices.
		if strings.HasPrefix(k, "Sec-Fetch-") {
			return true
		}
	}
	return false
}

// adminAllowed applies the IMDS listener's defences to the admin listener,
// whose /status.json names every tenant, its sources and its failures: the
// same Host rule (an IP literal, which covers loopback and the listener's
// own address; localhost and the well-known IMDS names; a server.hosts
// name), so that a DNS rebinding
// page, whose Host is its own domain, is refused; and no request from
// another site's page. Unlike IMDS it serves browsers, since /status is a
// page for the operator's: a navigation typed in the address bar
// (Sec-Fetch-Site: none) and the status page's own links and fetches
// (same-origin) are the operator's; anything else a browser marks, and any
// Origin but the listener's own, is another page's.
func (s *Server) adminAllowed(r *http.Request) bool {
	if !hostAllowed(r.Host, s.state.Load().hosts) {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "none", "same-origin":
	default:
		return false
	}
	for _, o := range r.Header["Origin"] {
		if !strings.EqualFold(o, "http://"+r.Host) && !strings.EqualFold(o, "https://"+r.Host) {
			return false // "null" too: a sandboxed or opaque origin
		}
	}
	return true
}
