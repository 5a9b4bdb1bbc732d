package configs_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// readmeMaxLines keeps the README a front door: the reference lives in docs/.
const readmeMaxLines = 200

// repoRoot is the repository's root, seen from this package's directory.
const repoRoot = ".."

// docFiles are the Markdown files whose links must resolve: the README and
// the other files at the root, and everything in docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.md", filepath.Join("docs", "*.md")} {
		m, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	for _, must := range []string{"README.md", filepath.Join("docs", "README.md"), filepath.Join("docs", "configuration.md")} {
		if !slices.Contains(files, filepath.Join(repoRoot, must)) {
			t.Fatalf("%s is missing: the test would pass without checking it", must)
		}
	}
	return files
}

// TestDocsLinksResolve: every relative link of README.md and docs/*.md leads
// to a file of the repository and, with a #fragment into Markdown, to one of
// its headings, as GitHub renders them.
func TestDocsLinksResolve(t *testing.T) {
	for _, problem := range brokenLinks(repoRoot, docFiles(t)) {
		t.Error(problem)
	}
	// The README is the way in: it must lead into docs/.
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	intoDocs := 0
	for _, l := range parseMarkdown(data).links {
		if strings.HasPrefix(l.target, "docs/") {
			intoDocs++
		}
	}
	if intoDocs == 0 {
		t.Error("README.md has no link into docs/")
	}
}

// TestReadmeIsShort: the README says what imds-proxy is, how to start it,
// and where to read on; anything longer belongs in docs/.
func TestReadmeIsShort(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := countLines(string(data)); n > readmeMaxLines {
		t.Errorf("README.md has %d lines, more than %d: move the detail into docs/", n, readmeMaxLines)
	}
}

func countLines(s string) int {
	n := strings.Count(s, "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}

var (
	// fence opens or closes a fenced code block; its marker must match.
	fence = regexp.MustCompile("^ {0,3}(```+|~~~+)")
	// atxHeading is a "# Title" heading; a closing run of #s is not text.
	atxHeading = regexp.MustCompile(`^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	// codeSpan is inline code, whose content is never a link.
	codeSpan = regexp.MustCompile("(`+)[^`]*?(`+)")
	// inlineLink is [text](target) or ![alt](target "title").
	inlineLink = regexp.MustCompile(`!?\[([^\[\]]*)\]\(\s*<?([^()\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// referenceDef is a reference-style link definition: [name]: target.
	referenceDef = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s|$)`)
	// htmlAnchor is an explicit anchor: <a id="x"> or <a name="x">.
	htmlAnchor = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	// scheme marks an absolute URL (https:, mailto:), which is not checked.
	scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	// lineAnchor is GitHub's anchor into a non-Markdown file: #L10 or #L10-L20.
	lineAnchor = regexp.MustCompile(`^L\d+(?:-L\d+)?$`)
)

// markdown is what the link check needs of one file.
type markdown struct {
	links   []link
	anchors map[string]bool
}

type link struct {
	line   int
	target string
}

// parseMarkdown collects the links and heading anchors outside code blocks.
func parseMarkdown(data []byte) markdown {
	md := markdown{anchors: map[string]bool{}}
	seen := map[string]int{}
	var open string // the marker of the fenced block we are in, if any
	for i, line := range strings.Split(string(data), "\n") {
		if m := fence.FindStringSubmatch(line); m != nil {
			switch {
			case open == "":
				open = m[1]
			case m[1][0] == open[0] && len(m[1]) >= len(open) && strings.TrimSpace(line[strings.Index(line, m[1])+len(m[1]):]) == "":
				open = ""
			}
			continue
		}
		if open != "" {
			continue
		}
		if m := atxHeading.FindStringSubmatch(line); m != nil {
			s := slug(m[1])
			if n := seen[s]; n > 0 {
				// GitHub numbers repeated headings: x, x-1, x-2.
				seen[s]++
				s = fmt.Sprintf("%s-%d", s, n)
			} else {
				seen[s] = 1
			}
			md.anchors[s] = true
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			md.anchors[m[1]] = true
		}
		text := codeSpan.ReplaceAllString(line, "code")
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			md.links = append(md.links, link{i + 1, m[2]})
		}
		if m := referenceDef.FindStringSubmatch(text); m != nil {
			md.links = append(md.links, link{i + 1, m[1]})
		}
	}
	return md
}

// slug is the anchor GitHub gives a heading: its text as rendered (inline
// code without backticks, links reduced to their text), lower-cased, with
// every character but letters, digits, '-', '_' and spaces dropped, and
// each space turned into '-'.
func slug(heading string) string {
	text := inlineLink.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// brokenLinks checks the relative links of files, which lie under root,
// and says what is wrong with each broken one.
func brokenLinks(root string, files []string) []string {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return []string{err.Error()}
	}
	parsed := map[string]markdown{}
	parse := func(path string) (markdown, error) {
		if md, ok := parsed[path]; ok {
			return md, nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return markdown{}, err
		}
		md := parseMarkdown(data)
		parsed[path] = md
		return md, nil
	}
	var problems []string
	for _, file := range files {
		md, err := parse(file)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		name, _ := filepath.Rel(root, file)
		for _, l := range md.links {
			if msg := checkLink(absRoot, file, l.target, parse); msg != "" {
				problems = append(problems, fmt.Sprintf("%s:%d: link %q: %s", name, l.line, l.target, msg))
			}
		}
	}
	return problems
}

// checkLink says what is wrong with one link of file, or "" if nothing is.
func checkLink(absRoot, file, target string, parse func(string) (markdown, error)) string {
	if target == "" {
		return "empty target"
	}
	if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
		return "" // absolute URLs are not checked
	}
	ref, frag, _ := strings.Cut(target, "#")
	ref, err := url.PathUnescape(ref)
	if err != nil {
		return err.Error()
	}
	dest := file
	if ref != "" {
		if strings.HasPrefix(ref, "/") {
			return "starts with /: GitHub resolves it against the site, not the repository; write it relative"
		}
		dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(ref))
		abs, err := filepath.Abs(dest)
		if err != nil {
			return err.Error()
		}
		if rel, err := filepath.Rel(absRoot, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "leads out of the repository"
		}
		if _, err := os.Stat(dest); err != nil {
			return "no such file or directory"
		}
	}
	if frag == "" {
		return ""
	}
	if !strings.HasSuffix(dest, ".md") {
		if lineAnchor.MatchString(frag) {
			return ""
		}
		return "an anchor into a file that is not Markdown"
	}
	md, err := parse(dest)
	if err != nil {
		return err.Error()
	}
	if !md.anchors[frag] {
		return fmt.Sprintf("no heading has the anchor #%s in %s", frag, filepath.Base(dest))
	}
	return ""
}

