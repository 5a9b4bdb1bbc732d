package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runHealth asks a running proxy's admin listener for /healthz and fails
// unless it answers 200: the image's HEALTHCHECK, which has no shell or
// curl to do it with.
func runHealth(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imds-proxy health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := adminDefault(getenv)
	admin := fs.String("admin", def, "admin listener `address` of the running proxy (env "+adminEnv+")")
	timeout := fs.Duration("timeout", 2*time.Second, "give up on the admin listener after this `duration`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("health: unexpected argument %q", fs.Arg(0))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	u := adminURL(*admin) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %s: %w (is the proxy running with its admin listener there? --admin or %s names another)", u, err, adminEnv)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %s", u, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
