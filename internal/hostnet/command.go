package hostnet

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Command is one ip or iptables invocation, program first.
type Command []string

// String quotes the arguments that need it, so that printed commands are a
// script a user can paste into a shell.
func (c Command) String() string {
	q := make([]string, len(c))
	for i, a := range c {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, shellSafe) == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellSafe are the bytes no shell gives a meaning to inside a word.
const shellSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./[]-"

// Runner runs commands on the host; tests substitute a fake.
type Runner interface {
	// Output runs a query, which changes nothing, and returns its standard
	// output. The error wraps exec.ErrNotFound when the program is not
	// installed.
	Output(c Command) ([]byte, error)
	// Run makes a change; the error carries what the command printed.
	Run(c Command) error
}

// Exec runs commands as child processes, never through a shell.
type Exec struct{}

// Output returns the command's standard output; a failing command's error
// carries its standard error.
func (Exec) Output(c Command) ([]byte, error) {
	out, err := exec.Command(c[0], c[1:]...).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && len(exit.Stderr) > 0 {
		err = fmt.Errorf("%s: %w: %s", c, err, strings.TrimSpace(string(exit.Stderr)))
	}
	return out, err
}

// Run runs the command; its error carries everything the command printed.
func (Exec) Run(c Command) error {
	out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", c, err, strings.TrimSpace(string(out)))
	}
	return nil
}
