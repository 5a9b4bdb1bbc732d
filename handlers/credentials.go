package handlers

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// CredentialDocuments are a tenant's credentials, rendered once per refresh for
// each endpoint that serves them.
type CredentialDocuments struct {
	IMDS       []byte // iam/security-credentials/<role>
	Expiration time.Time
	Retrieved  time.Time
	AccountID  string
	KeyID      string // masked access key id, for logs and status

	imdsLength []string // Content-Length of IMDS, rendered with it

	// The container endpoint's document is rendered on its first
	// request: most tenants are never asked there, and with a role of its
	// own each tenant has documents of its own, about 1.1 KB each with a
	// session token of STS's length. It is made from the values IMDS
	// holds, at these spans, already JSON strings.
	key, secret, token span
	containerOnce      sync.Once
	container          []byte

	// infoHead is iam/info's document up to the instance profile, which
	// is the same for every tenant served these credentials: their time
	// and nothing of the tenant's. Set from the first tenant's document
	// rendered with them; each tenant keeps only the rest (renderedInfo).
	infoOnce sync.Once
	infoHead []byte
}

// iamInfoProfile is where iam/info's document turns to the tenant's
// instance profile: the bytes before it are the credentials' alone.
var iamInfoProfile = []byte(`  "InstanceProfileArn" : `)

// infoTail is the tenant's part of body, iam/info as rendered with d: the
// bytes past the head every tenant served d shares; false when body does
// not start with that head.
func (d *CredentialDocuments) infoTail(body []byte) ([]byte, bool) {
	d.infoOnce.Do(func() {
		if i := bytes.Index(body, iamInfoProfile); i >= 0 {
			d.infoHead = bytes.Clone(body[:i+len(iamInfoProfile)])
		}
	})
	head := d.infoHead
	if len(head) == 0 || !bytes.HasPrefix(body, head) {
		return nil, false
	}
	return bytes.Clone(body[len(head):]), true
}

// span is where a value lies in a document.
type span struct{ start, end int32 }

// RenderCredentials renders credentials in the document IMDS serves; the
// container endpoint's is rendered from it when first asked
// (ContainerDocument).
func RenderCredentials(c tenants.Credentials) *CredentialDocuments {
	fields := []field{
		str("Code", "Success"),
		str("LastUpdated", imdsTime(c.Retrieved)),
		str("Type", "AWS-HMAC"),
		str("AccessKeyId", c.AccessKeyID),
		str("SecretAccessKey", c.SecretAccessKey),
		str("Token", c.SessionToken),
		str("Expiration", imdsTime(c.Expiration)),
	}
	spans := valueSpans(fields)
	imds := document(fields...)
	return &CredentialDocuments{
		IMDS:       imds,
		imdsLength: []string{strconv.Itoa(len(imds))},
		Expiration: c.Expiration,
		Retrieved:  c.Retrieved,
		AccountID:  c.AccountID,
		KeyID:      tenants.MaskKeyID(c.AccessKeyID),
		key:        spans[3],
		secret:     spans[4],
		token:      spans[5],
	}
}

// ContainerDocument is the credentials as the container credentials
// endpoint serves them.
func (d *CredentialDocuments) ContainerDocument() []byte {
	d.containerOnce.Do(func() {
		value := func(s span) []byte { return d.IMDS[s.start:s.end] }
		fields := []field{
			{"AccessKeyId", value(d.key)},
			{"SecretAccessKey", value(d.secret)},
			{"Token", value(d.token)},
			str("Expiration", d.Expiration.UTC().Format(time.RFC3339)),
		}
		if d.AccountID != "" {
			fields = append(fields, str("AccountId", d.AccountID))
		}
		d.container = document(fields...)
	})
	return d.container
}

