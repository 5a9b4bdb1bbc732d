package main

import (
	"bytes"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/internal/hostnet"
)

func mustSetupFlags(t *testing.T, args ...string) *setupFlags {
	t.Helper()
	o, err := parseSetupFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("parseSetupFlags(%q): %v", args, err)
	}
	return o
}

func TestSetupFlagErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // substring of the error
	}{
		{"no mode", nil, "--mode is required"},
		{"unknown mode", []string{"--mode", "nft"}, `--mode "nft"`},
		{"dnat without --to", []string{"--mode", "dnat", "--bridge", "docker0"}, "--to is required"},
		{"dnat without whom", []string{"--mode", "dnat", "--to", "172.17.0.1:8080"}, "--bridge, --cidr or --host"},
		{"dnat to loopback from a bridge", []string{"--mode", "dnat", "--bridge", "docker0", "--to", "127.0.0.1:8080"}, "cannot be redirected to loopback"},
		{"two IPv4 targets", []string{"--mode", "dnat", "--host", "--to", "172.17.0.1:8080,172.18.0.1:8080"}, "at most one address per IP version"},
		{"to without port", []string{"--mode", "dnat", "--host", "--to", "172.17.0.1"}, "want IP:port"},
		{"cidr with host bits", []string{"--mode", "dnat", "--cidr", "172.30.0.1/16", "--to", "172.30.0.1:8080"}, "did you mean 172.30.0.0/16"},
		{"IPv6 cidr without IPv6 target", []string{"--mode", "dnat", "--cidr", "fd00:30::/64", "--to", "172.30.0.1:8080"}, "no --to address of its IP version"},
		{"bad bridge name", []string{"--mode", "dnat", "--bridge", "a b", "--to", "172.17.0.1:8080"}, "not an interface name"},
		{"long bridge name", []string{"--mode", "dnat", "--bridge", "br-0123456789abcdef", "--to", "172.17.0.1:8080"}, "not an interface name"},
		{"flag of another mode", []string{"--mode", "address", "--bridge", "docker0"}, "--bridge belongs to --mode dnat"},
		{"pod identity flag of another mode", []string{"--mode", "dnat", "--host", "--to", "172.17.0.1:8080", "--pod-identity"}, "--pod-identity belongs to --mode address"},
		{"pod identity target without port", []string{"--mode", "dnat", "--host", "--to", "172.17.0.1:8080", "--pod-identity-to", "172.17.0.1"}, "--pod-identity-to \"172.17.0.1\": want IP:port"},
		{"remove with a mode", []string{"--remove", "--mode", "dnat"}, "takes no other flag"},
		{"remove with a mode flag", []string{"--remove", "--apply", "--interface", "lo"}, "takes no other flag"},
		{"docker-desktop apply", []string{"--mode", "docker-desktop", "--apply"}, "nothing to --apply"},
		{"wildcard interface", []string{"--mode", "address", "--interface", "imds+"}, "not an interface name"},
		{"container port out of range", []string{"--mode", "docker-desktop", "--container-port", "65536"}, "want 1-65535"},
		{"unexpected argument", []string{"--mode", "address", "now"}, `unexpected argument "now"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSetupFlags(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseSetupFlags(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestSetupFlagsToOptions: what each flag becomes in hostnet.Options.
func TestSetupFlagsToOptions(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want hostnet.Options
	}{
		{
			name: "address, defaults",
			args: []string{"--mode", "address"},
			want: hostnet.Options{Mode: hostnet.Address, Interface: "imds0", ContainerPort: 8081},
		},
		{
			name: "address, IPv4 only",
			args: []string{"--mode", "address", "--interface", "lo", "--ipv6=false"},
			want: hostnet.Options{Mode: hostnet.Address, Interface: "lo", IPv4Only: true, ContainerPort: 8081},
		},
		{
			name: "dnat: lists repeat or take commas, a single address is a /32",
			args: []string{"--mode", "dnat", "--bridge", "docker0,br-+", "--cidr", "172.30.0.10", "--cidr", "fd00:30::/64",
				"--to", "[fd00:30::1]:8080", "--to", "172.30.0.1:8080", "--host"},
			want: hostnet.Options{Mode: hostnet.DNAT, Interface: "imds0", ContainerPort: 8081,
				Bridges: []string{"docker0", "br-+"},
				CIDRs:   []netip.Prefix{netip.MustParsePrefix("172.30.0.10/32"), netip.MustParsePrefix("fd00:30::/64")},
				To:      []netip.AddrPort{netip.MustParseAddrPort("[fd00:30::1]:8080"), netip.MustParseAddrPort("172.30.0.1:8080")},
				Host:    true,
			},
		},
		{
			name: "address with the container endpoints",
			args: []string{"--mode", "address", "--ecs"},
			want: hostnet.Options{Mode: hostnet.Address, Interface: "imds0", ContainerPort: 8081, ECS: true},
		},
		{
			name: "dnat with the ECS endpoint",
			args: []string{"--mode", "dnat", "--bridge", "docker0", "--to", "172.17.0.1:8080", "--ecs-to", "172.17.0.1:8082"},
			want: hostnet.Options{Mode: hostnet.DNAT, Interface: "imds0", ContainerPort: 8081, Bridges: []string{"docker0"},
				To: []netip.AddrPort{netip.MustParseAddrPort("172.17.0.1:8080")}, ECSTo: netip.MustParseAddrPort("172.17.0.1:8082")},
		},
		{
			name: "address with the Pod Identity endpoint",
			args: []string{"--mode", "address", "--pod-identity"},
			want: hostnet.Options{Mode: hostnet.Address, Interface: "imds0", ContainerPort: 8081, PodIdentity: true},
		},
		{
			name: "dnat with the Pod Identity endpoint, one address per family",
			args: []string{"--mode", "dnat", "--bridge", "cni0", "--to", "10.244.0.1:8080", "--pod-identity-to", "10.244.0.1:8083,[fd00:244::1]:8083"},
			want: hostnet.Options{Mode: hostnet.DNAT, Interface: "imds0", ContainerPort: 8081, Bridges: []string{"cni0"},
				To:            []netip.AddrPort{netip.MustParseAddrPort("10.244.0.1:8080")},
				PodIdentityTo: []netip.AddrPort{netip.MustParseAddrPort("10.244.0.1:8083"), netip.MustParseAddrPort("[fd00:244::1]:8083")}},
		},
		{
			name: "docker-desktop",
			args: []string{"--mode", "docker-desktop", "--container-port", "9911"},
			want: hostnet.Options{Mode: hostnet.DockerDesktop, Interface: "imds0", ContainerPort: 9911},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSetupFlags(t, tc.args...)
			if !reflect.DeepEqual(s.opts, tc.want) {
				t.Errorf("options:\n%+v\nwant:\n%+v", s.opts, tc.want)
			}
		})
	}
	if s := mustSetupFlags(t, "--remove", "--apply"); !s.remove || !s.apply {
		t.Errorf("--remove --apply: %+v", s)
	}
}

// TestRunSetup drives the subcommand through run, as main does: printing
// needs no root and changes nothing.
func TestRunSetup(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"setup", "--mode", "dnat", "--bridge", "docker0", "--to", "172.17.0.1:8080", "--host"},
		func(string) string { return "" }, &out, &errOut)
	if err != nil {
		t.Fatalf("run setup: %v (stderr %q)", err, errOut.String())
	}
	for _, want := range []string{
		"iptables -w -t nat -I PREROUTING -i docker0 -d 169.254.169.254/32",
		"iptables -w -t nat -I OUTPUT -d 169.254.169.254/32",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("setup printed:\n%s\nwant a line with %q", out.String(), want)
		}
	}
	if err := run(t.Context(), []string{"setup", "--mode", "dnat"}, func(string) string { return "" }, &out, &errOut); err == nil {
		t.Error("setup --mode dnat without --to succeeded")
	}
}
