package tenants

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Annotations that choose a pod's tenant, and restrict a namespace's choice.
const (
	// PodTenantAnnotation names the pod's tenant.
	PodTenantAnnotation = "imds-proxy.io/tenant"
	// PodRoleAnnotation is kube2iam's: the ARN of the role the pod takes,
	// served through the role template tenant (PodRules.RoleTemplate).
	PodRoleAnnotation = "iam.amazonaws.com/role"
	// AllowedTenantsAnnotation, on a namespace, lists the tenants its pods
	// may claim: comma-separated names, role ARNs or globs ('*' matches any
	// run of characters, '/' included). Present but empty: none.
	AllowedTenantsAnnotation = "imds-proxy.io/allowed-tenants"
)

// Pod is a running Kubernetes pod as the tenants see it.
type Pod struct {
	UID            string
	Namespace      string
	Name           string
	Hostname       string // spec.hostname; empty: the pod's name, as Kubernetes names it
	ServiceAccount string
	Annotations    map[string]string
	Addrs          []netip.Addr
}

// Namespace is a Kubernetes namespace as the tenants see it: only its
// annotations matter.
type Namespace struct {
	Name        string
	Annotations map[string]string
}

// PodRules say how pods choose their tenant: Config.PodRules reads them
// from the kubernetes: block and the tenants' service_account sources.
type PodRules struct {
	// ServiceAccounts maps a service account, as "NAMESPACE/NAME", to the
	// tenant of its pods. Nil: no pod is chosen by its service account.
	ServiceAccounts map[string]string
	// RoleTemplate names the tenant copied for each role ARN that pods name
	// in kube2iam's iam.amazonaws.com/role annotation: the copy's
	// credentials take that role. Empty: the annotation is ignored.
	RoleTemplate string
	// NamespaceRestrictions: a claim by annotation needs the pod's
	// namespace's imds-proxy.io/allowed-tenants to allow it, and a
	// namespace without that annotation allows none.
	NamespaceRestrictions bool
}

