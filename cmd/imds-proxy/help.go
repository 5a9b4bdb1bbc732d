package main

import (
	"context"
	"fmt"
	"io"
)

// runHelp prints the usage of imds-proxy, or of the command named, on
// stdout: `imds-proxy help check` is `imds-proxy check --help`.
func runHelp(ctx context.Context, d deps, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch len(args) {
	case 0:
		var o options
		var verbose, noRedirects bool
		mainUsage(stdout, serveFlagSet(&o, &verbose, &noRedirects))
		return nil
	case 1:
	default:
		return usagef("help: want at most one command, got %q", args)
	}
	c, ok := findCommand(args[0])
	switch {
	case args[0] == "serve":
		return runHelp(ctx, d, nil, getenv, stdout, stderr)
	case !ok:
		return usagef("help: unknown command %q (imds-proxy help lists the commands)", args[0])
	case c.flags == nil && !ownFlags(c.name):
		fmt.Fprintf(stdout, "Usage:\n  imds-proxy %s %s\n\n%s.\n", c.name, c.synopsis, upperFirst(c.summary))
		return nil
	}
	// The command prints its own usage, from the flags it parses.
	return runWith(ctx, d, []string{c.name, "--help"}, getenv, stdout, stderr)
}

// ownFlags reports whether a command without a flag set here (its flags
// are defined where it runs) prints its own usage for --help.
func ownFlags(name string) bool {
	return name == "mfa" || name == "health"
}
