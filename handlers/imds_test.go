package handlers_test

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// TestEveryResponse checks the headers IMDS.md requires of every response:
// Server, an exact Content-Length, and the Content-Type of its kind.
func TestEveryResponse(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	tok := mint(t, srv, srcFull, "21600")
	tests := []struct {
		name, method, path, src string
		hdr                     []string
		status                  int
		contentType             string // "" for none
	}{
		{"version list", "GET", "/", srcFull, nil, 200, "text/plain"},
		{"version root", "GET", "/latest/", srcFull, nil, 200, "text/plain"},
		{"listing", "GET", "/latest/meta-data/", srcFull, nil, 200, "text/plain"},
		{"value", "GET", "/latest/meta-data/instance-id", srcFull, nil, 200, "text/plain"},
		{"value with a token", "GET", "/latest/meta-data/instance-id", srcFull, []string{headerToken, tok}, 200, "text/plain"},
		{"json value", "GET", "/latest/meta-data/iam/info", srcFull, nil, 200, "text/plain"},
		{"dynamic value", "GET", "/latest/dynamic/instance-identity/document", srcFull, nil, 200, "text/plain"},
		{"credentials", "GET", "/latest/meta-data/iam/security-credentials/web-role", srcFull, nil, 200, "text/plain"},
		{"user data", "GET", "/latest/user-data", srcFull, nil, 200, "application/octet-stream"},
		{"user data with a slash", "GET", "/latest/user-data/", srcFull, nil, 200, "application/octet-stream"},
		{"user data, old version", "GET", "/2009-04-04/user-data", srcFull, nil, 200, "application/octet-stream"},
		{"token", "PUT", "/latest/api/token", srcFull, []string{headerTTLLower, "60"}, 200, "text/plain"},
		{"400", "PUT", "/latest/api/token", srcFull, nil, 400, "text/html"},
		{"401", "GET", "/latest/meta-data/", srcRequired, nil, 401, "text/html"},
		{"403 unknown source", "GET", "/latest/meta-data/", srcUnknown, nil, 403, "text/html"},
		{"403 disabled", "GET", "/latest/meta-data/", srcDisabled, nil, 403, "text/html"},
		{"403 relayed token", "PUT", "/latest/api/token", srcFull, []string{headerTTLLower, "60", "X-Forwarded-For", "1.2.3.4"}, 403, "text/html"},
		{"404", "GET", "/latest/meta-data/nope", srcFull, nil, 404, "text/html"},
		{"404 with a token", "GET", "/latest/meta-data/nope", srcFull, []string{headerToken, tok}, 404, "text/html"},
		{"405 token path", "GET", "/latest/api/token", srcFull, nil, 405, ""},
		{"405 metadata path", "POST", "/latest/meta-data/", srcFull, nil, 405, ""},
		{"OPTIONS", "OPTIONS", "/latest/api/token", srcFull, nil, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(srv, tc.method, tc.path, tc.src, tc.hdr...)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			h := w.Header()
			if got := h.Values("Server"); len(got) != 1 || got[0] != "EC2ws" {
				t.Errorf("Server %q, want EC2ws", got)
			}
			if got, want := h.Values("Content-Length"), strconv.Itoa(w.Body.Len()); len(got) != 1 || got[0] != want {
				t.Errorf("Content-Length %q, want %s", got, want)
			}
			if got := h.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if h.Get("Transfer-Encoding") != "" {
				t.Errorf("Transfer-Encoding %q: IMDS never chunks", h.Get("Transfer-Encoding"))
			}
		})
	}
}

// TestUserData: the bytes configured, verbatim, nothing appended; 404 when
// there are none.
func TestUserData(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	tests := []struct {
		name, src, path string
		status          int
		body            string
	}{
		{"binary from a file, no newline added", srcFull, "/latest/user-data", 200, userData},
		{"tokens required, no token", srcRequired, "/latest/user-data", 401, ""},
		{"none", srcNoTags, "/latest/user-data", 404, ""},
		{"none, with a slash", srcNoTags, "/latest/user-data/", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(srv, http.MethodGet, tc.path, tc.src)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.status == 200 && w.Body.String() != tc.body {
				t.Errorf("body %q, want %q", w.Body, tc.body)
			}
		})
	}
	// Text from YAML keeps its own final newline, and gains none.
	tok := mint(t, srv, srcRequired, "60")
	w := serve(srv, http.MethodGet, "/latest/user-data", srcRequired, headerToken, tok)
	if want := "#cloud-config\nhostname: required\n"; w.Code != 200 || w.Body.String() != want {
		t.Errorf("required's user data: %d %q, want %q", w.Code, w.Body, want)
	}
	if got := w.Header().Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type %q", got)
	}

	// EC2 has no empty user data: an empty value is none.
	empty, _ := newServer(t, "tenants:\n  - name: empty\n    sources: [\"127.0.0.2\"]\n    user_data: \"\"\n", handlers.Options{})
	if w := serve(empty, http.MethodGet, "/latest/user-data", srcFull); w.Code != http.StatusNotFound {
		t.Errorf("empty user data: status %d, want 404", w.Code)
	}
	if w := serve(empty, http.MethodGet, "/latest/", srcFull); w.Body.String() != "dynamic\nmeta-data" {
		t.Errorf("empty user data is listed: %q", w.Body)
	}
}

