package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/imds-proxy/imds-proxy/internal/testenv"
	"github.com/imds-proxy/imds-proxy/tenants"
)

const (
	chart     = "helm/imds-proxy"
	manifests = "kubernetes/imds-proxy.yaml"
	// release and namespace of the plain manifests (make manifests).
	release   = "imds-proxy"
	namespace = "kube-system"
)

// need is testenv.Need: skipped here when missing, failed in CI.
var need = testenv.Need

// helm runs helm with args and returns its standard output.
func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("helm")
	need(t, "helm (go install helm.sh/helm/v3/cmd/helm@v3.22.0)", err)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// valueSets are the values the chart is checked with: its defaults (the
// plain manifests) and each file of its ci/ folder.
func valueSets(t *testing.T) map[string][]string {
	t.Helper()
	sets := map[string][]string{"defaults": nil}
	files, err := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("%s/ci has no *-values.yaml: the dnat mode would go unchecked", chart)
	}
	for _, f := range files {
		sets[filepath.Base(f)] = []string{"--values", f}
	}
	return sets
}

func TestHelmLint(t *testing.T) {
	for name, values := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			helm(t, append([]string{"lint", "--strict", chart}, values...)...)
		})
	}
}

// rendered is what the chart renders, decoded into the API's own types.
type rendered struct {
	daemonSet *appsv1.DaemonSet
	configMap *corev1.ConfigMap
	account   *corev1.ServiceAccount
	role      *rbacv1.ClusterRole
	binding   *rbacv1.ClusterRoleBinding
}

func render(t *testing.T, values []string) []byte {
	t.Helper()
	return helm(t, append([]string{"template", release, chart, "--namespace", namespace}, values...)...)
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decode decodes every document of helm template's output strictly: a field
// the API does not have (a misspelt key, a wrong level) fails the test, as
// would a kind the chart is not meant to create.
func decode(t *testing.T, out []byte) rendered {
	t.Helper()
	r := rendered{new(appsv1.DaemonSet), new(corev1.ConfigMap), new(corev1.ServiceAccount),
		new(rbacv1.ClusterRole), new(rbacv1.ClusterRoleBinding)}
	kinds := map[string]any{"DaemonSet": r.daemonSet, "ConfigMap": r.configMap,
		"ServiceAccount": r.account, "ClusterRole": r.role, "ClusterRoleBinding": r.binding}
	seen := map[string]bool{}
	for _, doc := range docSeparator.Split(string(out), -1) {
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		var meta struct{ Kind string }
		if err := json.Unmarshal(js, &meta); err != nil || meta.Kind == "" {
			if strings.TrimSpace(string(js)) == "null" {
				continue // comments only
			}
			t.Fatalf("a document with no kind: %s", doc)
		}
		into, ok := kinds[meta.Kind]
		if !ok {
			t.Fatalf("the chart renders a %s, which this test does not check", meta.Kind)
		}
		if seen[meta.Kind] {
			t.Fatalf("the chart renders two of kind %s", meta.Kind)
		}
		seen[meta.Kind] = true
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(into); err != nil {
			t.Fatalf("%s: %v", meta.Kind, err)
		}
	}
	if len(seen) != len(kinds) {
		t.Fatalf("want a DaemonSet, ConfigMap, ServiceAccount, ClusterRole and ClusterRoleBinding; got %v", slices.Sorted(maps.Keys(seen)))
	}
	return r
}

// container returns the named container of spec, init containers included.
func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func TestChartRenders(t *testing.T) {
	for name, values := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			r := decode(t, render(t, values))
			cfg := renderedConfig(t, r.configMap)
			spec := r.daemonSet.Spec.Template.Spec
			t.Run("host network", func(t *testing.T) { checkHostNetwork(t, spec) })
			t.Run("node name", func(t *testing.T) { checkNodeName(t, spec) })
			t.Run("probes", func(t *testing.T) { checkProbes(t, r.daemonSet, cfg) })
			t.Run("rbac", func(t *testing.T) { checkRBAC(t, r) })
			t.Run("capabilities", func(t *testing.T) { checkCapabilities(t, spec, cfg) })
			t.Run("network setup", func(t *testing.T) { checkNetworkSetup(t, spec, cfg) })
		})
	}
}

func checkHostNetwork(t *testing.T, spec corev1.PodSpec) {
	if !spec.HostNetwork {
		t.Error("hostNetwork is not true: the agent would not see pods' source addresses on the node")
	}
	if spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("dnsPolicy %q, want ClusterFirstWithHostNet (the API server's in-cluster name)", spec.DNSPolicy)
	}
}

func checkNodeName(t *testing.T, spec corev1.PodSpec) {
	for _, e := range container(t, spec, "imds-proxy").Env {
		if e.Name == "NODE_NAME" {
			if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
				t.Errorf("NODE_NAME is %+v, want the fieldRef spec.nodeName", e)
			}
			return
		}
	}
	t.Error("the agent has no NODE_NAME: kubernetes.node_name would be empty")
}

