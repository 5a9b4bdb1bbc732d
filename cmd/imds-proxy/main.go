// Command imds-proxy serves the EC2 instance metadata API to many clients at
// once, each recognised by its source address as a tenant with its own
// identity and role credentials.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "imds-proxy:", err)
		os.Exit(exitCode(err))
	}
}
