package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
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
	def := adminDefault(getenv)
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
	var ok handlers.MFAAccepted
	admc := adminClient{base: adminURL(*admin), timeout: *timeout, cmd: "mfa"}
	if err := admc.call(ctx, http.MethodPost, "/mfa", handlers.MFARequest{Profile: *profile, Code: c}, &ok); err != nil {
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