// WithPods returns the configuration served while pods run in the
// namespaces ns, by the rules of c (PodRules). A pod claims, the first
// that applies:
//   - the tenant its imds-proxy.io/tenant annotation names;
//   - the tenant whose sources list its service account;
//   - a copy of the kubernetes.role_template tenant whose credentials take
//     the role its iam.amazonaws.com/role annotation names, one copy per
//     role, named TEMPLATE/ACCOUNT/ROLE.
//
// With namespace restrictions, a claim by annotation (either) counts only
// if the pod's namespace's imds-proxy.io/allowed-tenants allows it (the
// tenant's name, or for a role the copy's name or the role ARN); a claim
// by service account is the configuration's own and always counts.
//
// Each pod is its own instance: a copy of its tenant named
// TENANT@NAMESPACE/POD, served after the configured tenants, whose
// instance id, reservation, network interface, hostname and addresses are
// the pod's (PodInstance), and whose credentials are its tenant's, so
// that every pod of a tenant shares one credential entry. A pod of a
// tenant that mirrors a live instance is that instance: its addresses are
// added to the tenant's own sources.
//
// A pod whose claim is refused or names no tenant gets no address, and a
// warning that begins "pod NAMESPACE/NAME": its requests are refused
// (403). Addresses conflict as WithContainers documents; a pod's tenant
// comes only from that pod, so an address reused by a new pod never
// serves the old pod's tenant, and one held by two pods serves neither.
func (c *Config) WithPods(pods []Pod, ns []Namespace) (*Config, []string) {
	rules := c.PodRules()
	var warnings []string
	warn := func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }

	pods = slices.Clone(pods)
	slices.SortFunc(pods, func(a, b Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.UID, b.UID))
	})
	allowed := map[string]*allowList{}
	for _, n := range ns {
		allowed[n.Name] = parseAllowList(n.Annotations)
	}
	index := map[string]int{}
	for i, t := range c.Tenants {
		index[t.Name] = i
	}
	template, hasTemplate := index[rules.RoleTemplate]
	hasTemplate = hasTemplate && c.Tenants[template].Role != nil // Build refuses a template without one

	var derived []*Tenant
	byRole := map[string]*Tenant{} // role ARN → the template's copy
	sharedRole := map[string]int{} // role ARN → index of its copy, when mirrored
	var claims []addrClaim
	for _, p := range pods {
		if len(p.Addrs) == 0 {
			continue
		}
		who := p.Namespace + "/" + p.Name
		name, arn, how := podClaim(rules, p)
		if how == "" {
			continue
		}
		byAnnotation := strings.HasPrefix(how, "annotation")
		var base *Tenant
		i := -1 // base's index when the pod's addresses go to base itself
		switch {
		case arn != "":
			if !hasTemplate {
				continue
			}
			t, ok := byRole[arn]
			if !ok {
				var err error
				if t, err = roleTenant(c.Tenants[template], arn); err != nil {
					warn("pod %s: %s %q: %v: its requests are refused", who, PodRoleAnnotation, arn, err)
					continue
				}
				byRole[arn] = t
			}
			if why := rules.refused(allowed, p.Namespace, t.Name, arn); why != "" {
				warn("pod %s claims role %s by %s, %s: its requests are refused", who, arn, how, why)
				continue
			}
			base = t
			if t.Mirror != nil {
				j, ok := sharedRole[arn]
				if !ok {
					j = len(c.Tenants) + len(derived)
					derived = append(derived, t)
					sharedRole[arn] = j
				}
				i = j
			}
		default:
			j, ok := index[name]
			switch {
			case !ok:
				warn("pod %s claims tenant %s by %s, which is not a tenant: its requests are refused", who, name, how)
				continue
			case hasTemplate && j == template:
				warn("pod %s claims tenant %s by %s, which is kubernetes.role_template: a pod takes it only through %s; its requests are refused", who, name, how, PodRoleAnnotation)
				continue
			}
			if byAnnotation {
				if why := rules.refused(allowed, p.Namespace, name); why != "" {
					warn("pod %s claims tenant %s by %s, %s: its requests are refused", who, name, how, why)
					continue
				}
			}
			base = c.Tenants[j]
			if base.Mirror != nil {
				i = j
			}
		}
		if i < 0 {
			i = len(c.Tenants) + len(derived)
			derived = append(derived, podTenant(base, p))
		}
		claims = append(claims, addrClaim{who: who, tenant: i, addrs: p.Addrs})
	}
	out, warnings := c.withClaims("pod", derived, claims, warnings)
	out.runningPods = make(map[string]struct{}, len(pods))
	for _, p := range pods {
		if len(p.Addrs) > 0 && p.UID != "" {
			out.runningPods[p.UID] = struct{}{}
		}
	}
	return out, warnings
}

// PodRunning reports whether the configuration follows pods (it came from
// WithPods) and, if so, whether the pod with that UID is one of them,
// holding an address: what the Pod Identity endpoint asks of a token bound
// to a pod, so that the token of a deleted pod, or of a pod of another
// node, is worth nothing here.
func (c *Config) PodRunning(uid string) (following, running bool) {
	if c.runningPods == nil {
		return false, false
	}
	_, running = c.runningPods[uid]
	return true, running
}

// refused says why the namespace ns may not claim any of names by
// annotation, "" when it may.
func (r PodRules) refused(allowed map[string]*allowList, ns string, names ...string) string {
	if !r.NamespaceRestrictions {
		return ""
	}
	al, known := allowed[ns]
	switch {
	case !known:
		return fmt.Sprintf("but namespace %s is not known (yet): its %s cannot be checked", ns, AllowedTenantsAnnotation)
	case al == nil:
		return fmt.Sprintf("but namespace %s has no %s annotation, and allows no claim by annotation without one (kubernetes.namespace_restrictions)", ns, AllowedTenantsAnnotation)
	}
	for _, n := range names {
		if al.allows(n) {
			return ""
		}
	}
	return fmt.Sprintf("which namespace %s's %s does not allow", ns, AllowedTenantsAnnotation)
}

// podTenant is the copy of base that serves the pod p as its own
// instance. Its credentials are base's, so that it shares their entry;
// the container credentials token stays base's alone.
func podTenant(base *Tenant, p Pod) *Tenant {
	t := *base
	t.Name = base.Name + "@" + p.Namespace + "/" + p.Name
	t.Sources = nil
	// base's extras are shared as they are unless they hold what stays base's.
	if x := t.Extras; x != nil && (x.Containers != nil || x.ServiceAccounts != nil || x.ContainerToken != "" || x.ContainerAnySource) {
		x = x.clone()
		x.Containers, x.ServiceAccounts = nil, nil
		x.ContainerToken, x.ContainerAnySource = "", false
		t.Extras = x.orNil()
	}
	t.Instance = PodInstance(base.Instance, p)
	return &t
}

