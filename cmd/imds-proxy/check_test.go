package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckWarnsAboutIgnoredAWSEnvironment: with a configuration file every
// tenant gets exactly the profile it names, so AWS_PROFILE and environment
// keys, which the AWS CLI would use, are ignored; check says so rather than
// let an operator believe they choose the tenants' credentials.
func TestCheckWarnsAboutIgnoredAWSEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	write(t, path, "tenants:\n  - {name: web, sources: [127.0.0.2], credentials: {profile: default}}\n")
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing set", nil, nil},
		{"AWS_PROFILE", map[string]string{"AWS_PROFILE": "admin"}, []string{"warning: AWS_PROFILE=admin is ignored"}},
		{"environment keys", map[string]string{"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "x"},
			[]string{"warning: AWS_ACCESS_KEY_ID (****************MPLE) is ignored"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			getenv := func(k string) string { return tc.env[k] }
			if err := run(context.Background(), []string{"check", "--config", path}, getenv, &stdout, &stderr); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
			if len(tc.want) == 0 && stderr.Len() > 0 {
				t.Errorf("stderr %q, want nothing", stderr.String())
			}
			if strings.Contains(stderr.String(), "AKIAIOSFODNN7EXAMPLE") {
				t.Errorf("stderr shows the whole key id: %q", stderr.String())
			}
		})
	}
}

// TestCheckWarnsAboutATokenFileLineBreak: check says what clients reading
// a token file that ends in a line break will send.
func TestCheckWarnsAboutATokenFileLineBreak(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "web.token"), "0123456789abcdef0123\n")
	path := filepath.Join(dir, "c.yaml")
	write(t, path, "server:\n  container_listen: 127.0.0.1:0\ntenants:\n  - name: web\n    sources: [127.0.0.2]\n"+
		"    credentials: {profile: dev}\n    container_credentials: {token_file: web.token}\n")
	var stdout, stderr strings.Builder
	if err := run(context.Background(), []string{"check", "--config", path}, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if want := "warning: " + path + ":7: tenants[0].container_credentials.token_file: web.token ends in a line break"; !strings.Contains(stderr.String(), want) {
		t.Fatalf("stderr %q lacks %q", stderr.String(), want)
	}
}
