package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// runCheck validates a configuration and prints its tenants, so a user can
// see what each address will be served before anything listens.
func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	config := new(string)
	fs := checkFlagSet(config)
	if err := parseArgs(fs, args, stdout); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return usagef("check: unexpected argument %q", fs.Arg(0))
	}
	if *config == "" {
		*config = getenv("IMDS_PROXY_CONFIG")
	}
	if *config == "" {
		return usagef("check: --config is required (or IMDS_PROXY_CONFIG)")
	}
	loaded, err := loadConfig(ctx, &options{config: *config})
	if err != nil {
		return err
	}
	cfg := loaded.Config
	for _, w := range append(configWarnings(cfg), ignoredAWSEnvironment(getenv)...) {
		fmt.Fprintln(stderr, "warning: "+w)
	}
	fmt.Fprintf(stdout, "%s: %d tenants; listen %s\n", *config, len(cfg.Tenants), strings.Join(cfg.Server.Listen, ", "))
	if k := cfg.Kubernetes; k != nil {
		fmt.Fprintln(stdout, kubernetesLine(k, getenv("NODE_NAME")))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSOURCES\tINSTANCE\tZONE\tPRIVATE IP\tROLE\tIMDS")
	for _, t := range cfg.Tenants {
		srcs := make([]string, len(t.Sources))
		for i, p := range t.Sources {
			srcs[i] = p.String()
		}
		for _, sel := range t.Containers() {
			srcs = append(srcs, sel.String())
		}
		srcs = append(srcs, podSources(cfg, t)...)
		role := "-"
		if t.Role != nil {
			role = t.Role.Name
		}
		instance, zone, ip := t.Instance.ID, t.Instance.AvailabilityZone, t.Instance.PrivateIP().String()
		if t.Mirror != nil { // known once copied; the static values show
			instance = "mirror of " + t.Mirror.Target()
			zone, ip = cmp.Or(zone, "-"), cmp.Or(strings.TrimPrefix(ip, "invalid IP"), "-")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, strings.Join(srcs, ","), instance,
			zone, ip, role, t.IMDS.Mode())
	}
	return tw.Flush()
}

// checkFlagSet defines check's flags into config.
func checkFlagSet(config *string) *flag.FlagSet {
	fs := flag.NewFlagSet("imds-proxy check", flag.ContinueOnError)
	fs.StringVar(config, "config", "", "YAML configuration `file` to validate (env IMDS_PROXY_CONFIG)")
	fs.Usage = func() { usageOf(fs, "") }
	return fs
}

// kubernetesLine says what Kubernetes mode follows; nodeEnv is NODE_NAME.
func kubernetesLine(k *tenants.Kubernetes, nodeEnv string) string {
	node := k.NodeName
	switch {
	case node == "" && nodeEnv != "":
		node = nodeEnv + " (NODE_NAME)"
	case node == "":
		node = "$NODE_NAME (not set here)"
	}
	server := "in-cluster service account"
	if k.Kubeconfig != "" {
		server = "kubeconfig " + k.Kubeconfig
	}
	restrictions := "namespace restrictions on: a claim by annotation needs the namespace's " + tenants.AllowedTenantsAnnotation
	if !k.NamespaceRestrictions {
		restrictions = "namespace restrictions off: a pod may claim any tenant by annotation"
	}
	return fmt.Sprintf("kubernetes: the pods of node %s, through the %s; %s", node, server, restrictions)
}

// podSources describes the pods a tenant serves in Kubernetes mode, for
// check's SOURCES column: their addresses are known only while the proxy
// runs (imds-proxy status lists them).
func podSources(cfg *tenants.Config, t *tenants.Tenant) []string {
	k := cfg.Kubernetes
	if k == nil {
		return nil
	}
	if t.Name == k.RoleTemplate {
		return []string{"pods' " + tenants.PodRoleAnnotation + " (role template)"}
	}
	var out []string
	for _, sa := range t.ServiceAccounts() {
		out = append(out, "pods of service account "+sa)
	}
	return append(out, "pods annotated "+tenants.PodTenantAnnotation+"="+t.Name)
}
