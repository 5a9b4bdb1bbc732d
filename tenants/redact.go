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
)

// processOutput is where the SDK starts quoting a credential process.
const processOutput = "process output"

// Redact returns an error text fit for a log line: anything quoted after
// "process output" is cut, secret-looking fields are blanked and access key
// ids are masked to their last four characters.
func Redact(s string) string {
	if i := strings.Index(s, processOutput); i >= 0 {
		s = s[:i+len(processOutput)] + " (not shown: it may hold credentials)"
	}
	s = secretField.ReplaceAllString(s, `${1}"[redacted]"`)
	return keyID.ReplaceAllStringFunc(s, MaskKeyID)
}
