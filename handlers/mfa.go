package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// MFAAcceptor starts the MFA session of a profile with mfa_serial from a
// code an operator gives (POST /mfa on the admin listener). Its failures
// are *tenants.UpstreamError; a failure changes nothing.
type MFAAcceptor interface {
	AcceptMFA(ctx context.Context, profile, code string) (MFAAccepted, error)
}

// MFAAccepted is the answer to an accepted code.
type MFAAccepted struct {
	// Profile is the profile with the mfa_serial: the one asked for, or
	// the one its source_profile chain reaches.
	Profile    string    `json:"profile"`
	Serial     string    `json:"mfa_serial"`
	Expiration time.Time `json:"expiration"`
	// Tenants are refreshing their credentials now, with the session.
	Tenants []string `json:"tenants"`
}

// MFARequest is the body of POST /mfa.
type MFARequest struct {
	Profile string `json:"profile"`
	Code    string `json:"code"`
}

// MFAFailure is the body of a POST /mfa that failed.
type MFAFailure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// mfaBodyLimit bounds a POST /mfa body: a profile name and six digits.
const mfaBodyLimit = 4 << 10

// mfaTimeout bounds the sts:GetSessionToken a code is exchanged in.
const mfaTimeout = 30 * time.Second

// handleMFA takes an MFA code for a profile. Only a program may send one:
// on top of the admin listener's Host and cross-site checks, anything a
// browser marks is refused (the status page never posts), and the body
// must be JSON, which a page cannot send to another origin without a
// preflight. The code itself is never logged.
func (s *Server) handleMFA(w http.ResponseWriter, r *http.Request) {
	if fromBrowser(r) {
		writeJSON(w, http.StatusForbidden, MFAFailure{"Forbidden", "MFA codes are accepted from `imds-proxy mfa`, never from a web page"})
		return
	}
	if s.opts.MFA == nil {
		writeJSON(w, http.StatusNotFound, MFAFailure{"MFAUnavailable", "this server takes no MFA codes"})
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, MFAFailure{"BadRequest", "send application/json: {\"profile\": \"...\", \"code\": \"123456\"}"})
		return
	}
	var req MFARequest
	dec := json.NewDecoder(io.LimitReader(r.Body, mfaBodyLimit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || strings.TrimSpace(req.Profile) == "" || req.Code == "" {
		writeJSON(w, http.StatusBadRequest, MFAFailure{"BadRequest", "send {\"profile\": \"...\", \"code\": \"123456\"}, both set"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), mfaTimeout)
	defer cancel()
	ok, err := s.opts.MFA.AcceptMFA(ctx, req.Profile, req.Code)
	if err != nil {
		f := MFAFailure{Code: "CredentialsUnavailable", Message: "the MFA session could not be started; the imds-proxy log has the cause"}
		var ue *tenants.UpstreamError
		if errors.As(err, &ue) {
			f = MFAFailure{Code: ue.Code, Message: ue.Message}
		}
		e := s.log.Warn().Str("profile", req.Profile).Str("code", f.Code)
		if ue != nil && ue.Err != nil {
			e = e.Str("cause", ue.Cause())
		}
		e.Msg("MFA code not accepted: " + f.Message)
		writeJSON(w, mfaStatus(f.Code), f)
		return
	}
	s.log.Info().Str("profile", req.Profile).Str("mfa_profile", ok.Profile).Str("mfa_serial", ok.Serial).
		Time("expires", ok.Expiration).Strs("tenants", ok.Tenants).Msg("MFA session started; its tenants refresh now")
	writeJSON(w, http.StatusOK, ok)
}

// mfaStatus maps the code of a failed POST /mfa to its HTTP status.
func mfaStatus(code string) int {
	switch code {
	case "InvalidMFACode", "NoMFASerial":
		return http.StatusBadRequest
	case "ProfileNotFound":
		return http.StatusNotFound
	case "MFACodeRejected":
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadGateway
}
