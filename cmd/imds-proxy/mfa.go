package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// runMFA hands an MFA code to a running proxy's admin listener (POST
// /mfa), which starts the MFA session of a profile with mfa_serial and
// serves its tenants at once. The code is read from the terminal unless
// --code gives it.
func runMFA(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return mfaCommand(ctx, args, getenv, os.Stdin, stdout, stderr)
}

// mfaCommand is runMFA reading a code from stdin.
func mfaCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imds-proxy mfa", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv(adminEnv)
	if def == "" {
		def = tenants.DefaultAdminListen
	}
	admin := fs.String("admin", def, "admin listener `address` of the running proxy (env "+adminEnv+")")
	profile := fs.String("profile", "", "the AWS `profile` with mfa_serial (or one chained from it)")
	code := fs.String("code", "", "the 6-digit MFA `code`; if empty, it is read from the terminal")
	timeout := fs.Duration("timeout", 40*time.Second, "give up on the admin listener after this `duration`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("mfa: unexpected argument %q", fs.Arg(0))
	case *profile == "":
		return errors.New("mfa: --profile is required: the AWS profile whose mfa_serial the code is for")
	}
	c := *code
	if c == "" {
		var err error
		if c, err = readMFACode(stdin, stderr, *profile); err != nil {
			return err
		}
	}
	ok, err := postMFA(ctx, adminURL(*admin), *timeout, handlers.MFARequest{Profile: *profile, Code: c})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "MFA session of profile %s (%s) started; it lasts until %s\n", ok.Profile, ok.Serial, ok.Expiration.UTC().Format(time.RFC3339))
	if len(ok.Tenants) > 0 {
		fmt.Fprintf(stdout, "refreshing the credentials of: %s\n", strings.Join(ok.Tenants, ", "))
	} else {
		fmt.Fprintln(stdout, "no tenant uses it now")
	}
	return nil
}

// readMFACode prompts on stderr and reads one line.
func readMFACode(stdin io.Reader, stderr io.Writer, profile string) (string, error) {
	fmt.Fprintf(stderr, "MFA code for profile %s: ", profile)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", errors.New("mfa: no code read from the terminal; give it with --code")
	}
	if c := strings.TrimSpace(line); c != "" {
		return c, nil
	}
	return "", errors.New("mfa: no code given")
}

// postMFA sends the code; the answer's failure message is the error.
func postMFA(ctx context.Context, base string, timeout time.Duration, req handlers.MFARequest) (handlers.MFAAccepted, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := json.Marshal(req)
	if err != nil {
		return handlers.MFAAccepted{}, err
	}
	u := base + "/mfa"
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return handlers.MFAAccepted{}, fmt.Errorf("mfa: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	// The admin listener is local: no proxy from the environment applies.
	c := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(hr)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said below, and it holds no code
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", timeout)
		}
		return handlers.MFAAccepted{}, fmt.Errorf("mfa: cannot reach the admin listener at %s: %w; "+
			"is imds-proxy running with server.admin_listen there? Choose the address with --admin or %s", base, err, adminEnv)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return handlers.MFAAccepted{}, fmt.Errorf("mfa: POST %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var f handlers.MFAFailure
		if json.Unmarshal(b, &f) == nil && f.Message != "" {
			return handlers.MFAAccepted{}, fmt.Errorf("mfa: %s: %s", f.Code, f.Message)
		}
		return handlers.MFAAccepted{}, fmt.Errorf("mfa: POST %s: %s (an imds-proxy without POST /mfa, or not imds-proxy?)", u, resp.Status)
	}
	var ok handlers.MFAAccepted
	if err := json.Unmarshal(b, &ok); err != nil {
		return handlers.MFAAccepted{}, fmt.Errorf("mfa: POST %s: not an imds-proxy answer: %w", u, err)
	}
	return ok, nil
}
