// Package configs_test keeps the example configurations and the
// documentation true: every example must load, every key of the schema must
// be documented in docs/configuration.md, and every relative link of the
// README and docs/ must lead somewhere (docs_test.go).
package configs_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

func exampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no configs/*.yaml found: the test would pass without checking anything")
	}
	return files
}

// TestExamplesLoad loads every example exactly as imds-proxy --config does.
// Loading validates everything but calls no AWS API, so credentialed
// tenants are fine here.
func TestExamplesLoad(t *testing.T) {
	for _, file := range exampleFiles(t) {
		t.Run(file, func(t *testing.T) {
			cfg, err := tenants.Load(file, time.Now())
			if err != nil {
				t.Fatalf("tenants.Load(%s):\n%v", file, err)
			}
			if len(cfg.Tenants) == 0 {
				t.Fatalf("%s: no tenants", file)
			}
		})
	}
}

// secretPattern matches what AWS secrets look like in a file: long-term or
// temporary access key ids and the shared-credentials key names.
var secretPattern = regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|(?i)aws_secret_access_key|aws_session_token`)

// TestExamplesHoldNoSecrets: configs/ is published; credentials belong in
// the AWS profiles the examples name.
func TestExamplesHoldNoSecrets(t *testing.T) {
	for _, file := range exampleFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if m := secretPattern.Find(data); m != nil {
			t.Errorf("%s holds what looks like a secret (%q): name a profile instead", file, m)
		}
	}
}

// configurationDoc is the configuration reference, which names every key.
var configurationDoc = filepath.Join(repoRoot, "docs", "configuration.md")

// TestConfigurationDocumentsEveryKey fails when schema.go gains a key that
// docs/configuration.md does not name as `key.path`.
func TestConfigurationDocumentsEveryKey(t *testing.T) {
	doc, err := os.ReadFile(configurationDoc)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	collectKeys(reflect.TypeOf(tenants.ServerConfig{}), "server.", &keys)
	collectKeys(reflect.TypeOf(tenants.KubernetesConfig{}), "kubernetes.", &keys)
	keys = append(keys, "defaults")
	collectKeys(reflect.TypeOf(tenants.TenantConfig{}), "", &keys)
	for _, k := range keys {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("%s does not document the configuration key `%s`", configurationDoc, k)
		}
	}
}

// collectKeys appends the dotted YAML key of every field of a struct type,
// recursing into nested blocks.
func collectKeys(typ reflect.Type, prefix string, keys *[]string) {
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		*keys = append(*keys, prefix+name)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.NumField() > 0 && ft.PkgPath() == typ.PkgPath() {
			collectKeys(ft, prefix+name+".", keys)
		}
	}
}
