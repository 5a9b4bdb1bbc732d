package tenants

import (
	"cmp"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Sources is a tenant's sources: addresses and CIDR blocks, containers
// named as {container: NAME} or {label: KEY=VALUE}, and Kubernetes pods
// named by their service account as {service_account: NAMESPACE/NAME}. A
// selector is kept as the string "container:NAME", "label:KEY=VALUE" or
// "service_account:NAMESPACE/NAME", so that a source list stays a
// []string to everything that builds one.
type Sources []string

// Prefixes of the strings that stand for container selectors in Sources.
const (
	containerPrefix      = "container:"
	labelPrefix          = "label:"
	serviceAccountPrefix = "service_account:"
)

// decodeNode reads a list whose items are strings or one-key maps. An item
// that is neither keeps its place as "", so that the others keep their
// indexes in validation's paths.
func (s *Sources) decodeNode(d *decoder, n *yaml.Node, path []any) bool {
	if n.Kind != yaml.SequenceNode {
		return d.mismatch(n, "a list", path)
	}
	out := make(Sources, len(n.Content))
	for i, item := range n.Content {
		item := follow(item)
		if item.Kind == yaml.ScalarNode {
			d.decode(item, reflect.ValueOf(&out[i]).Elem(), at(path, i))
			continue
		}
		d.note(item, at(path, i))
		if item.Kind != yaml.MappingNode {
			d.invalid(item, at(path, i), "%s, not %s", sourceForms, shown(item))
			continue
		}
		v, err := selectorSource(item)
		if err != nil {
			d.invalid(item, at(path, i), "%v", err)
			continue
		}
		out[i] = v
	}
	*s = out
	return true
}

// sourceForms is what a source may be, for the errors about one that is not.
const sourceForms = "a source is an address, a CIDR block, {container: NAME}, {label: KEY=VALUE} or {service_account: NAMESPACE/NAME}"

// selectorSource turns {container: NAME}, {label: KEY=VALUE} or
// {service_account: NAMESPACE/NAME} into its string form.
func selectorSource(n *yaml.Node) (string, error) {
	if len(n.Content) != 2 {
		return "", fmt.Errorf("%s: one key per source", sourceForms)
	}
	k, v := n.Content[0], n.Content[1]
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return "", fmt.Errorf("%s: %s needs a string value", sourceForms, k.Value)
	}
	switch k.Value {
	case "container":
		return containerPrefix + v.Value, nil
	case "label":
		return labelPrefix + v.Value, nil
	case "service_account":
		return serviceAccountPrefix + v.Value, nil
	}
	hint := ""
	for _, known := range []string{"container", "label", "service_account"} {
		if editDistance(k.Value, known) <= 2 {
			hint = fmt.Sprintf("; did you mean %q?", known)
		}
	}
	return "", fmt.Errorf("%s, not %q%s", sourceForms, k.Value, hint)
}

// ContainerSelector chooses running Docker containers by name or by label;
// exactly one of Name and LabelKey is set.
type ContainerSelector struct {
	Name       string
	LabelKey   string
	LabelValue string
}

// Matches reports whether c is a container the selector chooses.
func (s ContainerSelector) Matches(c Container) bool {
	if s.Name != "" {
		return c.Name == s.Name
	}
	v, ok := c.Labels[s.LabelKey]
	return ok && v == s.LabelValue
}

func (s ContainerSelector) String() string {
	if s.Name != "" {
		return "container " + s.Name
	}
	return "label " + s.LabelKey + "=" + s.LabelValue
}

var (
	// containerNamePattern is Docker's own rule for container names.
	containerNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	labelKeyPattern      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
)

// parseSelector reads the string form of a container selector; ok is false
// when s is not one (it is then an address or CIDR block).
func parseSelector(s string) (sel ContainerSelector, ok bool, err error) {
	switch {
	case strings.HasPrefix(s, containerPrefix):
		name := strings.TrimPrefix(strings.TrimPrefix(s, containerPrefix), "/")
		if !containerNamePattern.MatchString(name) {
			return sel, true, fmt.Errorf("container %q: a container name is letters, digits, '_', '.' and '-'", name)
		}
		return ContainerSelector{Name: name}, true, nil
	case strings.HasPrefix(s, labelPrefix):
		l := strings.TrimPrefix(s, labelPrefix)
		k, v, found := strings.Cut(l, "=")
		switch {
		case !found:
			return sel, true, fmt.Errorf("label %q: write KEY=VALUE, such as imds-proxy.tenant=web", l)
		case !labelKeyPattern.MatchString(k):
			return sel, true, fmt.Errorf("label %q: %q is not a label key", l, k)
		case strings.ContainsAny(v, "\r\n"):
			return sel, true, fmt.Errorf("label %q: a label value is one line", l)
		}
		return ContainerSelector{LabelKey: k, LabelValue: v}, true, nil
	}
	return sel, false, nil
}

