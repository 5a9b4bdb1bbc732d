// Package hostnet owns the host networking of `imds-proxy setup`: planning,
// applying and removing the addresses, routes and iptables rules that bring
// clients' packets for the IMDS endpoint, 169.254.169.254:80 (and
// [fd00:ec2::254]:80), to the proxy — and, for Docker Desktop, where no rule
// on this host can reach the containers, the recipe of the container
// credentials endpoint instead.
//
// Everything it adds carries a mark, so that Remove takes away exactly that
// and nothing else:
//   - iptables rules: `-m comment --comment imds-proxy` (Tag);
//   - addresses: metric AddrMetric (IPv6 addresses have no labels, and an
//     address's metric only orders its own prefix route);
//   - an interface it created: the alias (ifalias) Tag.
//
// Commands run through a Runner, never a shell, and each is printed before
// it runs, so the output is a script a user can read or replay.
package hostnet

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

const (
	// Tag is the iptables comment of the rules setup adds and the alias of
	// the interfaces it creates.
	Tag = "imds-proxy"
	// AddrMetric (0xec2) is the metric of the addresses setup adds.
	AddrMetric = 3778
)

// ecsEndpoints are the addresses of the container credentials endpoints as
// clients dial them: ECS's 169.254.170.2 (AWS_CONTAINER_CREDENTIALS_
// RELATIVE_URI) and EKS Pod Identity's 169.254.170.23.
func ecsEndpoints() []netip.Addr {
	return []netip.Addr{netip.AddrFrom4([4]byte{169, 254, 170, 2}), netip.AddrFrom4([4]byte{169, 254, 170, 23})}
}

// podIdentityEndpoints are EKS Pod Identity's addresses as clients dial
// them (AWS_CONTAINER_CREDENTIALS_FULL_URI): 169.254.170.23 and
// fd00:ec2::23.
func podIdentityEndpoints() []netip.Addr {
	return []netip.Addr{netip.AddrFrom4([4]byte{169, 254, 170, 23}), netip.AddrFrom16([16]byte{0: 0xfd, 2: 0x0e, 3: 0xc2, 15: 0x23})}
}

// endpoint4 and endpoint6 are the IMDS addresses as clients dial them.
func endpoint4() netip.Addr { return netip.AddrFrom4([4]byte{169, 254, 169, 254}) }

func endpoint6() netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfd, 2: 0x0e, 3: 0xc2, 14: 0x02, 15: 0x54}) // fd00:ec2::254
}

// Mode is how clients' packets reach the proxy.
type Mode string

const (
	// Address puts the IMDS addresses on an interface of this host, for a
	// proxy that listens on them.
	Address Mode = "address"
	// DNAT redirects tcp to the IMDS addresses, port 80, to the proxy's
	// listen address with iptables.
	DNAT Mode = "dnat"
	// DockerDesktop changes nothing: containers run in a VM that no rule on
	// this host reaches, so Print gives the container credentials recipe.
	DockerDesktop Mode = "docker-desktop"
)

// Plan returns the commands that bring o about on a host that has none of
// it yet, in the order Apply runs them; DockerDesktop has none. An
// address-mode interface that exists is used as it is, so Plan looks it up
// (and changes nothing). o must be valid (see Options.Validate).
func Plan(o Options) []Command {
	o = o.withDefaults()
	switch o.Mode {
	case Address:
		var links []link
		if interfaceExists(o.Interface) {
			links = []link{{Name: o.Interface}}
		}
		todo, _ := addressPlan(o, links)
		return todo
	case DNAT:
		var cmds []Command
		for _, rule := range dnatRules(o) {
			cmds = append(cmds, rule.command("-I"))
		}
		return cmds
	}
	return nil
}

// Print writes o as a script without running anything: comments that say
// what it does and how to apply it, then Plan's commands; for DockerDesktop,
// the recipe.
func Print(o Options, w io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	o = o.withDefaults()
	switch o.Mode {
	case DockerDesktop:
		_, err := fmt.Fprintf(w, dockerDesktopRecipe, o.ContainerPort)
		return err
	case Address:
		listen := "169.254.169.254:80"
		if !o.IPv4Only {
			listen += " and [fd00:ec2::254]:80"
		}
		fmt.Fprintf(w, "# address mode: %s on %s, for a proxy listening on %s.\n", joinAnd(o.endpoints()), o.Interface, listen)
		fmt.Fprintln(w, "# Run with --apply to perform what is not yet in effect; --remove undoes it.")
	case DNAT:
		fmt.Fprintf(w, "# dnat mode: tcp to 169.254.169.254:80 goes to %s.\n", joinAnd(o.To))
		fmt.Fprintln(w, "# Run with --apply to add the rules not yet present; --remove deletes them.")
	}
	for _, c := range Plan(o) {
		fmt.Fprintln(w, c)
	}
	return nil
}

// Apply runs the commands of o that are not yet in effect, writing each to
// w before it runs and noting those already in effect: a second Apply
// changes nothing.
func Apply(o Options, r Runner, w io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	o = o.withDefaults()
	switch o.Mode {
	case Address:
		return applyAddresses(o, r, w)
	case DNAT:
		return applyDNAT(o, r, w)
	}
	return errors.New("docker-desktop mode changes nothing on this host: there is nothing to apply")
}

// joinAnd lists values as "a and b".
func joinAnd[T fmt.Stringer](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, " and ")
}
