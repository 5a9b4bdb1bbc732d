package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// command is one subcommand as --help, `help`, the completion scripts and
// the manual page describe it: all four are written from these and from
// the commands' own flag sets, so they cannot disagree with what is parsed.
type command struct {
	name     string
	synopsis string // what follows "imds-proxy NAME" in the usage
	summary  string
	// flags returns the command's flag set, bound to throwaway values; nil
	// for a command whose flags are its own business (mfa, help).
	flags func() *flag.FlagSet
}

// commands lists the subcommands in the order the usage shows them.
func commands() []command {
	return []command{
		{"check", "--config FILE", "validate a configuration and print its tenants",
			func() *flag.FlagSet { return checkFlagSet(new(string)) }},
		{"explain", "--config FILE ADDRESS", "say which tenant an address is served as, and why",
			func() *flag.FlagSet { return explainFlagSet(new(string)) }},
		{"status", "[--admin ADDRESS] [--json]", "print the tenants of a running proxy and what each lacks",
			func() *flag.FlagSet { return statusFlagSet(new(statusArgs), "") }},
		{"setup", "--mode MODE [--apply] | --remove", "print (--apply: perform) the host networking for 169.254.169.254",
			func() *flag.FlagSet { return setupFlagSet(new(setupFlags), new(setupValues)) }},
		{"event", "TYPE|list|clear --tenant T", "schedule, list or clear a tenant's lifecycle events on the running proxy",
			func() *flag.FlagSet { return eventFlagSet(new(eventArgs), "") }},
		{"mfa", "--profile P", "hand an MFA code to the running proxy", nil},
		{"health", "[--admin ADDRESS]", "exit 0 when a running proxy answers /healthz (the image's HEALTHCHECK)", nil},
		{"completion", "bash|zsh|fish", "print a shell completion script", nil},
		{"man", "", "print the manual page (roff)", nil},
		{"version", "", "print the version", nil},
		{"help", "[COMMAND]", "print the usage of imds-proxy or of a command", nil},
	}
}

// findCommand returns the command named name.
func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// commandOf names the subcommand a flag set belongs to ("" for serving).
func commandOf(fs *flag.FlagSet) string {
	return strings.TrimPrefix(strings.TrimPrefix(fs.Name(), "imds-proxy"), " ")
}

// seedFlag reports whether a flag of the serving flag set belongs to seed
// mode: aws-mock-metadata's flags, which describe the one tenant served
// without --config.
func seedFlag(name string) bool {
	_, env := seedEnv[name]
	switch name {
	case "source", "container-token-file", "verbose", "no-scheme-host-redirects", "mock-instance-profile", "mock-spot-termination":
		return true
	}
	return env
}

// mainUsage writes `imds-proxy --help`.
func mainUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, `imds-proxy serves the EC2 instance metadata API (IMDS) to many clients at once,
each recognised by the source address of its connection as a tenant with its
own instance identity and role credentials.

Usage:
  imds-proxy [flags]            serve IMDS (without --config: one tenant from the seed flags)
  imds-proxy COMMAND [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-38s %s\n", strings.TrimSpace(c.name+" "+c.synopsis), c.summary)
	}
	fmt.Fprint(w, "\nServer flags:\n")
	writeFlags(w, fs, func(name string) bool { return !seedFlag(name) })
	fmt.Fprint(w, "\nSeed mode flags (without --config, as aws-mock-metadata: one tenant):\n")
	writeFlags(w, fs, seedFlag)
	fmt.Fprint(w, "\nEnvironment (a flag beats its variable):\n")
	for _, e := range serverEnv() {
		fmt.Fprintf(w, "  %-26s --%s\n", e.env, e.flag)
	}
	fmt.Fprint(w, `
Exit status: 0 success; 1 failure; 2 usage error (unknown flag, bad argument);
78 invalid configuration (EX_CONFIG).
"imds-proxy help COMMAND" prints a command's flags; docs/ has the reference.
`)
}

// commandUsage writes `imds-proxy help NAME` for a command with flags.
func commandUsage(w io.Writer, c command, fs *flag.FlagSet, extra string) {
	fmt.Fprintf(w, "Usage:\n  imds-proxy %s %s\n\n%s.\n", c.name, c.synopsis, upperFirst(c.summary))
	if extra != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(extra))
	}
	fmt.Fprint(w, "\nFlags:\n")
	writeFlags(w, fs, func(string) bool { return true })
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// flagDoc is one flag as the usage, the completions and the manual show it.
type flagDoc struct {
	name, arg, usage, def string
	takesValue            bool
}

// flagDocs describes the flags of fs that keep says to keep, in lexical
// order.
func flagDocs(fs *flag.FlagSet, keep func(string) bool) []flagDoc {
	var out []flagDoc
	fs.VisitAll(func(f *flag.Flag) {
		if !keep(f.Name) {
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		d := flagDoc{name: f.Name, arg: arg, usage: usage, takesValue: !isBoolFlag(f)}
		if !d.takesValue {
			d.arg = ""
		}
		if !isZeroDefault(f) {
			d.def = f.DefValue
		}
		out = append(out, d)
	})
	return out
}

// writeFlags writes the flags as "--name value" with their usage.
func writeFlags(w io.Writer, fs *flag.FlagSet, keep func(string) bool) {
	for _, d := range flagDocs(fs, keep) {
		head := "  --" + d.name
		if d.arg != "" {
			head += " " + d.arg
		}
		usage := d.usage
		if d.def != "" {
			usage += fmt.Sprintf(" (default %s)", d.def)
		}
		if len(head) <= 28 {
			fmt.Fprintf(w, "%-30s%s\n", head, usage)
		} else {
			fmt.Fprintf(w, "%s\n%30s%s\n", head, "", usage)
		}
	}
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// isZeroDefault reports whether a flag's default is its type's zero value,
// which the usage does not show (as flag.PrintDefaults does).
func isZeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "false", "0", "[]":
		return true
	}
	if d, err := time.ParseDuration(f.DefValue); err == nil && d == 0 {
		return true
	}
	return false
}

// usageOf writes the usage of the subcommand fs belongs to on fs.Output().
func usageOf(fs *flag.FlagSet, extra string) {
	c, _ := findCommand(commandOf(fs))
	commandUsage(fs.Output(), c, fs, extra)
}