// Container is a running Docker container as the tenants see it.
type Container struct {
	ID     string
	Name   string // without Docker's leading "/"
	Labels map[string]string
	Addrs  []netip.Addr // on every network it is attached to
}

// WithContainers returns the configuration served while cs are the running
// containers: every tenant's Sources extended by the addresses (/32, /128)
// of the containers its selectors choose. It never fails; each conflict is
// resolved the same way every time and described in the warnings:
//   - a container chosen by two tenants serves the first in the file;
//   - an address that is another tenant's static source stays that
//     tenant's;
//   - an address of two containers of different tenants serves neither;
//   - an address inside server.trusted_proxies is not trusted as a proxy:
//     a tenant's container would otherwise choose any tenant through
//     X-Forwarded-For (Build refuses the same overlap with a static
//     source; the resolver never trusts a tenant's source either).
//
// The tenants are copies, their Role included, so the result can be
// prepared (roles named) while c is served.
func (c *Config) WithContainers(cs []Container) (*Config, []string) {
	var warnings []string
	warn := func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }

	cs = slices.Clone(cs)
	slices.SortFunc(cs, func(a, b Container) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })

	owner := map[string]int{} // container ID → tenant index
	ix := indexContainers(c.Tenants, cs)
	var chosen []int
	for i, t := range c.Tenants {
		chosen = ix.chosen(t.Containers(), chosen[:0])
		for _, k := range chosen {
			ct := cs[k]
			if j, taken := owner[ct.ID]; taken {
				if j != i {
					warn("container %s is chosen by tenants %s and %s: served as %s, the first in the file", ct.Name, c.Tenants[j].Name, t.Name, c.Tenants[j].Name)
				}
				continue
			}
			owner[ct.ID] = i
		}
	}

	claims := make([]addrClaim, 0, len(cs))
	for _, ct := range cs {
		if i, ok := owner[ct.ID]; ok {
			claims = append(claims, addrClaim{who: ct.Name, tenant: i, addrs: ct.Addrs})
		}
	}
	return c.withClaims("container", nil, claims, warnings)
}

// addrClaim is a workload (a container, a pod) whose addresses are to be
// served as tenant: an index into the configured tenants, then the derived.
type addrClaim struct {
	who    string // the workload's name in warnings
	tenant int
	addrs  []netip.Addr
}

