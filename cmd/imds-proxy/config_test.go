package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadConfigFlags: the flags laid over a configuration are checked and
// refused the same way whether or not a file is given.
func TestLoadConfigFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	write(t, file, "tenants:\n  - {name: web, sources: [127.0.0.2]}\n")
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" for success
	}{
		{"bad admin listen with a file", []string{"--config", file, "--admin-listen", "localhost"}, "--admin-listen"},
		{"bad admin listen without one", []string{"--admin-listen", "localhost"}, "--admin-listen"},
		{"admin off with a file", []string{"--config", file, "--admin-listen", "off"}, ""},
		{"bad listen with a file", []string{"--config", file, "--listen", "nowhere"}, "--listen"},
		{"bad container listen with a file", []string{"--config", file, "--container-listen", ":x"}, "--container-listen"},
		{"bad pod identity listen with a file", []string{"--config", file, "--pod-identity-listen", "169.254.170.23:80,localhost:80"}, "--pod-identity-listen"},
		{"pod identity listen with a file", []string{"--config", file, "--pod-identity-listen", "169.254.170.23:80", "--pod-identity-listen", "[fd00:ec2::23]:80"}, ""},
		{"container token file with a file", []string{"--config", file, "--container-token-file", "/dev/null"}, "--container-token-file"},
		{"seed flag with a file", []string{"--config", file, "--role-name", "x"}, "--role-name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			l, err := loadConfig(context.Background(), o)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("loadConfig: %v", err)
			case tc.wantErr == "" && l.Config == nil:
				t.Fatal("no configuration")
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("loadConfig = %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
