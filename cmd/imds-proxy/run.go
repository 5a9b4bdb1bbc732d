package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/internal/liveconfig"
)

// version is set at build time with -ldflags "-X main.version=..."; when
// it is not, the module version `go install ...@vX.Y.Z` records is used
// (versionString).
var version = ""

// run is the whole program: main only wires the process to it, so tests
// drive exactly what users run.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runWith(ctx, deps{}, args, getenv, stdout, stderr)
}

// deps are what the proxy reaches outside itself. Each nil field is the
// real thing; tests drive the whole serving path in process with fakes.
type deps struct {
	// profiles loads AWS profiles. If nil, an awssource.Loader's.
	profiles awssource.ProfileLoader
	// ec2 returns the EC2 API mirrors use. If nil, an awssource.Loader's.
	ec2 awssource.EC2Loader
	// kube connects to the Kubernetes API server of a kubernetes: block.
	// If nil, liveconfig.Connect (a kubeconfig, or the in-cluster service
	// account).
	kube liveconfig.ConnectKube
}

// runWith is run with its dependencies given.
func runWith(ctx context.Context, d deps, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return runCheck(ctx, args[1:], getenv, stdout, stderr)
		case "setup":
			return runSetup(args[1:], stdout, stderr)
		case "status":
			return runStatus(ctx, args[1:], getenv, stdout, stderr)
		case "event":
			return runEvent(ctx, args[1:], getenv, stdout, stderr)
		case "mfa":
			return runMFA(ctx, args[1:], getenv, stdout, stderr)
		case "health":
			return runHealth(ctx, args[1:], getenv, stdout, stderr)
		case "explain":
			return runExplain(ctx, args[1:], stdout, stderr)
		case "version":
			fmt.Fprintln(stdout, versionString())
			return nil
		case "help":
			return runHelp(ctx, d, args[1:], getenv, stdout, stderr)
		case "completion":
			return runCompletion(args[1:], stdout)
		case "man":
			return runMan(args[1:], stdout)
		}
	}
	o, err := parseFlags(args, getenv, stdout)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintln(stdout, versionString())
		return nil
	}
	loaded, err := loadConfig(ctx, o)
	if err != nil {
		return err
	}
	return serve(ctx, d, o, loaded, stderr)
}