func TestSlug(t *testing.T) {
	tests := []struct{ heading, want string }{
		{"Quick start", "quick-start"},
		{"`imds-proxy setup`", "imds-proxy-setup"},
		{"`/status.json`", "statusjson"},
		{"(a) Linux: the address on the host", "a-linux-the-address-on-the-host"},
		{"Docker Compose: three services, three roles", "docker-compose-three-services-three-roles"},
		{"(d) Docker Desktop (macOS, Windows)", "d-docker-desktop-macos-windows"},
		{"`server.docker_socket` and `limits`", "serverdocker_socket-and-limits"},
		{"What's new — 2.0?", "whats-new--20"},
		{"See [the docs](docs/README.md)", "see-the-docs"},
		{"Ünïcode", "ünïcode"},
	}
	for _, tt := range tests {
		if got := slug(tt.heading); got != tt.want {
			t.Errorf("slug(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
}

// TestBrokenLinksFindsThem: the check itself must fail on a broken link, or
// TestDocsLinksResolve proves nothing.
func TestBrokenLinksFindsThem(t *testing.T) {
	tests := []struct {
		name   string
		doc    string // the body of docs/a.md
		broken bool
	}{
		{"file", "[b](b.md)", false},
		{"missing file", "[c](c.md)", true},
		{"directory", "[root](../)", false},
		{"anchor", "[b](b.md#second-part)", false},
		{"missing anchor", "[b](b.md#third-part)", true},
		{"repeated heading", "[b](b.md#notes-1)", false},
		{"heading in a code block", "[b](b.md#not-a-heading)", true},
		{"own anchor", "# Top\n[top](#top)", false},
		{"missing own anchor", "# Top\n[top](#bottom)", true},
		{"external", "[x](https://example.com/nowhere.md)", false},
		{"link in a code block", "```\n[c](c.md)\n```", false},
		{"link in inline code", "`[c](c.md)`", false},
		{"reference definition", "[c][ref]\n\n[ref]: c.md", true},
		{"out of the repository", "[x](../../outside.md)", true},
		{"line anchor", "[y](../y.yaml#L2)", false},
		{"other anchor into YAML", "[y](../y.yaml#top)", true},
		{"image", "![pic](missing.png)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "repo")
			write := func(name, body string) {
				t.Helper()
				path := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("docs/b.md", "# B\n\n## Notes\n\n## Second part\n\n## Notes\n\n```sh\n# Not a heading\n```\n")
			write("y.yaml", "a: 1\n")
			write("../outside.md", "# Outside\n")
			write("docs/a.md", tt.doc+"\n")
			problems := brokenLinks(root, []string{filepath.Join(root, "docs", "a.md")})
			if got := len(problems) > 0; got != tt.broken {
				t.Errorf("broken = %v, want %v; problems: %q", got, tt.broken, problems)
			}
		})
	}
}
