package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/imds-proxy/imds-proxy/resolver"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// errNoTenant is explain's verdict on an address no tenant lists: the
// explanation is on stdout, the exit status says it.
var errNoTenant = errors.New("no tenant lists it")

// runExplain says which tenant an address is served as, and why, from the
// configuration alone: the same resolver the server builds, asked for
// every source that contains the address rather than only the winner.
func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	config := new(string)
	fs := explainFlagSet(config)
	if err := parseArgs(fs, args, stdout); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return err
	}
	// Flags may follow the address too: `explain 10.0.0.5 --config f`.
	var rest []string
	for fs.NArg() > 0 {
		rest = append(rest, fs.Arg(0))
		if err := parseArgs(fs, fs.Args()[1:], stdout); err != nil {
			if errors.Is(err, errHelpShown) {
				return nil
			}
			return err
		}
	}
	if *config == "" || len(rest) != 1 {
		return usagef("explain: want --config FILE and one address (imds-proxy help explain)")
	}
	addr, err := parseExplainAddr(rest[0])
	if err != nil {
		return usageError{err}
	}
	loaded, err := loadConfig(ctx, &options{config: *config})
	if err != nil {
		return err
	}
	if err := explain(stdout, loaded.Config, addr); err != nil {
		return fmt.Errorf("explain %s: %w", addr, err)
	}
	return nil
}

// explainFlagSet defines explain's flags into config.
func explainFlagSet(config *string) *flag.FlagSet {
	fs := flag.NewFlagSet("imds-proxy explain", flag.ContinueOnError)
	fs.StringVar(config, "config", "", "YAML configuration `file` to explain from")
	fs.Usage = func() { usageOf(fs, "") }
	return fs
}

// parseExplainAddr takes an address as a user has it at hand: bare, in
// brackets, or with the port an access log or netstat shows.
func parseExplainAddr(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), nil
	}
	return netip.Addr{}, fmt.Errorf("explain: %q is not an IP address", s)
}

// explain writes the explanation of addr under cfg; errNoTenant when no
// tenant lists it.
func explain(w io.Writer, cfg *tenants.Config, addr netip.Addr) error {
	snap := resolver.New(cfg.Tenants, cfg.Server.TrustedProxies)
	looked := addr.Unmap().WithZone("")
	if addr.Is4In6() {
		fmt.Fprintf(w, "%s is the IPv4-mapped form of %s and is looked up as %s.\n", addr, looked, looked)
	}
	if addr.Zone() != "" {
		fmt.Fprintf(w, "The zone of %s is ignored: it is looked up as %s.\n", addr, looked)
	}
	if snap.Trusted(looked) {
		fmt.Fprintf(w, "%s is a trusted proxy (server.trusted_proxies %s): its X-Forwarded-For is believed, so a request\n"+
			"it forwards is served as the tenant of the right-most address there that is not a trusted proxy;\n"+
			"only its requests without X-Forwarded-For are served as below.\n", looked, trustedBy(cfg, looked))
	}

	matches := snap.Candidates(looked)
	if len(matches) == 0 {
		fmt.Fprintf(w, "%s: no tenant lists this address: the IMDS listener answers it 403 Forbidden on every path.\n", looked)
		if cfg.Kubernetes != nil {
			role := ""
			if cfg.Kubernetes.RoleTemplate != "" {
				role = fmt.Sprintf(",\nor the role of its %s (through tenant %s)", tenants.PodRoleAnnotation, cfg.Kubernetes.RoleTemplate)
			}
			fmt.Fprintf(w, "In Kubernetes mode a pod's address is served, while the pod runs, as the tenant it claims: by its\n"+
				"%s annotation (where its namespace allows it), its service account (%s)%s.\n"+
				"imds-proxy status lists the pods served now.\n",
				tenants.PodTenantAnnotation, serviceAccountList(cfg), role)
		}
		if byToken := anySourceTenants(cfg); len(byToken) > 0 {
			fmt.Fprintf(w, "Only the container credentials endpoint serves it, to a request with the token of %s\n"+
				"(container_credentials.any_source).\n", strings.Join(byToken, ", "))
		}
		return errNoTenant
	}
	win := matches[0]
	t := win.Tenant
	fmt.Fprintf(w, "%s is served as tenant %s.\n", looked, t.Name)
	fmt.Fprintf(w, "  matched source  %s (the longest prefix that contains it)\n", win.Source)
	for _, m := range matches[1:] {
		fmt.Fprintf(w, "  also contains   %s of tenant %s: shadowed by a longer prefix\n", m.Source, m.Tenant.Name)
	}
	fmt.Fprintf(w, "  instance        %s\n", instanceLine(t))
	fmt.Fprintf(w, "  role            %s\n", roleLine(t))
	fmt.Fprintf(w, "  IMDS            %s\n", imdsLine(t.IMDS))
	return nil
}

// trustedBy lists the trusted-proxy blocks that contain a.
func trustedBy(cfg *tenants.Config, a netip.Addr) string {
	var in []string
	for _, p := range cfg.Server.TrustedProxies {
		if p.Contains(a) {
			in = append(in, p.String())
		}
	}
	return strings.Join(in, ", ")
}

// serviceAccountList names each service account source and its tenant.
func serviceAccountList(cfg *tenants.Config) string {
	var out []string
	for _, t := range cfg.Tenants {
		for _, sa := range t.ServiceAccounts() {
			out = append(out, sa+" → "+t.Name)
		}
	}
	if len(out) == 0 {
		return "none listed"
	}
	return strings.Join(out, ", ")
}

func anySourceTenants(cfg *tenants.Config) []string {
	var out []string
	for _, t := range cfg.Tenants {
		if t.ContainerToken() != "" && t.ContainerAnySource() {
			out = append(out, t.Name)
		}
	}
	return out
}

func instanceLine(t *tenants.Tenant) string {
	var b strings.Builder
	b.WriteString(dash(t.Instance.ID))
	if z := t.Instance.AvailabilityZone; z != "" {
		b.WriteString(" in " + z)
	}
	if m := t.Mirror; m != nil {
		b.WriteString(" (mirrors " + m.Target() + ")")
	}
	return b.String()
}

func roleLine(t *tenants.Tenant) string {
	if t.Role == nil {
		return "none: iam/ answers 404"
	}
	s := t.Role.Name
	var how []string
	if t.Credentials.Mock {
		return s + " (mock credentials: made up, no AWS account)"
	}
	if p := t.Credentials.Profile; p != "" {
		how = append(how, "profile "+p)
	}
	if a := t.Credentials.RoleARN; a != "" {
		how = append(how, "assumes "+a)
	}
	if len(how) > 0 {
		s += " (" + strings.Join(how, ", ") + ")"
	}
	return s
}

func imdsLine(o tenants.IMDSOptions) string {
	switch mode := o.Mode(); mode {
	case "disabled":
		return "disabled: every path answers 403"
	case "required":
		return fmt.Sprintf("required: IMDSv2 only, IMDSv1 answers 401; hop limit %d", o.HopLimit)
	default:
		return fmt.Sprintf("optional: IMDSv1 and IMDSv2; hop limit %d", o.HopLimit)
	}
}
