package main

import (
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/tenants"
)

func TestListenError(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: &net.OpError{Op: "bind", Err: errno}}
	}
	tests := []struct {
		name, kind, addr string
		err              error
		want             []string
	}{
		{"imds in use", "imds", "127.0.0.1:8080", opErr(syscall.EADDRINUSE),
			[]string{"imds listener:", "address already in use", "--listen or server.listen"}},
		{"admin in use", "admin", "127.0.0.1:9180", opErr(syscall.EADDRINUSE),
			[]string{"admin listener:", "--admin-listen or server.admin_listen", `"off"`}},
		{"container in use", "container", "127.0.0.1:8081", opErr(syscall.EADDRINUSE),
			[]string{"--container-listen or server.container_listen"}},
		{"pod identity in use", "podidentity", "127.0.0.1:8083", opErr(syscall.EADDRINUSE),
			[]string{"--pod-identity-listen or server.pod_identity_listen"}},
		{"pod identity address missing", "podidentity", "[fd00:ec2::23]:80", opErr(syscall.EADDRNOTAVAIL),
			[]string{"imds-proxy setup --mode address --pod-identity`"}},
		{"IMDS address missing", "imds", "169.254.169.254:80", opErr(syscall.EADDRNOTAVAIL),
			[]string{"cannot assign requested address", "imds-proxy setup --mode address"}},
		{"IPv6 IMDS address missing", "imds", "[fd00:ec2::254]:80", opErr(syscall.EADDRNOTAVAIL),
			[]string{"imds-proxy setup"}},
		{"other address missing", "imds", "10.9.9.9:80", opErr(syscall.EADDRNOTAVAIL),
			[]string{"not an address of this host", "--listen or server.listen"}},
		{"privileged port", "imds", "169.254.169.254:80", opErr(syscall.EACCES),
			[]string{"CAP_NET_BIND_SERVICE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listenError(tt.kind, tt.addr, tt.err).Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("listenError = %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

// A listener that cannot bind because the port is taken names the flag
// to change, from a real bind.
func TestOpenListenersInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = openListeners(tenants.Server{Listen: []string{"127.0.0.1:0"}, AdminListen: busy.Addr().String()}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "--admin-listen") || !strings.Contains(err.Error(), `"off"`) {
		t.Errorf("openListeners with a busy admin address = %v, want the flag to change", err)
	}
}
