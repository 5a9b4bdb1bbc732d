package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// runCLI runs the command line with the environment env and returns its
// exit status and output.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing here may serve: a command that would returns at once
	err := run(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
	if err != nil {
		errOut.WriteString("imds-proxy: " + err.Error() + "\n")
	}
	return exitCode(err), out.String(), errOut.String()
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	invalid := filepath.Join(dir, "invalid.yaml")
	write(t, invalid, "tenants:\n  - name: web\n    sources: [10.0.0.1/8]\n")
	valid := filepath.Join(dir, "valid.yaml")
	write(t, valid, "tenants:\n  - name: web\n    sources: [10.0.0.1]\n")
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"--help"}, 0},
		{"help command", []string{"help", "check"}, 0},
		{"unknown flag", []string{"--bogus"}, exitUsage},
		{"unknown command", []string{"bogus"}, exitUsage},
		{"help unknown command", []string{"help", "bogus"}, exitUsage},
		{"check unknown flag", []string{"check", "--bogus"}, exitUsage},
		{"check without config", []string{"check"}, exitUsage},
		{"check invalid", []string{"check", "--config", invalid}, exitConfig},
		{"check missing file", []string{"check", "--config", filepath.Join(dir, "none.yaml")}, exitConfig},
		{"check valid", []string{"check", "--config", valid}, 0},
		{"serve invalid", []string{"--config", invalid}, exitConfig},
		{"serve bad seed value", []string{"--instance-id", "i-1"}, exitUsage},
		{"serve bad listen", []string{"--listen", "localhost:80"}, exitUsage},
		{"seed flag with config", []string{"--config", valid, "--instance-id", "i-0123456789abcdef0"}, exitUsage},
		{"explain bad address", []string{"explain", "--config", valid, "nowhere"}, exitUsage},
		{"explain no tenant", []string{"explain", "--config", valid, "192.0.2.1"}, exitFailure},
		{"setup without mode", []string{"setup"}, exitUsage},
		{"status extra argument", []string{"status", "extra"}, exitUsage},
		{"completion unknown shell", []string{"completion", "tcsh"}, exitUsage},
		{"no-scheme-host-redirects is accepted", []string{"--no-scheme-host-redirects", "--help"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, tt.args...)
			if code != tt.want {
				t.Errorf("imds-proxy %s = exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tt.args, " "), code, tt.want, out, errOut)
			}
		})
	}
}

func TestExitCodeWrapped(t *testing.T) {
	if got := exitCode(fmt.Errorf("start: %w", configError{errors.New("bad")})); got != exitConfig {
		t.Errorf("a wrapped configError exits %d, want %d", got, exitConfig)
	}
}

// --help lists every command and every flag of serving, as --flag, in two
// groups; help COMMAND prints that command's flags on stdout.
func TestHelp(t *testing.T) {
	code, out, _ := runCLI(t, nil, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out, "\n  "+c.name) {
			t.Errorf("--help does not list %s:\n%s", c.name, out)
		}
	}
	if !strings.Contains(out, "mfa --profile P") || !strings.Contains(out, "hand an MFA code to the running proxy") {
		t.Errorf("--help does not describe mfa")
	}
	server, seed, ok := strings.Cut(out, "Seed mode flags")
	if !ok || !strings.Contains(server, "Server flags:") {
		t.Fatalf("--help has no server and seed groups:\n%s", out)
	}
	var o options
	var v, r bool
	serveFlagSet(&o, &v, &r).VisitAll(func(f *flag.Flag) {
		group := server
		if seedFlag(f.Name) {
			group = seed
		}
		if !strings.Contains(group, "  --"+f.Name+" ") && !strings.Contains(group, "  --"+f.Name+"\n") {
			t.Errorf("--help does not list --%s in its group", f.Name)
		}
	})
	if !strings.Contains(out, "never redirects") {
		t.Error("--help does not say that --no-scheme-host-redirects changes nothing")
	}
	for _, c := range commands() {
		if c.flags == nil {
			continue
		}
		code, out, _ := runCLI(t, nil, "help", c.name)
		if code != 0 || !strings.HasPrefix(out, "Usage:\n  imds-proxy "+c.name) {
			t.Errorf("help %s = exit %d, %q", c.name, code, out)
		}
		c.flags().VisitAll(func(f *flag.Flag) {
			if !strings.Contains(out, "--"+f.Name) {
				t.Errorf("help %s does not list --%s", c.name, f.Name)
			}
		})
	}
}

