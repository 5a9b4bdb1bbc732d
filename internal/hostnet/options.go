package hostnet

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Options say what to set up. Each field names the flag of `imds-proxy
// setup` that sets it, and Validate's messages name those flags: that is
// where users give them.
type Options struct {
	// Mode (--mode) is how packets reach the proxy. Required: the zero Mode
	// is invalid.
	Mode Mode

	// Interface (--interface) holds the addresses in Address mode. It is
	// created as a dummy interface if absent; one that exists, such as lo,
	// is used as it is. If empty, "imds0".
	Interface string
	// IPv4Only (--ipv6=false) leaves fd00:ec2::254/128 out in Address
	// mode. If false, both addresses.
	IPv4Only bool

	// Bridges (--bridge) are the interfaces whose packets DNAT mode
	// redirects; a trailing + matches every name with that prefix, as in
	// iptables. If nil, none.
	Bridges []string
	// CIDRs (--cidr) are the source blocks whose packets DNAT mode
	// redirects. If nil, none.
	CIDRs []netip.Prefix
	// To (--to) is the proxy's listen address, at most one per IP version.
	// DNAT mode needs one, and one of the version of each of CIDRs. If nil,
	// none.
	To []netip.AddrPort
	// Host (--host) also redirects this host's own processes (the OUTPUT
	// chain) in DNAT mode. If false, only Bridges and CIDRs.
	Host bool

	// ECS (--ecs) also puts the container credentials endpoints'
	// addresses, 169.254.170.2 and 169.254.170.23, on the interface in
	// Address mode, for a proxy whose server.ecs_listen is
	// 169.254.170.2:80. If false, only the IMDS addresses.
	ECS bool
	// ECSTo (--ecs-to) is the proxy's server.ecs_listen address: DNAT mode
	// also redirects tcp to 169.254.170.2:80 and 169.254.170.23:80 there,
	// from the same bridges, IPv4 blocks and host. If invalid (zero), no
	// such rules.
	ECSTo netip.AddrPort

	// PodIdentity (--pod-identity) also puts EKS Pod Identity's addresses,
	// 169.254.170.23 and (unless IPv4Only) fd00:ec2::23, on the interface
	// in Address mode, for a proxy whose server.pod_identity_listen is
	// 169.254.170.23:80 and [fd00:ec2::23]:80. If false, not unless ECS
	// adds 169.254.170.23.
	PodIdentity bool
	// PodIdentityTo (--pod-identity-to) are the proxy's
	// server.pod_identity_listen addresses, at most one per IP version:
	// DNAT mode also redirects tcp to 169.254.170.23:80 (to the IPv4 one)
	// and [fd00:ec2::23]:80 (to the IPv6 one) there, from the same
	// bridges, blocks of that version and host. 169.254.170.23 then goes
	// here, not to ECSTo. If nil, no such rules.
	PodIdentityTo []netip.AddrPort

	// ContainerPort (--container-port) is the port of the container
	// credentials endpoint in DockerDesktop's recipe. If zero, 8081.
	ContainerPort uint16
}

func (o Options) withDefaults() Options {
	if o.Interface == "" {
		o.Interface = "imds0"
	}
	if o.ContainerPort == 0 {
		o.ContainerPort = 8081
	}
	// An IPv4-mapped address is IPv4: its rule belongs to iptables, not
	// ip6tables.
	to := make([]netip.AddrPort, len(o.To))
	for i, ap := range o.To {
		to[i] = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	o.To = to
	pit := make([]netip.AddrPort, len(o.PodIdentityTo))
	for i, ap := range o.PodIdentityTo {
		pit[i] = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	o.PodIdentityTo = pit
	if o.ECSTo.IsValid() {
		o.ECSTo = netip.AddrPortFrom(o.ECSTo.Addr().Unmap(), o.ECSTo.Port())
	}
	return o
}

// Validate reports o's problems, one a line: those of the fields
// themselves first and, once they are well formed, what o.Mode needs.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	for _, b := range o.Bridges {
		if !ValidInterface(b) {
			errs = append(errs, fmt.Errorf("--bridge %q is not an interface name", b))
		}
	}
	for i, to := range o.To {
		for _, prev := range o.To[:i] {
			if prev.Addr().Is4() == to.Addr().Is4() {
				errs = append(errs, fmt.Errorf("--to %s and %s: give at most one address per IP version", prev, to))
			}
		}
	}
	for i, to := range o.PodIdentityTo {
		for _, prev := range o.PodIdentityTo[:i] {
			if prev.Addr().Is4() == to.Addr().Is4() {
				errs = append(errs, fmt.Errorf("--pod-identity-to %s and %s: give at most one address per IP version", prev, to))
			}
		}
	}
	if len(errs) > 0 {
		// What the mode needs of these fields can wait until they are
		// well formed.
		return errors.Join(errs...)
	}
	switch o.Mode {
	case Address:
		if !ValidInterface(o.Interface) || strings.HasSuffix(o.Interface, "+") {
			return fmt.Errorf("--interface %q is not an interface name", o.Interface)
		}
	case DNAT:
		return errors.Join(o.checkDNAT()...)
	case DockerDesktop:
	default:
		return fmt.Errorf("--mode %q: use address, dnat or docker-desktop", o.Mode)
	}
	return nil
}