// TestListings checks the shapes of listings: names sorted, directories
// with a slash, no trailing newline, directories answered with or without
// their slash and never redirected.
func TestListings(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	versions := serve(srv, http.MethodGet, "/", srcFull).Body.String()
	tests := []struct {
		name, src, path string
		want            string
	}{
		{"version root", srcFull, "/latest", "dynamic\nmeta-data\nuser-data"},
		{"version root with a slash", srcFull, "/latest/", "dynamic\nmeta-data\nuser-data"},
		{"version root of an old version", srcFull, "/2021-01-03/", "dynamic\nmeta-data\nuser-data"},
		{"version root without user data", srcNoTags, "/latest/", "dynamic\nmeta-data"},
		{"dynamic", srcFull, "/latest/dynamic/", "fws/\ninstance-identity/"},
		{"dynamic without a slash", srcFull, "/latest/dynamic", "fws/\ninstance-identity/"},
		{"instance-identity", srcFull, "/latest/dynamic/instance-identity/", "document\npkcs7\nrsa2048\nsignature"},
		{"fws", srcFull, "/latest/dynamic/fws/", "instance-monitoring"},
		{"placement without a slash", srcFull, "/latest/meta-data/placement",
			"availability-zone\navailability-zone-id\ngroup-name\npartition-number\nregion"},
		{"services", srcFull, "/latest/meta-data/services/", "domain\npartition"},
		{"iam", srcFull, "/latest/meta-data/iam/", "info\nsecurity-credentials/"},
		{"network", srcFull, "/latest/meta-data/network", "interfaces/"},
		{"macs", srcFull, "/latest/meta-data/network/interfaces/macs/", "0e:49:61:0f:c3:11/"},
		{"block devices", srcFull, "/latest/meta-data/block-device-mapping/", "ami\nroot"},
		{"leaf with a slash is its value", srcFull, "/latest/meta-data/instance-id/", "i-0a1b2c3d4e5f60001"},
		{"leaf with two slashes is its value", srcFull, "/latest/meta-data/instance-id//", "i-0a1b2c3d4e5f60001"},
		{"leaf of an old version", srcFull, "/1.0/meta-data/instance-id", "i-0a1b2c3d4e5f60001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(srv, http.MethodGet, tc.path, tc.src)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200 (Location %q)", w.Code, w.Header().Get("Location"))
			}
			if w.Body.String() != tc.want {
				t.Errorf("body %q, want %q", w.Body, tc.want)
			}
		})
	}

	t.Run("versions", func(t *testing.T) {
		lines := strings.Split(versions, "\n")
		if strings.HasSuffix(versions, "\n") || lines[len(lines)-1] != "latest" {
			t.Fatalf("version list does not end in latest without a newline: %q", versions)
		}
		if lines[0] != "1.0" {
			t.Errorf("first version %q, want 1.0", lines[0])
		}
		dated := lines[1 : len(lines)-1]
		if !slices.IsSorted(dated) {
			t.Errorf("versions out of order: %q", dated)
		}
		date := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
		for _, v := range dated {
			if !date.MatchString(v) {
				t.Errorf("version %q is not a date", v)
			}
			if w := serve(srv, http.MethodGet, "/"+v+"/meta-data/instance-id", srcFull); w.Code != 200 {
				t.Errorf("version %s: status %d", v, w.Code)
			}
		}
	})
	t.Run("every listing is sorted and has no trailing newline", func(t *testing.T) {
		walk(t, srv, srcFull, "/latest/", func(path, body string) {
			if strings.HasSuffix(body, "\n") || strings.HasPrefix(body, "\n") || strings.Contains(body, "\n\n") {
				t.Errorf("%s: listing %q has stray newlines", path, body)
			}
		})
	})
}

// walk visits every listing below path, calling visit with each one.
func walk(t *testing.T, h http.Handler, src, path string, visit func(path, body string)) {
	t.Helper()
	w := serve(h, http.MethodGet, path, src)
	if w.Code != http.StatusOK {
		t.Fatalf("%s: status %d", path, w.Code)
	}
	body := w.Body.String()
	visit(path, body)
	names := strings.Split(body, "\n")
	if !slices.IsSorted(names) {
		t.Errorf("%s: listing not sorted: %q", path, names)
	}
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, "/"):
			walk(t, h, src, path+n, visit)
		case path == "/latest/": // the version root lists its directories bare
			if n != "user-data" {
				walk(t, h, src, path+n+"/", visit)
			}
		case strings.HasPrefix(path, "/latest/meta-data/public-keys"):
			// "0=name" is not a path: TestCatalogue covers public-keys/.
		default:
			if w := serve(h, http.MethodGet, path+n, src); w.Code != http.StatusOK {
				t.Errorf("%s%s is listed but answers %d", path, n, w.Code)
			}
		}
	}
}