func TestServerEnvironment(t *testing.T) {
	env := map[string]string{
		"IMDS_PROXY_CONFIG":       "from-env.yaml",
		"IMDS_PROXY_LISTEN":       "127.0.0.1:1,127.0.0.1:2",
		"IMDS_PROXY_ADMIN_LISTEN": "off",
		"IMDS_PROXY_LOG_LEVEL":    "warn",
		"IMDS_PROXY_LOG_FORMAT":   "console",
	}
	getenv := func(k string) string { return env[k] }
	o, err := parseFlags(nil, getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.config != "from-env.yaml" || strings.Join(o.listen, " ") != "127.0.0.1:1 127.0.0.1:2" || o.adminListen != "off" ||
		o.logLevel != "warn" || o.logFormat != "console" {
		t.Errorf("from the environment: %+v", o)
	}
	o, err = parseFlags([]string{"--config", "flag.yaml", "--listen", ":8080", "--log-level", "debug"}, getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.config != "flag.yaml" || strings.Join(o.listen, " ") != ":8080" || o.logLevel != "debug" || o.logFormat != "console" {
		t.Errorf("flags must beat the environment: %+v", o)
	}
	o, err = parseFlags([]string{"--verbose"}, getenv, nil)
	if err != nil || o.logLevel != "debug" {
		t.Errorf("--verbose with IMDS_PROXY_LOG_LEVEL=warn: %v, level %q; want debug", err, o.logLevel)
	}
}

func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash here")
	}
	code, out, errOut := runCLI(t, nil, "completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: exit %d: %s", code, errOut)
	}
	script := filepath.Join(t.TempDir(), "imds-proxy.bash")
	write(t, script, out)
	if b, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n rejects the completion: %v\n%s", err, b)
	}
	// Ask it what follows "imds-proxy check --": check's flag.
	cmd := exec.Command(bash, "-c", `source "$1"; COMP_WORDS=(imds-proxy check --); COMP_CWORD=2; _imds_proxy; echo "${COMPREPLY[*]}"`, "-", script)
	b, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(b)) != "--config" {
		t.Errorf("completing 'imds-proxy check --' = %q, %v; want --config", b, err)
	}
	cmd = exec.Command(bash, "-c", `source "$1"; COMP_WORDS=(imds-proxy --profile dev ex); COMP_CWORD=3; _imds_proxy; echo "${COMPREPLY[*]}"`, "-", script)
	if b, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "explain" {
		t.Errorf("completing 'imds-proxy --profile dev ex' = %q, %v; want explain (a flag's value is no command)", b, err)
	}
	for shell, want := range map[string]string{"zsh": "'--listen[", "fish": "-l listen -r"} {
		if code, out, _ := runCLI(t, nil, "completion", shell); code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, no %s", shell, code, want)
		}
	}
}

// docs/imds-proxy.1 is `imds-proxy man`: make man refreshes it.
func TestManPageInSync(t *testing.T) {
	code, out, _ := runCLI(t, nil, "man")
	if code != 0 || !strings.HasPrefix(out, `.\"`) || !strings.Contains(out, ".SH EXIT STATUS") {
		t.Fatalf("man: exit %d, %.80q", code, out)
	}
	path := filepath.Join("..", "..", "docs", "imds-proxy.1")
	if os.Getenv("IMDS_PROXY_UPDATE_MAN") != "" {
		write(t, path, out)
	}
	have, err := os.ReadFile(path)
	if err != nil || string(have) != out {
		t.Errorf("%s is not what imds-proxy man prints: run make man (%v)", path, err)
	}
	if man, err := exec.LookPath("man"); err == nil {
		if b, err := exec.Command(man, "--warnings", "-l", "-Tutf8", path).CombinedOutput(); err != nil {
			t.Errorf("man -l %s: %v\n%s", path, err, b)
		}
	}
}

// Console logs carry no colour codes off a terminal, and every line's time
// has milliseconds.
func TestLoggerFormat(t *testing.T) {
	for _, format := range []string{"console", "json"} {
		var buf bytes.Buffer
		logger, closeLog, err := newLogger(&options{logLevel: "info", logFormat: format}, &buf)
		if err != nil {
			t.Fatal(err)
		}
		logger.Info().Str("tenant", "web").Msg("hello")
		closeLog()
		line := buf.String()
		if strings.Contains(line, "\x1b[") {
			t.Errorf("%s log off a terminal has colour codes: %q", format, line)
		}
		if !msTime.MatchString(line) {
			t.Errorf("%s log line %q has no time with milliseconds", format, line)
		}
	}
	if zerolog.TimeFieldFormat != time.RFC3339 {
		t.Errorf("zerolog.TimeFieldFormat = %q: the logger must not change package state", zerolog.TimeFieldFormat)
	}
}

var msTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}`)
