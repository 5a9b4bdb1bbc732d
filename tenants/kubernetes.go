package tenants

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Kubernetes mode: the kubernetes: block, and the {service_account:
// NAMESPACE/NAME} sources that choose pods (and Pod Identity tokens) by
// the service account they run as.

var (
	// dnsLabelPattern is a namespace's name (RFC 1123 label).
	dnsLabelPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// dnsSubdomainPattern is a service account's name (RFC 1123
	// subdomain; its 253-character bound is checked apart).
	dnsSubdomainPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
)

// parseServiceAccount reads the string form of a service account source;
// ok is false when s is not one.
func parseServiceAccount(s string) (sa string, ok bool, err error) {
	v, ok := strings.CutPrefix(s, serviceAccountPrefix)
	if !ok {
		return "", false, nil
	}
	ns, name, found := strings.Cut(v, "/")
	switch {
	case !found:
		return v, true, fmt.Errorf("service_account %q: write NAMESPACE/NAME, such as team-a/app", v)
	case !dnsLabelPattern.MatchString(ns):
		return v, true, fmt.Errorf("service_account %q: %q is not a namespace name (lower-case letters, digits and '-', at most 63)", v, ns)
	case len(name) > 253 || !dnsSubdomainPattern.MatchString(name):
		return v, true, fmt.Errorf("service_account %q: %q is not a service account name (lower-case letters, digits, '-' and '.')", v, name)
	}
	return v, true, nil
}

// buildKubernetes is the kubernetes: block with its defaults; nil when the
// file has none.
func buildKubernetes(kc *KubernetesConfig) *Kubernetes {
	if kc == nil {
		return nil
	}
	k := &Kubernetes{Kubeconfig: kc.Kubeconfig, NodeName: kc.NodeName, NamespaceRestrictions: true, RoleTemplate: kc.RoleTemplate}
	if kc.NamespaceRestrictions != nil {
		k.NamespaceRestrictions = *kc.NamespaceRestrictions
	}
	return k
}

// checkRoleTemplate refuses a role_template that names no tenant, or one
// without a role: its copies would have no credentials to take the role
// with. names maps the tenants' names to their indexes.
func checkRoleTemplate(cfg *Config, names map[string]int, el errorList) {
	k := cfg.Kubernetes
	if k == nil || k.RoleTemplate == "" {
		return
	}
	path := []any{"kubernetes", "role_template"}
	i, ok := names[k.RoleTemplate]
	switch {
	case !ok:
		var known []string
		for name := range names {
			if editDistance(name, k.RoleTemplate) <= 2 {
				known = append(known, name)
			}
		}
		hint := ""
		if len(known) > 0 {
			slices.Sort(known)
			hint = "; did you mean " + orList(known) + "?"
		}
		el.add(path, "%q is not a tenant: name the tenant whose credentials (its profile) each role's copy uses%s", k.RoleTemplate, hint)
	case i < len(cfg.Tenants) && cfg.Tenants[i].Role == nil:
		el.add(path, "tenant %q has no credentials: give it credentials.profile, which each role's copy takes the role with", k.RoleTemplate)
	case i < len(cfg.Tenants) && len(cfg.Tenants[i].ServiceAccounts()) > 0:
		el.add(path, "tenant %q lists service accounts: a role template is served only through %s, as its copies", k.RoleTemplate, PodRoleAnnotation)
	}
}

// ServiceAccountTenant is the tenant whose sources list the service account
// NAMESPACE/NAME, nil when none does: how pods running as it, and EKS Pod
// Identity tokens issued to it, find their tenant.
func (c *Config) ServiceAccountTenant(namespace, name string) *Tenant {
	key := namespace + "/" + name
	if c.serviceAccounts != nil {
		if i, ok := c.serviceAccounts[key]; ok && i < len(c.Tenants) {
			return c.Tenants[i]
		}
		return nil
	}
	for _, t := range c.Tenants {
		for _, sa := range t.ServiceAccounts() {
			if sa == key {
				return t
			}
		}
	}
	return nil
}

// PodRules are the rules the configuration gives WithPods.
func (c *Config) PodRules() PodRules {
	r := PodRules{}
	if k := c.Kubernetes; k != nil {
		r.RoleTemplate, r.NamespaceRestrictions = k.RoleTemplate, k.NamespaceRestrictions
	}
	for _, t := range c.Tenants {
		for _, sa := range t.ServiceAccounts() {
			if r.ServiceAccounts == nil {
				r.ServiceAccounts = map[string]string{}
			}
			r.ServiceAccounts[sa] = t.Name
		}
	}
	return r
}
