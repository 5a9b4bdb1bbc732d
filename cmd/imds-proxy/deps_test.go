package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPackageBoundaries enforces DESIGN.md's dependency direction, on what
// each package reaches transitively (go list -deps), not only on what it
// imports itself: tenants ← resolver, cache ← handlers ← cmd/imds-proxy,
// with the AWS adapters in internal/awssource, and the domain and the
// resolver reaching neither the AWS SDK nor net/http.
func TestPackageBoundaries(t *testing.T) {
	const mod = "github.com/imds-proxy/imds-proxy/"
	aws := "github.com/aws/"
	rules := []struct {
		pkg       string
		ours      []string // the module's packages it may reach; nil: any but cmd
		forbidden []string // prefixes of other packages it must not reach
	}{
		{pkg: "tenants", ours: []string{}, forbidden: []string{aws, "net/http", "github.com/go-chi/"}},
		{pkg: "resolver", ours: []string{"tenants"}, forbidden: []string{aws, "net/http"}},
		{pkg: "cache", ours: []string{"tenants"}, forbidden: []string{aws, "net/http"}},
		{pkg: "handlers", ours: []string{"tenants", "resolver", "cache"}, forbidden: []string{aws}},
		{pkg: "internal/awssource", ours: []string{"tenants"}},
		// The Docker Engine client knows containers, not tenants.
		{pkg: "internal/docker", ours: []string{}},
		{pkg: "internal/hostnet", ours: []string{}, forbidden: []string{aws}},
		// The Kubernetes adapter knows pods, not tenants; it decodes only its
		// own narrow Pod type: k8s.io/api (every group's generated code,
		// some 5 MB of binary) and the full clientset stay out.
		{pkg: "internal/kubernetes", ours: []string{}, forbidden: []string{aws, "k8s.io/api/", "k8s.io/client-go/kubernetes"}},
		// Mock credentials never touch the network.
		{pkg: "internal/mocksource", ours: []string{"tenants"}, forbidden: []string{aws, "net/http"}},
		{pkg: "internal/liveconfig", ours: []string{"tenants", "internal/docker", "internal/kubernetes"}, forbidden: []string{aws}},
	}
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", mod+r.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", r.pkg, err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				if own, ok := strings.CutPrefix(dep, mod); ok {
					if own != r.pkg && !allowed(r.ours, own) {
						t.Errorf("%s reaches %s: DESIGN.md's dependency direction forbids it", r.pkg, own)
					}
					continue
				}
				for _, bad := range r.forbidden {
					if strings.HasPrefix(dep, bad) {
						t.Errorf("%s reaches %s, which it must not", r.pkg, dep)
					}
				}
			}
		})
	}
}

// allowed says whether own (a package of the module) is one of ours or
// below one; nil allows anything but cmd/.
func allowed(ours []string, own string) bool {
	if ours == nil {
		return !strings.HasPrefix(own, "cmd/")
	}
	for _, o := range ours {
		if own == o || strings.HasPrefix(own, o+"/") {
			return true
		}
	}
	return false
}
