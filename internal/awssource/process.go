package awssource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// The SDK runs a profile's credential_process with the proxy's own stderr
// (for MFA prompts at a terminal) and offers no option to change that: a
// failing helper's message, which may quote a token, a key or the user,
// would land raw on the daemon's stderr, outside the structured log and its
// redaction. So the proxy runs the helpers the SDK resolved itself, the
// way the SDK does (processcreds: `sh -c`, the proxy's environment, its
// timeout, its output parsing), with stderr captured into the error, which
// is logged redacted. The SDK still decides everything else: which
// profile's helper, and every role assumed on top of it.

// processHelpers are the credential_process commands of one profile's
// chain, as the shared config gives them.
type processHelpers struct {
	own    string            // feeds the profile's credentials directly
	byRole map[string]string // feeds the sts:AssumeRole of the role ARN
}

// maxChain bounds the walk of source_profile links; the SDK refuses loops.
const maxChain = 32

// helpersOf finds the commands that feed a profile's credentials: the
// profile's own credential_process when it assumes no role, and for each
// role the chain assumes, the credential_process of the profile whose
// credentials call sts:AssumeRole (its source_profile without a role of its
// own, or the profile itself without a source_profile).
func helpersOf(sc *config.SharedConfig) processHelpers {
	h := processHelpers{byRole: map[string]string{}}
	if sc.RoleARN == "" && sc.Source == nil {
		h.own = sc.CredentialProcess
	}
	ambiguous := map[string]bool{}
	for l, depth := sc, 0; l != nil && depth < maxChain; l, depth = l.Source, depth+1 {
		if l.RoleARN == "" {
			continue
		}
		src := l
		if l.Source != nil {
			src = l.Source
		}
		cmd := ""
		if src == l || src.RoleARN == "" {
			cmd = src.CredentialProcess
		}
		// A role assumed twice in one chain from different helpers cannot
		// be told apart by its ARN: the SDK's own helper runs then.
		if prev, ok := h.byRole[l.RoleARN]; ok && prev != cmd {
			ambiguous[l.RoleARN] = true
		}
		h.byRole[l.RoleARN] = cmd
	}
	for arn := range ambiguous {
		delete(h.byRole, arn)
	}
	return h
}

// isProcess reports whether the SDK resolved p to a credential_process
// helper: only then is it replaced, so that whatever the SDK preferred
// (static keys beside a helper, environment credentials) stays.
func isProcess(p aws.CredentialsProvider) bool {
	return p != nil && aws.IsCredentialsProvider(p, &processcreds.Provider{})
}

// replaceOwn runs the profile's own helper with its stderr captured.
func (h processHelpers) replaceOwn(cfg *aws.Config) {
	if h.own != "" && isProcess(cfg.Credentials) {
		cfg.Credentials = aws.NewCredentialsCache(processHelper{command: h.own})
	}
}

// signAssumeRole is an stscreds option: where a role of the chain is
// assumed with a helper's credentials, the helper runs with its stderr
// captured.
func (h processHelpers) signAssumeRole(o *stscreds.AssumeRoleOptions) {
	cmd := h.byRole[o.RoleARN]
	c, ok := o.Client.(*sts.Client)
	if cmd == "" || !ok || !isProcess(c.Options().Credentials) {
		return
	}
	o.Client = helperSigned{AssumeRoleAPIClient: c, creds: aws.NewCredentialsCache(processHelper{command: cmd})}
}

// helperSigned calls AssumeRole with a helper's credentials in place of the
// client's own.
type helperSigned struct {
	stscreds.AssumeRoleAPIClient
	creds aws.CredentialsProvider
}

func (s helperSigned) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	optFns = append(optFns[:len(optFns):len(optFns)], func(o *sts.Options) { o.Credentials = s.creds })
	return s.AssumeRoleAPIClient.AssumeRole(ctx, in, optFns...)
}

// processHelper is one credential_process command, run as processcreds runs
// it but with stderr captured and an empty stdin: a daemon has no one to
// answer a prompt, and a helper waiting for an answer would hold a refresh
// until the SDK's timeout.
type processHelper struct{ command string }

// maxHelperStderr is how much of a helper's stderr is kept: its first lines
// say what went wrong.
const maxHelperStderr = 4 << 10

func (h processHelper) Retrieve(ctx context.Context) (aws.Credentials, error) {
	stderr := &cappedBuffer{max: maxHelperStderr}
	p := processcreds.NewProviderCommand(processcreds.NewCommandBuilderFunc(func(ctx context.Context) (*exec.Cmd, error) {
		cmd := shellCommand(ctx, h.command)
		cmd.Env = os.Environ()
		cmd.Stderr = stderr
		return cmd, nil
	}))
	c, err := p.Retrieve(ctx)
	if err != nil {
		return c, &HelperError{Stderr: tenants.Redact(oneLine(stderr.String())), Err: err}
	}
	return c, nil
}

// oneLine joins a helper's lines with " | ", for a log field.
func oneLine(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " | ")
}

// shellCommand runs command through the shell, as processcreds does.
func shellCommand(ctx context.Context, command string) *exec.Cmd {
	if runtime.GOOS == "windows" {
		return exec.CommandContext(ctx, "cmd.exe", "/C", command)
	}
	return exec.CommandContext(ctx, "sh", "-c", command)
}

// HelperError is a credential_process helper's failure with what it wrote
// to stderr, redacted.
type HelperError struct {
	Stderr string
	Err    error
}

func (e *HelperError) Error() string {
	if e.Stderr == "" {
		return "credential_process (nothing on stderr): " + e.Err.Error()
	}
	// Stderr first: tenants.Redact cuts everything after the SDK's quote
	// of the helper's stdout ("parse failed of process output: …").
	return fmt.Sprintf("credential_process wrote to stderr [%s]: %v", e.Stderr, e.Err)
}

func (e *HelperError) Unwrap() error { return e.Err }

func isHelperError(err error) bool {
	var he *HelperError
	return errors.As(err, &he)
}

// cappedBuffer keeps the first max bytes written to it and drops the rest;
// it never fails a write, so a chatty helper is not killed by a full pipe.
// exec copies a helper's stderr from a goroutine, hence the lock.
type cappedBuffer struct {
	mu      sync.Mutex
	max     int
	b       []byte
	dropped bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.b); room < len(p) {
		c.b = append(c.b, p[:max(room, 0)]...)
		c.dropped = true
	} else {
		c.b = append(c.b, p...)
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped {
		return string(c.b) + " [cut]"
	}
	return string(c.b)
}