// checkProbes: liveness and readiness ask the admin listener of the
// rendered configuration for /healthz and /readyz, and Prometheus is told
// the same port.
func checkProbes(t *testing.T, ds *appsv1.DaemonSet, cfg *tenants.Config) {
	c := container(t, ds.Spec.Template.Spec, "imds-proxy")
	admin, err := tenants.ParseListen(cfg.Server.AdminListen)
	if err != nil {
		t.Fatalf("server.admin_listen %q: %v", cfg.Server.AdminListen, err)
	}
	port := func(p *corev1.Probe) int {
		if p.HTTPGet.Port.IntValue() != 0 {
			return p.HTTPGet.Port.IntValue()
		}
		for _, cp := range c.Ports {
			if cp.Name == p.HTTPGet.Port.String() {
				return int(cp.ContainerPort)
			}
		}
		t.Fatalf("probe port %q is not a port of the container", p.HTTPGet.Port.String())
		return 0
	}
	for _, probe := range []struct {
		name string
		p    *corev1.Probe
		path string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		switch {
		case probe.p == nil || probe.p.HTTPGet == nil:
			t.Errorf("no %s httpGet probe", probe.name)
		case probe.p.HTTPGet.Path != probe.path:
			t.Errorf("%s probe asks %s, want %s", probe.name, probe.p.HTTPGet.Path, probe.path)
		case port(probe.p) != int(admin.Port()):
			t.Errorf("%s probe asks port %d, the admin listener is %s", probe.name, port(probe.p), admin)
		case admin.Addr().IsLoopback() && probe.p.HTTPGet.Host != admin.Addr().String():
			t.Errorf("%s probe asks host %q; the admin listener is on loopback, %s", probe.name, probe.p.HTTPGet.Host, admin)
		}
	}
	a := ds.Spec.Template.Annotations
	if admin.Addr().IsLoopback() {
		if a["prometheus.io/scrape"] != "" {
			t.Errorf("Prometheus is told to scrape %s, which only the node reaches", admin)
		}
		return
	}
	want := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": fmt.Sprint(admin.Port()), "prometheus.io/path": "/metrics"}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, a[k], v)
		}
	}
}

// checkRBAC: exactly these rules, bound to the DaemonSet's service account.
func checkRBAC(t *testing.T, r rendered) {
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
	}
	got := r.role.Rules
	if len(got) != len(want) {
		t.Errorf("ClusterRole has %d rules, want %d: %+v", len(got), len(want), got)
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if !slices.Equal(g.APIGroups, w.APIGroups) || !slices.Equal(g.Resources, w.Resources) ||
			!slices.Equal(g.Verbs, w.Verbs) || len(g.ResourceNames) > 0 || len(g.NonResourceURLs) > 0 {
			t.Errorf("rule %d is %+v, want %+v", i, g, w)
		}
	}
	for _, rule := range got {
		for _, s := range slices.Concat(rule.APIGroups, rule.Resources, rule.Verbs) {
			if strings.Contains(s, "*") {
				t.Errorf("rule %+v has a wildcard", rule)
			}
		}
	}
	if r.binding.RoleRef.Kind != "ClusterRole" || r.binding.RoleRef.Name != r.role.Name {
		t.Errorf("the binding refers to %+v, not the ClusterRole %s", r.binding.RoleRef, r.role.Name)
	}
	sa := r.daemonSet.Spec.Template.Spec.ServiceAccountName
	want1 := rbacv1.Subject{Kind: "ServiceAccount", Name: sa, Namespace: namespace}
	if len(r.binding.Subjects) != 1 || r.binding.Subjects[0] != want1 {
		t.Errorf("the binding's subjects are %+v, want only %+v", r.binding.Subjects, want1)
	}
	if r.account.Name != sa {
		t.Errorf("the ServiceAccount is %s, the DaemonSet runs as %s", r.account.Name, sa)
	}
}

// checkCapabilities: every container drops all capabilities and keeps its
// root filesystem read-only; the network containers add NET_ADMIN alone, the
// agent NET_BIND_SERVICE alone and only when it listens on a port below
// 1024 (as root, since a non-root process loses added capabilities at
// exec), else it runs as non-root with none.
func checkCapabilities(t *testing.T, spec corev1.PodSpec, cfg *tenants.Config) {
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil || sc.Capabilities == nil {
			t.Errorf("%s has no securityContext.capabilities", c.Name)
			continue
		}
		if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s drops %v, want [ALL]", c.Name, sc.Capabilities.Drop)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s is privileged", c.Name)
		}
		var want []corev1.Capability
		switch {
		case c.Name == "network" || c.Name == "network-cleanup":
			want = []corev1.Capability{"NET_ADMIN"}
		case c.Name == "imds-proxy" && lowPort(t, cfg):
			want = []corev1.Capability{"NET_BIND_SERVICE"}
		case c.Name == "imds-proxy":
			if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
				t.Errorf("the agent binds no port below 1024 but does not run as non-root: %+v", sc)
			}
		default:
			t.Errorf("container %s: this test does not know what it may hold", c.Name)
		}
		if !slices.Equal(sc.Capabilities.Add, want) {
			t.Errorf("%s adds %v, want %v", c.Name, sc.Capabilities.Add, want)
		}
	}
}