// CredentialStore vends tenants' credentials. Implementations answer from
// memory once warm: a request must never wait on AWS for long.
type CredentialStore interface {
	// Credentials returns the tenant's current credentials, or an error
	// answered in IMDS's failure shape (a *tenants.UpstreamError
	// chooses its Code and Message).
	Credentials(ctx context.Context, t *tenants.Tenant) (*CredentialDocuments, error)
}

func (s *Server) credentials(ctx context.Context, t *tenants.Tenant) (*CredentialDocuments, error) {
	if s.opts.Credentials == nil {
		return nil, &tenants.UpstreamError{Code: "CredentialsUnavailable",
			Message: "imds-proxy has no credential source configured"}
	}
	return s.opts.Credentials.Credentials(ctx, t)
}

func (s *Server) serveCredentials(x *exchange, r *http.Request) {
	c, err := s.credentials(r.Context(), x.site.tenant)
	if err != nil {
		x.reply(http.StatusOK, textPlainHeader, failureDocument(err, s.opts.Now()))
		return
	}
	if c.imdsLength == nil { // made by hand, not by RenderCredentials
		x.reply(http.StatusOK, textPlainHeader, c.IMDS)
		return
	}
	x.replyLength(http.StatusOK, textPlainHeader, c.IMDS, c.imdsLength)
}

// serveIAMInfo renders iam/info with the account the credentials belong to,
// once known, so the instance profile ARN names the right account.
func (s *Server) serveIAMInfo(x *exchange, r *http.Request) {
	c, err := s.credentials(r.Context(), x.site.tenant)
	if err != nil {
		c = nil // answered from the configuration, rendered each time: rare
	}
	if info := x.view.info.Load(); info != nil && c != nil && info.docs == c {
		x.replyLength(http.StatusOK, textPlainHeader, c.infoHead, info.length)
		_, _ = x.Write(info.tail)
		return
	}
	body := iamInfoDocument(x.view.tenant, c)
	if c != nil {
		// Rendered once per refresh of the credentials: the next request
		// serves these bytes.
		if tail, ok := c.infoTail(body); ok {
			x.view.info.Store(&renderedInfo{docs: c, tail: tail, length: []string{strconv.Itoa(len(body))}})
		}
	}
	x.reply(http.StatusOK, textPlainHeader, body)
}

// renderedInfo is iam/info as rendered for one set of credentials: what
// follows the head they share with every tenant served them
// (CredentialDocuments.infoHead), about 100 bytes instead of 190.
type renderedInfo struct {
	docs   *CredentialDocuments
	tail   []byte
	length []string // the Content-Length of the whole, rendered once
}

// iamInfoDocument is iam/info for t, naming the account and the time of
// c, or of t's own identity when c is nil.
func iamInfoDocument(t *tenants.Tenant, c *CredentialDocuments) []byte {
	account, updated := t.Instance.AccountID, t.Instance.PendingTime
	if c != nil {
		updated = c.Retrieved
		if c.AccountID != "" {
			account = c.AccountID
		}
	}
	return document(
		str("Code", "Success"),
		str("LastUpdated", imdsTime(updated)),
		str("InstanceProfileArn", t.Role.InstanceProfileARNIn(account)),
		str("InstanceProfileId", t.Role.InstanceProfileID),
	)
}

// failureDocument is IMDS's answer when it has no credentials to give: 200,
// and a Code other than Success that every SDK treats as an error.
func failureDocument(err error, now time.Time) []byte {
	ce := upstreamError(err)
	return document(
		str("Code", ce.Code),
		str("LastUpdated", imdsTime(now)),
		str("Message", ce.Message),
	)
}

// upstreamError is the code and message err is answered with: its own when
// it is a *tenants.UpstreamError, otherwise that credentials are not ready.
func upstreamError(err error) *tenants.UpstreamError {
	var ce *tenants.UpstreamError
	if !errors.As(err, &ce) {
		ce = &tenants.UpstreamError{Code: "CredentialsNotReady",
			Message: "credentials are being fetched; retry in a moment"}
	}
	return ce
}
