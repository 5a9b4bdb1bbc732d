package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit statuses: what main returns for the error run returns, so that a
// script or a service manager can tell a typo from a bad file from a
// failure at run time.
const (
	exitFailure = 1  // anything else: a listener that cannot bind, AWS, ...
	exitUsage   = 2  // an unknown flag or command, a bad argument
	exitConfig  = 78 // EX_CONFIG (sysexits.h): the configuration is invalid
)

// usageError is a command line that cannot be run as typed.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef is a usageError with a message.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// configError is a configuration that cannot be served: a file that does
// not read, decode or validate, or seed flags that describe no valid tenant.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// exitCode maps the error run returned to the process's exit status.
func exitCode(err error) int {
	var u usageError
	var c configError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return exitUsage
	case errors.As(err, &c):
		return exitConfig
	}
	return exitFailure
}

// errHelpShown is parseArgs' answer to --help: the usage is printed and
// the command has nothing left to do.
var errHelpShown = errors.New("help shown")

// parseArgs parses a command's flags. --help prints the command's usage on
// stdout (it was asked for) and returns errHelpShown; a bad flag is a
// usageError naming the help to read, on one line, rather than the whole
// usage dumped on stderr.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	usage := fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return errHelpShown
	case err != nil:
		help := "imds-proxy --help"
		if c := commandOf(fs); c != "" {
			help = "imds-proxy help " + c
		}
		return usagef("%w (%s lists the flags)", err, help)
	}
	return nil
}
