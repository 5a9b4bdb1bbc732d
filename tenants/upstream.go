package tenants

// UpstreamError is a failure to obtain something from AWS (credentials, a
// mirrored instance) as clients see it (Code, in IMDS's failure document)
// and as the operator must act on it (Message).
type UpstreamError struct {
	Code    string // e.g. AssumeRoleUnauthorizedAccess, InstanceNotFound
	Message string // what to do; names profiles, roles and keys to fix, never a secret
	Err     error  // the underlying cause, for the log only (see Cause)
}

func (e *UpstreamError) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Cause()
	}
	return e.Code + ": " + e.Message
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// Cause is the underlying error's text, redacted, for the log.
func (e *UpstreamError) Cause() string {
	if e.Err == nil {
		return ""
	}
	return Redact(e.Err.Error())
}

// Summary is what status pages and readiness show: code and message,
// never the cause.
func (e *UpstreamError) Summary() string { return e.Code + ": " + e.Message }