func (o Options) checkDNAT() []error {
	var errs []error
	if len(o.To) == 0 {
		errs = append(errs, errors.New("--mode dnat: --to is required (the proxy's listen address, such as 172.17.0.1:8080)"))
	}
	if len(o.Bridges) == 0 && len(o.CIDRs) == 0 && !o.Host {
		errs = append(errs, errors.New("--mode dnat: say whose packets to redirect: --bridge, --cidr or --host"))
	}
	for _, to := range o.To {
		// Linux drops packets from other interfaces that are DNATed to
		// 127.0.0.0/8 or ::1 unless route_localnet is set: bind the proxy
		// to the bridge's address instead.
		if to.Addr().IsLoopback() && (len(o.Bridges) > 0 || len(o.CIDRs) > 0) {
			errs = append(errs, fmt.Errorf("--to %s: packets from bridges cannot be redirected to loopback; listen on the bridge's own address (ip -br addr show docker0)", to))
		}
		if to.Port() == 0 {
			errs = append(errs, fmt.Errorf("--to %s: port 0", to))
		}
	}
	if o.ECSTo.IsValid() {
		switch {
		case !o.ECSTo.Addr().Is4():
			errs = append(errs, fmt.Errorf("--ecs-to %s: the ECS endpoint is IPv4 only; give an IPv4 listen address", o.ECSTo))
		case o.ECSTo.Port() == 0:
			errs = append(errs, fmt.Errorf("--ecs-to %s: port 0", o.ECSTo))
		case o.ECSTo.Addr().IsLoopback() && (len(o.Bridges) > 0 || len(o.CIDRs) > 0):
			errs = append(errs, fmt.Errorf("--ecs-to %s: packets from bridges cannot be redirected to loopback; listen on the bridge's own address (ip -br addr show docker0)", o.ECSTo))
		}
	}
	for _, to := range o.PodIdentityTo {
		switch {
		case to.Port() == 0:
			errs = append(errs, fmt.Errorf("--pod-identity-to %s: port 0", to))
		case to.Addr().IsLoopback() && (len(o.Bridges) > 0 || len(o.CIDRs) > 0):
			errs = append(errs, fmt.Errorf("--pod-identity-to %s: packets from bridges cannot be redirected to loopback; listen on the bridge's own address (ip -br addr show docker0)", to))
		}
	}
	for _, c := range o.CIDRs {
		if _, ok := o.target(c.Addr().Is4()); !ok {
			errs = append(errs, fmt.Errorf("--cidr %s: no --to address of its IP version", c))
		}
	}
	return errs
}

// target is the To address of one IP version.
func (o Options) target(v4 bool) (netip.AddrPort, bool) {
	for _, to := range o.To {
		if to.Addr().Is4() == v4 {
			return to, true
		}
	}
	return netip.AddrPort{}, false
}

// endpoints are the IMDS addresses Address mode puts on the interface.
func (o Options) endpoints() []netip.Prefix {
	ps := []netip.Prefix{netip.PrefixFrom(endpoint4(), 32)}
	if !o.IPv4Only {
		ps = append(ps, netip.PrefixFrom(endpoint6(), 128))
	}
	if o.ECS {
		for _, a := range ecsEndpoints() {
			ps = append(ps, netip.PrefixFrom(a, 32))
		}
	}
	if o.PodIdentity {
		for _, a := range podIdentityEndpoints() {
			if p := netip.PrefixFrom(a, a.BitLen()); (a.Is4() || !o.IPv4Only) && !slices.Contains(ps, p) {
				ps = append(ps, p)
			}
		}
	}
	return ps
}

// ValidInterface reports whether iptables accepts pattern as an interface
// match: a name Linux accepts — at most 15 bytes of letters, digits and
// _.@:- — or the start of one followed by +, which matches every interface
// it begins.
func ValidInterface(pattern string) bool {
	if len(pattern) > 15 {
		return false
	}
	name, wildcard := strings.CutSuffix(pattern, "+")
	if name == "" {
		return wildcard
	}
	return strings.Trim(name, interfaceBytes) == ""
}

const interfaceBytes = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@:-"