// PodInstance is the instance in as the pod p: its id, reservation and
// primary network interface (MAC, id) derived from the pod's UID, so that
// every pod is another instance and the same pod the same one; its
// hostname the pod's; its private IPv4 and IPv6 addresses the pod's.
func PodInstance(in Instance, p Pod) Instance {
	in.ID = "i-" + stableID("pod", p.UID)
	in.ReservationID = "r-" + stableID("reservation", "pod", p.UID)
	host := p.Hostname
	if host == "" {
		host = truncate(p.Name, 63) // as the kubelet names a pod's host
	}
	in.LocalHostname = host
	if len(in.Interfaces) == 0 {
		return in
	}
	ifcs := slices.Clone(in.Interfaces) // may be shared: replaced, never written into
	pri := ifcs[0]
	pri.MAC = stableMAC("pod/" + p.UID)
	pri.ID = "eni-" + stableID("eni", "pod", p.UID)
	pri.LocalHostname = host
	var v4 netip.Addr
	var v6 []netip.Addr
	for _, a := range p.Addrs {
		switch a = a.Unmap(); {
		case a.Is4() && !v4.IsValid():
			v4 = a
		case a.Is6():
			v6 = append(v6, a)
		}
	}
	if v4.IsValid() {
		pri.LocalIPv4s = []netip.Addr{v4}
		if len(pri.IPv4Associations) > 0 {
			assoc := make(map[netip.Addr]netip.Addr, len(pri.IPv4Associations))
			for public := range pri.IPv4Associations {
				assoc[public] = v4
			}
			pri.IPv4Associations = assoc
		}
	}
	pri.IPv6s = v6
	ifcs[0] = pri
	in.Interfaces = ifcs
	return in
}

// podClaim is what p claims: a tenant's name or a role ARN, and how it
// claims it ("" when it claims nothing).
func podClaim(rules PodRules, p Pod) (name, arn, how string) {
	if v, ok := p.Annotations[PodTenantAnnotation]; ok {
		return strings.TrimSpace(v), "", "annotation " + PodTenantAnnotation
	}
	if t, ok := rules.ServiceAccounts[p.Namespace+"/"+p.ServiceAccount]; ok && p.ServiceAccount != "" {
		return t, "", "service account " + p.ServiceAccount
	}
	if v, ok := p.Annotations[PodRoleAnnotation]; ok && rules.RoleTemplate != "" {
		return "", strings.TrimSpace(v), "annotation " + PodRoleAnnotation
	}
	return "", "", ""
}

// roleTenant is the template's copy that serves the role arn.
func roleTenant(template *Tenant, arn string) (*Tenant, error) {
	m := roleARNPattern.FindStringSubmatch(arn)
	if m == nil {
		return nil, errors.New("not a role ARN, such as arn:aws:iam::123456789012:role/NAME (kube2iam's bare role names need a full ARN here)")
	}
	account, role := m[1], m[2]
	t := *template
	t.Name = template.Name + "/" + account + "/" + role
	t.Sources = nil
	if x := t.Extras; x != nil && x.Containers != nil { // else shared as it is
		x = x.clone()
		x.Containers = nil
		t.Extras = x.orNil()
	}
	r := *template.Role
	r.Rename(role)
	r.ARN = arn
	t.Role = &r
	t.Credentials.RoleARN = arn
	t.Credentials.PolicyARNs = slices.Clone(template.Credentials.PolicyARNs)
	t.Credentials.Tags = maps.Clone(template.Credentials.Tags)
	return &t, nil
}

// allowList is a namespace's imds-proxy.io/allowed-tenants; nil: the
// namespace has none.
type allowList struct {
	patterns []*regexp.Regexp
}

func parseAllowList(annotations map[string]string) *allowList {
	v, ok := annotations[AllowedTenantsAnnotation]
	if !ok {
		return nil
	}
	al := &allowList{}
	for g := range strings.SplitSeq(v, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		re := "^" + strings.ReplaceAll(regexp.QuoteMeta(g), `\*`, ".*") + "$"
		al.patterns = append(al.patterns, regexp.MustCompile(re))
	}
	return al
}

func (al *allowList) allows(name string) bool {
	if al == nil {
		return false
	}
	for _, re := range al.patterns {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}
