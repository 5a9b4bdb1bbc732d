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

// PodRules say how pods without a tenant annotation choose one.
type PodRules struct {
	// ServiceAccounts maps a service account, as "NAMESPACE/NAME", to the
	// tenant of its pods. Nil: no pod is chosen by its service account.
	ServiceAccounts map[string]string
	// RoleTemplate names the tenant copied for each role ARN that pods name
	// in kube2iam's iam.amazonaws.com/role annotation: the copy's
	// credentials take that role. Empty: the annotation is ignored.
	RoleTemplate string
}

// WithPods returns the configuration served while pods run in the
// namespaces ns: every tenant's Sources extended by the addresses of the
// pods that claim it. A pod claims, the first that applies:
//   - the tenant its imds-proxy.io/tenant annotation names;
//   - the tenant of its service account in rules.ServiceAccounts;
//   - a copy of the rules.RoleTemplate tenant whose credentials take the
//     role its iam.amazonaws.com/role annotation names, one copy per role,
//     named TEMPLATE/ACCOUNT/ROLE and served after the configured tenants.
//
// A pod whose namespace's imds-proxy.io/allowed-tenants annotation does not
// allow its claim (the tenant's name, or for a role the copy's name or the
// role ARN), whose namespace is not in ns (its restriction is unknown), or
// whose claim names no tenant, gets no address added and a warning. The
// template itself is never claimed by name. Addresses conflict as
// WithContainers documents; a pod's tenant comes only from that pod, so an
// address reused by a new pod never serves the old pod's tenant, and one
// held by two pods of different tenants serves neither.
func (c *Config) WithPods(rules PodRules, pods []Pod, ns []Namespace) (*Config, []string) {
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
	if rules.RoleTemplate != "" && !hasTemplate {
		warn("kubernetes.role_template %s is not a tenant: pods' %s annotations are ignored", rules.RoleTemplate, PodRoleAnnotation)
	} else if hasTemplate && c.Tenants[template].Role == nil {
		warn("kubernetes.role_template %s has no role: pods' %s annotations are ignored (give the tenant a role)", rules.RoleTemplate, PodRoleAnnotation)
		hasTemplate = false
	}

	var derived []*Tenant
	byRole := map[string]int{} // role ARN → tenant index
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
		al, known := allowed[p.Namespace]
		switch {
		case !known:
			warn("pod %s claims %s by %s, but namespace %s is unknown: its %s cannot be checked, no address added", who, cmp.Or(name, arn), how, p.Namespace, AllowedTenantsAnnotation)
			continue
		case arn != "":
			if !hasTemplate {
				continue // warned once above
			}
			t, err := roleTenant(c.Tenants[template], arn)
			if err != nil {
				warn("pod %s: %s %q: %v", who, PodRoleAnnotation, arn, err)
				continue
			}
			if !al.allows(t.Name) && !al.allows(arn) {
				warn("pod %s claims role %s, which namespace %s's %s does not allow: no address added", who, arn, p.Namespace, AllowedTenantsAnnotation)
				continue
			}
			i, ok := byRole[arn]
			if !ok {
				i = len(c.Tenants) + len(derived)
				derived = append(derived, t)
				byRole[arn] = i
			}
			claims = append(claims, addrClaim{who: who, tenant: i, addrs: p.Addrs})
		default:
			i, ok := index[name]
			switch {
			case !ok:
				warn("pod %s claims tenant %s by %s, which is not a tenant: no address added", who, name, how)
				continue
			case hasTemplate && i == template:
				warn("pod %s claims tenant %s by %s, which is kubernetes.role_template: a pod takes it only through %s, no address added", who, name, how, PodRoleAnnotation)
				continue
			case !al.allows(name):
				warn("pod %s claims tenant %s by %s, which namespace %s's %s does not allow: no address added", who, name, how, p.Namespace, AllowedTenantsAnnotation)
				continue
			}
			claims = append(claims, addrClaim{who: who, tenant: i, addrs: p.Addrs})
		}
	}
	return c.withClaims("pod", derived, claims, warnings)
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
	t.Sources, t.Containers = nil, nil
	r := *template.Role
	r.Rename(role)
	r.ARN = arn
	t.Role = &r
	t.Credentials.RoleARN = arn
	t.Credentials.PolicyARNs = slices.Clone(template.Credentials.PolicyARNs)
	t.Credentials.Tags = maps.Clone(template.Credentials.Tags)
	return &t, nil
}

// allowList is a namespace's imds-proxy.io/allowed-tenants; nil allows
// every claim.
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
		return true
	}
	for _, re := range al.patterns {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}
