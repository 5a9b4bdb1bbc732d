package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPackageBoundaries enforces DESIGN.md's dependency direction:
// tenants ← resolver, cache ← handlers ← cmd/imds-proxy, and the
// "must not" column (tenants knows no HTTP, handlers never calls AWS).
func TestPackageBoundaries(t *testing.T) {
	const mod = "github.com/imds-proxy/imds-proxy/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string][]string{
		"tenants":  {},
		"resolver": {"tenants"},
		"cache":    {"tenants"},
		"handlers": {"tenants", "resolver", "cache"},
		"configs":  {},
		// The Docker Engine client knows containers, not tenants.
		"internal/docker":            {},
		"internal/docker/dockertest": {},
		// Host networking knows commands and addresses, not tenants.
		"internal/hostnet": {},
	}
	forbidden := map[string][]string{
		"tenants":  {"net/http", "github.com/go-chi/"},
		"resolver": {"net/http"},
		"cache":    {"net/http"},
		"handlers": {"github.com/aws/aws-sdk-go-v2/service/", "github.com/aws/aws-sdk-go-v2/config"},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		ok, known := allowed[pkg]
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, mod) {
				dep := strings.TrimPrefix(imp, mod)
				if known && !contains(ok, dep) {
					t.Errorf("%s imports %s: DESIGN.md's dependency direction forbids it", pkg, dep)
				}
			}
			for _, bad := range forbidden[pkg] {
				if strings.HasPrefix(imp, bad) {
					t.Errorf("%s imports %s, which it must not", pkg, imp)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s || strings.HasPrefix(s, v+"/") {
			return true
		}
	}
	return false
}