// withClaims returns c, followed by the derived tenants, with the claimed
// addresses (/32, /128) added to the claiming tenants' Sources; noun names
// the workloads in warnings. The conflicts are resolved as WithContainers
// documents, and each is appended to warnings.
func (c *Config) withClaims(noun string, derived []*Tenant, claims []addrClaim, warnings []string) (*Config, []string) {
	warn := func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }
	all := append(slices.Clip(c.Tenants), derived...)
	static := map[netip.Prefix]int{}
	for i, t := range c.Tenants {
		for _, p := range t.Sources {
			static[p] = i
		}
	}
	added := map[netip.Prefix]int{} // -1: ambiguous, served as no tenant
	trusted := c.Server.TrustedProxies
	for _, cl := range claims {
		i := cl.tenant
		for _, a := range cl.addrs {
			a = a.Unmap().WithZone("")
			if !a.IsValid() {
				continue
			}
			p := netip.PrefixFrom(a, a.BitLen())
			if _, seen := added[p]; !seen && containsAddr(trusted, a) {
				warn("%s %s's address %s is inside server.trusted_proxies: a tenant's %s is not trusted as a proxy, its X-Forwarded-For is ignored", noun, cl.who, a, noun)
				trusted = withoutAddr(trusted, a)
			}
			if j, ok := static[p]; ok {
				if j != i {
					warn("%s %s's address %s is a source of tenant %s: served as %s, not %s", noun, cl.who, a, all[j].Name, all[j].Name, all[i].Name)
				}
				continue
			}
			if j, ok := added[p]; ok && j != i {
				if j >= 0 {
					warn("address %s belongs to %ss of tenants %s and %s: served as neither", a, noun, all[j].Name, all[i].Name)
				}
				added[p] = -1
				continue
			}
			added[p] = i
		}
	}

	extra := make([][]netip.Prefix, len(all))
	for p, i := range added {
		if i >= 0 {
			extra[i] = append(extra[i], p)
		}
	}
	// The configured tenants keep their indexes: the service accounts'
	// index holds for the result too.
	out := &Config{Server: c.Server, Kubernetes: c.Kubernetes, Tenants: make([]*Tenant, len(all)),
		serviceAccounts: c.serviceAccounts, runningPods: c.runningPods}
	out.Server.TrustedProxies = trusted
	for i, t := range all {
		cp := *t
		if t.Role != nil {
			r := *t.Role
			cp.Role = &r
		}
		slices.SortFunc(extra[i], func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		cp.Sources = append(slices.Clip(t.Sources), extra[i]...)
		out.Tenants[i] = &cp
	}
	return out, warnings
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// withoutAddr returns ps less the address a: each block that contains a is
// replaced by the blocks that cover the rest of it (one per bit below its
// prefix length). ps itself is not changed.
func withoutAddr(ps []netip.Prefix, a netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if !p.Contains(a) {
			out = append(out, p)
			continue
		}
		for bits := p.Bits(); bits < a.BitLen(); bits++ {
			// The half of a's block at bits+1 that does not hold a.
			b := a.AsSlice()
			b[bits/8] ^= 0x80 >> (bits % 8)
			sibling, _ := netip.AddrFromSlice(b)
			q, _ := sibling.Prefix(bits + 1)
			out = append(out, q)
		}
	}
	return out
}

// containerIndex finds the containers a selector chooses without looking
// at every container: a Docker event at 10,000 tenants, each naming one of
// 10,000 containers, was 10⁸ comparisons.
type containerIndex struct {
	byName  map[string][]int // name → indexes into the containers
	byLabel map[[2]string][]int
}

// indexContainers indexes cs by name, and by the labels that some
// selector of tenants asks for (a container's other labels are never
// looked at).
func indexContainers(tenants []*Tenant, cs []Container) containerIndex {
	ix := containerIndex{byName: make(map[string][]int, len(cs))}
	keys := map[string]bool{}
	for _, t := range tenants {
		for _, s := range t.Containers() {
			if s.Name == "" {
				keys[s.LabelKey] = true
			}
		}
	}
	if len(keys) > 0 {
		ix.byLabel = map[[2]string][]int{}
	}
	for k, ct := range cs {
		ix.byName[ct.Name] = append(ix.byName[ct.Name], k)
		for key := range keys {
			if v, ok := ct.Labels[key]; ok {
				ix.byLabel[[2]string{key, v}] = append(ix.byLabel[[2]string{key, v}], k)
			}
		}
	}
	return ix
}

// chosen appends to into the indexes of the containers any of sels
// chooses, each once and in the containers' order.
func (ix containerIndex) chosen(sels []ContainerSelector, into []int) []int {
	for _, s := range sels {
		if s.Name != "" {
			into = append(into, ix.byName[s.Name]...)
		} else {
			into = append(into, ix.byLabel[[2]string{s.LabelKey, s.LabelValue}]...)
		}
	}
	if len(sels) > 1 {
		slices.Sort(into)
		into = slices.Compact(into)
	}
	return into
}

// NamesContainers reports whether some tenant of c chooses containers, which
// is when the Docker Engine API is watched.
func (c *Config) NamesContainers() bool {
	for _, t := range c.Tenants {
		if len(t.Containers()) > 0 {
			return true
		}
	}
	return false
}

// DefaultDockerSocket is where the Docker Engine API listens on Linux.
const DefaultDockerSocket = "/var/run/docker.sock"

// ParseDockerSocket reads a Docker socket as server.docker_socket and
// DOCKER_HOST give it: an absolute path or unix:///path. Only unix sockets
// are supported: the Engine API over TCP would need TLS client certificates.
func ParseDockerSocket(s string) (string, error) {
	path := strings.TrimPrefix(s, "unix://")
	if !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("%q: give the Docker socket as an absolute path or unix:///path, such as %s", s, DefaultDockerSocket)
	}
	return path, nil
}