// lowPort says whether a listener of cfg takes a port below 1024.
func lowPort(t *testing.T, cfg *tenants.Config) bool {
	s := cfg.Server
	for _, l := range slices.Concat(s.Listen, []string{s.AdminListen, s.ECSListen, s.ContainerListen}, cfg.Server.PodIdentityListen) {
		if ap, err := tenants.ParseListen(l); err == nil && ap.Port() < 1024 {
			return true
		}
	}
	return false
}

// checkNetworkSetup: the init container applies setup in the chart's mode
// and the cleanup container's preStop removes it. In dnat mode the rules
// take pods' packets only (PREROUTING by source block or interface, never
// --host: the node keeps its own IMDS) to the ports the config listens on.
func checkNetworkSetup(t *testing.T, spec corev1.PodSpec, cfg *tenants.Config) {
	init := container(t, spec, "network")
	args := slices.Concat(init.Command, init.Args)
	if !slices.Equal(args[:3], []string{"imds-proxy", "setup", "--apply"}) {
		t.Fatalf("the network init container runs %q, want imds-proxy setup --apply", args)
	}
	if slices.Contains(args, "--host") {
		t.Error("setup --host would send the node's own IMDS traffic to the agent")
	}
	switch {
	case slices.Contains(args, "--mode=address"):
		if !slices.Contains(args, "--ecs") {
			t.Error("address mode without --ecs: 169.254.170.2 would not be on the node")
		}
		if len(cfg.Server.PodIdentityListen) > 0 && !slices.Contains(args, "--pod-identity") {
			t.Error("address mode without --pod-identity: 169.254.170.23 would not be on the node")
		}
	case slices.Contains(args, "--mode=dnat"):
		imds, err := tenants.ParseListen(cfg.Server.Listen[0])
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("--to=$(HOST_IP):%d", imds.Port()); !slices.Contains(args, want) {
			t.Errorf("dnat mode: %q lacks %s (server.listen %s)", args, want, imds)
		}
		if cfg.Server.ECSListen != "" {
			ecs, err := tenants.ParseListen(cfg.Server.ECSListen)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("--ecs-to=$(HOST_IP):%d", ecs.Port()); !slices.Contains(args, want) {
				t.Errorf("dnat mode: %q lacks %s (server.ecs_listen %s)", args, want, ecs)
			}
		}
		if !slices.ContainsFunc(args, func(a string) bool {
			return strings.HasPrefix(a, "--cidr=") || strings.HasPrefix(a, "--bridge=")
		}) {
			t.Errorf("dnat mode: %q names no pods' block or interface", args)
		}
		hostIP := false
		for _, e := range init.Env {
			hostIP = hostIP || e.Name == "HOST_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
				e.ValueFrom.FieldRef.FieldPath == "status.hostIP"
		}
		if !hostIP {
			t.Error("dnat mode: $(HOST_IP) is not the fieldRef status.hostIP")
		}
		if len(cfg.Server.PodIdentityListen) > 0 {
			pi, err := tenants.ParseListen(cfg.Server.PodIdentityListen[0])
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("--pod-identity-to=$(HOST_IP):%d", pi.Port()); !slices.Contains(args, want) {
				t.Errorf("dnat mode: %q lacks %s (server.pod_identity_listen %s)", args, want, pi)
			}
		}
	default:
		t.Fatalf("the network init container runs %q: no --mode", args)
	}
	cleanup := container(t, spec, "network-cleanup")
	if cleanup.Lifecycle == nil || cleanup.Lifecycle.PreStop == nil || cleanup.Lifecycle.PreStop.Exec == nil ||
		!slices.Equal(cleanup.Lifecycle.PreStop.Exec.Command, []string{"imds-proxy", "setup", "--remove"}) {
		t.Errorf("network-cleanup's preStop is %+v, want imds-proxy setup --remove", cleanup.Lifecycle)
	}
}

// TestManifestsCurrent: the plain manifests are the chart's defaults as
// helm renders them now.
func TestManifestsCurrent(t *testing.T) {
	fresh := render(t, nil)
	committed, err := os.ReadFile(manifests)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Errorf("%s differs from helm template of %s: run make manifests", manifests, chart)
	}
}

// renderedConfig runs the ConfigMap's config.yaml through the proxy's own
// loader, as `imds-proxy check` does (tenants.Parse; the cmd's remaining
// steps only lay flags over it and name roles).
func renderedConfig(t *testing.T, cm *corev1.ConfigMap) *tenants.Config {
	t.Helper()
	data, ok := cm.Data["config.yaml"]
	if !ok {
		t.Fatalf("the ConfigMap has no config.yaml: %v", cm.Data)
	}
	cfg, err := tenants.Parse("config.yaml", []byte(data), time.Now())
	if err != nil {
		t.Fatalf("imds-proxy check would refuse the rendered config:\n%v\n%s", err, data)
	}
	return cfg
}
