package tenants_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// TestContainerTokenWhitespace: HTTP servers, Go's included, drop a header
// value's surrounding whitespace, so an inline token with some could never
// be matched: it is refused. A token file is trimmed, but clients pointed
// at it (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) send its bytes as they
// are, and a line break in a header is refused by every SDK's HTTP stack:
// a file ending in one is accepted with a warning that says so.
func TestContainerTokenWhitespace(t *testing.T) {
	const token = "0123456789abcdef0123"
	config := func(cc string) string {
		return "tenants:\n  - name: web\n    sources: [10.0.0.1]\n    credentials: {profile: dev}\n    container_credentials: " + cc + "\n"
	}
	for _, tc := range []struct{ name, token string }{
		{"leading space", `" ` + token + `"`},
		{"trailing space", `"` + token + ` "`},
		{"trailing newline", `"` + token + `\n"`},
		{"tab", `"\t` + token + `"`},
	} {
		t.Run("inline "+tc.name, func(t *testing.T) {
			got := strings.Join(parseErrors(t, "c.yaml", config("{token: "+tc.token+"}")), "\n")
			if !strings.Contains(got, "c.yaml:5: tenants[0].container_credentials.token:") || !strings.Contains(got, "whitespace") {
				t.Fatalf("errors %q, want the token's whitespace refused at c.yaml:5", got)
			}
		})
	}

	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		warn          bool
	}{
		{"file as printf writes it", token, false},
		{"file ending in a newline", token + "\n", true},
		{"file ending in CRLF", token + "\r\n", true},
		{"file with spaces around, which the server trims", "  " + token + " ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.NewReplacer(" ", "-", ",", "").Replace(tc.name))
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := tenants.Parse("c.yaml", []byte(config("{token_file: "+path+"}")), launch)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Tenants[0].ContainerToken() != token {
				t.Errorf("token %q, want %q", cfg.Tenants[0].ContainerToken(), token)
			}
			w := cfg.Warnings.Error()
			switch {
			case tc.warn && (!strings.Contains(w, "c.yaml:5: tenants[0].container_credentials.token_file:") ||
				!strings.Contains(w, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") || !strings.Contains(w, "printf")):
				t.Errorf("warnings %q, want one at c.yaml:5 saying what clients reading the file send", w)
			case !tc.warn && len(cfg.Warnings) > 0:
				t.Errorf("warnings %q, want none", w)
			}
			if strings.Contains(w, token) {
				t.Errorf("the warning quotes the token: %q", w)
			}
		})
	}
}
