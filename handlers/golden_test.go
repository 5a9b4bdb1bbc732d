package handlers_test

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/handlers"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from what the server answers")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./handlers -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./handlers -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// readPage is an error page as recorded from a real instance.
func readPage(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "recorded", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGolden pins, byte for byte, the bodies a client or a person could
// compare with a real instance's. The error pages are not among them:
// TestErrorPages compares those with pages recorded from real instances,
// which -update never rewrites.
func TestGolden(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	tests := []struct {
		name, src, path string
		status          int
		contentType     string
		file            string
	}{
		{"meta-data listing", srcFull, "/latest/meta-data/", 200, "text/plain", "meta-data.golden"},
		{"identity document", srcFull, "/latest/dynamic/instance-identity/document", 200, "text/plain", "identity-document.golden"},
		{"iam info", srcFull, "/latest/meta-data/iam/info", 200, "text/plain", "iam-info.golden"},
		{"interface listing", srcFull, "/latest/meta-data/network/interfaces/macs/0e:49:61:0f:c3:11/", 200, "text/plain", "interface.golden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(srv, http.MethodGet, tc.path, tc.src)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if got := w.Header().Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			golden(t, tc.file, w.Body.Bytes())
		})
	}
}

// imdsBodies holds the pages recorded from real instances in the project's
// shared/ folder, which stands beside the repository (also on CI);
// testdata/recorded keeps a copy, so the test needs no checkout beside it.
const imdsBodies = "../../shared/imds-bodies"

// TestErrorPages checks the error pages against IMDS.md and, byte for
// byte, against the pages recorded from real instances.
func TestErrorPages(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	tests := []struct {
		name, src, path string
		status          int
		size            int
		title, dtdLine  string
	}{
		{"401.html", srcRequired, "/latest/meta-data/instance-id", 401, 343, "401 - Unauthorized",
			"\n\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n"},
		{"404.html", srcFull, "/latest/meta-data/nope", 404, 339, "404 - Not Found",
			"\n\t\t \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(srv, http.MethodGet, tc.path, tc.src)
			body := w.Body.Bytes()
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if len(body) != tc.size || w.Header().Get("Content-Length") != strconv.Itoa(tc.size) {
				t.Errorf("%d bytes, Content-Length %q; want %d", len(body), w.Header().Get("Content-Length"), tc.size)
			}
			if !bytes.HasPrefix(body, []byte(`<?xml version="1.0" encoding="iso-8859-1"?>`+"\n")) {
				t.Errorf("page does not start with the XML declaration:\n%s", body)
			}
			if got := strings.Count(string(body), tc.title); got != 2 {
				t.Errorf("%q appears %d times, want twice (title and h1)", tc.title, got)
			}
			if !bytes.Contains(body, []byte(tc.dtdLine)) {
				t.Errorf("DTD URL line is not indented as %q", tc.dtdLine)
			}
			if !bytes.HasSuffix(body, []byte(" </body>\n</html>\n")) {
				t.Errorf("page does not end with its closing tags and one newline")
			}
			if want := readPage(t, tc.name); !bytes.Equal(body, want) {
				t.Errorf("page differs from the recorded testdata/recorded/%s:\ngot:\n%q\nwant:\n%q", tc.name, body, want)
			}
			// The copy is the original: shared/ holds the recordings.
			switch orig, err := os.ReadFile(filepath.Join(imdsBodies, tc.name)); {
			case errors.Is(err, fs.ErrNotExist):
				t.Logf("%s not beside the repository: compared with testdata/recorded only", imdsBodies)
			case err != nil:
				t.Fatal(err)
			case !bytes.Equal(orig, readPage(t, tc.name)):
				t.Errorf("testdata/recorded/%s is not %s/%s", tc.name, imdsBodies, tc.name)
			}
		})
	}
}

// TestOtherErrorPages: 400 and 403 have no recorded body; they take the
// shape of the 401 page.
func TestOtherErrorPages(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	tests := []struct {
		name, method, src string
		status            int
		title             string
	}{
		{"400", http.MethodPut, srcFull, 400, "400 - Bad Request"},
		{"403", http.MethodGet, srcUnknown, 403, "403 - Forbidden"},
	}
	p401 := string(readPage(t, "401.html"))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := "/latest/meta-data/instance-id"
			if tc.method == http.MethodPut {
				path = "/latest/api/token"
			}
			w := serve(srv, tc.method, path, tc.src)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			want := strings.ReplaceAll(p401, "401 - Unauthorized", tc.title)
			if w.Body.String() != want {
				t.Errorf("body:\n%s\nwant:\n%s", w.Body, want)
			}
			if got := w.Header().Get("Content-Type"); got != "text/html" {
				t.Errorf("Content-Type %q, want text/html", got)
			}
			if got := w.Header().Get("Content-Length"); got != strconv.Itoa(len(want)) {
				t.Errorf("Content-Length %q, want %d", got, len(want))
			}
		})
	}
}
