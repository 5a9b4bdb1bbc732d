package tenants

import (
	"regexp"
	"strings"
)

// Errors from the SDK are logged, and some quote what they failed on:
// credential_process's "parse failed of process output" quotes the whole
// output, keys included. Redact keeps such text out of the log.
var (
	secretField = regexp.MustCompile(`(?i)("?(?:secret_?access_?key|session_?token|token|password|client_?secret|access_?token|refresh_?token)"?\s*[:=]\s*)("[^"]*"|[^\s,}]+)`)
	keyID       = regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b`)
	// principal is an IAM user, an assumed role with its session or a
	// federated user: "User: arn:…:user/dev is not authorized" names the
	// operator (an SSO session name is often an e-mail address). The
	// account and the kind of principal stay, enough to see the wrong
	// account or a user where a role was meant; role ARNs, which name
	// what the configuration asks for, stay whole.
	principal = regexp.MustCompile(`\b(arn:aws[a-z-]*:(?:iam|sts)::\d{12}:(?:user|assumed-role|federated-user)/)[^\s"'(),;<>\[\]]+`)
	// longRun finds base64-looking runs as long as a secret access key (40)
	// or longer (session tokens); secretLike tells secrets from digests.
	longRun = regexp.MustCompile(`[A-Za-z0-9/+=]{40,}`)
)

// secretLike reports whether a long run looks like a key or a token: mixed
// upper case, lower case and digits, which neither hex digests nor words
// are, and not a file path (a run that begins with "/", such as a
// temporary directory's: paths in errors say what to fix).
func secretLike(s string) bool {
	if strings.HasPrefix(s, "/") {
		return false
	}
	var upper, lower, digit bool
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9':
			digit = true
		}
	}
	return upper && lower && digit
}

// processOutput is where the SDK starts quoting a credential process.
const processOutput = "process output"

// Redact returns upstream text fit to leave the process (a log line, a
// client's failure document, a status page): anything quoted after
// "process output" is cut, secret-looking fields and strings are blanked,
// access key ids are masked to their last four characters and principals'
// names (users, assumed roles and their sessions) are masked.
func Redact(s string) string {
	if i := strings.Index(s, processOutput); i >= 0 {
		s = s[:i+len(processOutput)] + " (not shown: it may hold credentials)"
	}
	s = secretField.ReplaceAllString(s, `${1}"[redacted]"`)
	s = keyID.ReplaceAllStringFunc(s, MaskKeyID)
	s = principal.ReplaceAllString(s, `${1}***`)
	return longRun.ReplaceAllStringFunc(s, func(run string) string {
		if secretLike(run) {
			return "[redacted]"
		}
		return run
	})
}