// TestNotFound: anything absent answers the exact 404 page.
func TestNotFound(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	page := readPage(t, "404.html")
	tests := []struct{ name, src, path string }{
		{"unknown path", srcFull, "/latest/meta-data/no-such-path"},
		{"unknown directory", srcFull, "/latest/meta-data/no-such-dir/"},
		{"unknown version", srcFull, "/2099-01-01/meta-data/instance-id"},
		{"unknown version root", srcFull, "/2099-01-01/"},
		{"version-like garbage", srcFull, "/latest-ish/meta-data/"},
		{"below a leaf", srcFull, "/latest/meta-data/instance-id/more"},
		{"case matters", srcFull, "/latest/Meta-Data/instance-id"},
		{"no public ip", srcNoTags, "/latest/meta-data/public-ipv4"},
		{"no public hostname", srcNoTags, "/latest/meta-data/public-hostname"},
		{"no public keys", srcNoTags, "/latest/meta-data/public-keys/"},
		{"no spot action", srcFull, "/latest/meta-data/spot/instance-action"},
		{"no kernel", srcFull, "/latest/meta-data/kernel-id"},
		{"no iam without credentials", srcNoTags, "/latest/meta-data/iam/"},
		{"no user data", srcNoTags, "/latest/user-data"},
		{"api path by GET below latest", srcFull, "/latest/api/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(srv, http.MethodGet, tc.path, tc.src)
			if w.Code != http.StatusNotFound {
				t.Fatalf("status %d, want 404 (body %q)", w.Code, w.Body)
			}
			if w.Body.String() != string(page) {
				t.Errorf("body is not the 404 page: %q", w.Body)
			}
			if got := w.Header().Get("Content-Type"); got != "text/html" {
				t.Errorf("Content-Type %q, want text/html", got)
			}
		})
	}
}

// TestHostilePaths: paths that try to climb or smuggle bytes answer 404 or
// 400, never a value and never a panic. (Doubled slashes are served, as
// IMDS serves them: TestEmptySegments.)
func TestHostilePaths(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	tests := []struct{ name, path string }{
		{"dot dot", "/latest/meta-data/../meta-data/instance-id"},
		{"dot dot above the version", "/latest/../latest/meta-data/instance-id"},
		{"dot dot at the root", "/../latest/meta-data/instance-id"},
		{"dot", "/latest/./meta-data/instance-id"},
		{"escaped dot dot", "/latest/meta-data/%2e%2e/meta-data/instance-id"},
		{"escaped dot dot, upper case", "/latest/meta-data/%2E%2E/meta-data/instance-id"},
		{"escaped dot dot above the version", "/latest/%2e%2e/latest/meta-data/instance-id"},
		{"escaped NUL", "/latest/meta-data/instance-id%00"},
		{"escaped NUL directory", "/latest/meta-data/%00/instance-id"},
		{"escaped NUL in the version", "/latest%00/meta-data/instance-id"},
		{"backslashes", `/latest\meta-data\instance-id`},
		{"escaped backslash", "/latest/meta-data%5cinstance-id"},
		{"very long path", "/latest/meta-data/" + strings.Repeat("a", 8<<10)},
		{"very long listing path", "/latest/meta-data/" + strings.Repeat("x/", 4<<10)},
		{"many dot dots", "/latest/meta-data/" + strings.Repeat("../", 1000) + "instance-id"},
		{"query does not climb", "/latest/meta-data/nope?../instance-id"},
		{"escaped utf-8 garbage", "/latest/meta-data/%ff%fe"},
	}
	for _, tc := range tests {
		for _, src := range []string{srcFull, srcRequired} {
			t.Run(tc.name+" from "+src, func(t *testing.T) {
				w := serve(srv, http.MethodGet, tc.path, src)
				switch {
				case src == srcRequired && w.Code != http.StatusUnauthorized:
					t.Fatalf("status %d, want 401 before the path is looked at", w.Code)
				case src == srcFull && w.Code != http.StatusNotFound && w.Code != http.StatusBadRequest:
					t.Fatalf("status %d (body %.60q), want 404 or 400", w.Code, w.Body)
				}
			})
		}
	}
}

// TestWrongMethods: only GET and HEAD read metadata.
func TestWrongMethods(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, "PROPFIND"} {
		t.Run(method, func(t *testing.T) {
			w := serve(srv, method, "/latest/meta-data/instance-id", srcFull)
			if w.Code != http.StatusMethodNotAllowed {
				t.Fatalf("status %d, want 405", w.Code)
			}
			if got := w.Header().Get("Allow"); got != "OPTIONS, GET, HEAD" {
				t.Errorf("Allow %q", got)
			}
			if w.Body.Len() != 0 {
				t.Errorf("body %q, want empty", w.Body)
			}
		})
	}
}
