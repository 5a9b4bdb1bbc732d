package handlers

import (
	"cmp"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// StatusSource reports the state of what a tenant depends on. Implementations
// answer from memory.
type StatusSource interface {
	TenantState(t *tenants.Tenant) TenantState
}

// TenantState is what a tenant's readiness depends on.
type TenantState struct {
	Credentials *CredentialState // nil: the tenant has no role
	Mirror      *MirrorState     // nil: the tenant mirrors nothing
}

// CredentialState describes a tenant's credentials, never their secrets.
type CredentialState struct {
	Valid      bool      `json:"valid"`
	KeyID      string    `json:"key_id,omitempty"` // masked to its last 4 characters
	Expiration time.Time `json:"expiration,omitzero"`
	Refreshed  time.Time `json:"last_refresh,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	Fetches    int64     `json:"fetches"`
	Failures   int64     `json:"failures"`
}

// MirrorState describes a mirrored tenant's mirror.
type MirrorState struct {
	Mirrored  bool      `json:"mirrored"`
	Instance  string    `json:"instance,omitempty"`
	Refreshed time.Time `json:"last_refresh,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// Problem is one reason a tenant is not ready.
type Problem struct {
	Tenant string `json:"tenant"`
	What   string `json:"what"` // credentials | mirror
	Reason string `json:"reason"`
}

func (s *Server) tenantState(si *site) TenantState {
	if s.opts.Status == nil {
		return TenantState{}
	}
	return s.opts.Status.TenantState(si.tenant)
}

// problems lists why a tenant is not ready: no valid credentials for a
// tenant with a role, no successful mirror for a mirrored tenant.
func problems(si *site, st TenantState) []Problem {
	var out []Problem
	if c := st.Credentials; c != nil && !c.Valid {
		reason := c.LastError
		if reason == "" {
			reason = "not fetched yet"
		}
		out = append(out, Problem{si.tenant.Name, "credentials", reason})
	}
	if m := st.Mirror; m != nil && !m.Mirrored {
		reason := m.LastError
		if reason == "" {
			reason = "not mirrored yet"
		}
		out = append(out, Problem{si.tenant.Name, "mirror", reason})
	}
	return out
}

// TenantStatus is one row of /status.
type TenantStatus struct {
	Name             string           `json:"name"`
	Sources          []string         `json:"sources"`
	InstanceID       string           `json:"instance_id"`
	AvailabilityZone string           `json:"availability_zone"`
	Role             string           `json:"role,omitempty"`
	IMDS             string           `json:"imds"` // optional | required | disabled
	Tokens           int              `json:"tokens_live"`
	Ready            bool             `json:"ready"`
	Problems         []Problem        `json:"problems,omitempty"`
	Credentials      *CredentialState `json:"credentials,omitempty"`
	Mirror           *MirrorState     `json:"mirror,omitempty"`
	// Events are the tenant's lifecycle events, pending and active, as
	// GET /tenants/{name}/events lists them.
	Events []EventView `json:"events"`
}

// Status is the body of /status.json.
type Status struct {
	Generated time.Time      `json:"generated"`
	Tenants   []TenantStatus `json:"tenants"`
}

// Status reports every tenant as served now.
func (s *Server) Status() Status {
	now := s.opts.Now()
	out := Status{Generated: now.UTC()}
	for _, si := range s.state.Load().ordered {
		v := si.view.Load()
		st := s.tenantState(si)
		ts := TenantStatus{
			Name:             si.tenant.Name,
			InstanceID:       v.tenant.Instance.ID,
			AvailabilityZone: v.tenant.Instance.AvailabilityZone,
			IMDS:             v.tenant.IMDS.Mode(),
			Tokens:           si.kept.tokens.Load().Len(),
			Problems:         problems(si, st),
			Credentials:      st.Credentials,
			Mirror:           st.Mirror,
			Events:           eventViews(si.kept.events.Load().list(), now),
		}
		ts.Ready = len(ts.Problems) == 0
		for _, p := range si.tenant.Sources {
			ts.Sources = append(ts.Sources, p.String())
		}
		if v.tenant.Role != nil {
			ts.Role = v.tenant.Role.Name
		}
		out.Tenants = append(out.Tenants, ts)
	}
	return out
}

// Admin returns the admin listener's handler: /healthz (the process
// serves), /readyz (every tenant ready, else 503 and what is missing),
// /metrics (Prometheus), /status (HTML) and /status.json. Requests that
// name another host or come from another site's page answer 403
// (adminAllowed).
func (s *Server) Admin() http.Handler {
	routes := s.adminRoutes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.adminAllowed(r) {
			w.Header()["Content-Type"] = textPlainHeader
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte("forbidden: the Host names no address of this proxy, or another site's page sent the request\n"))
			return
		}
		routes.ServeHTTP(w, r)
	})
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header()["Content-Type"] = textPlainHeader
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) handleStatusJSON(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Status())
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	var missing []Problem
	for _, si := range s.state.Load().ordered {
		missing = append(missing, problems(si, s.tenantState(si))...)
	}
	if len(missing) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, struct {
			Ready   bool      `json:"ready"`
			Missing []Problem `json:"missing"`
		}{false, missing})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Ready bool `json:"ready"`
	}{true})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header()["Content-Type"] = jsonHeader
	w.Header()["Content-Length"] = []string{strconv.Itoa(len(b) + 1)}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// statusHead is the status page up to its table's rows.
const statusHead = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>imds-proxy status</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top;white-space:nowrap}
td.state{white-space:normal;max-width:28em}body{font-size:14px}
.ok{color:#060}.bad{color:#b00}</style></head><body>
`

// writeStatusPage renders the status page. It is written out rather than
// through html/template, whose reflection-driven method lookup makes the
// linker keep every method of every type in the binary (the EC2 client's
// some 700 operations: 20 MB); every value is escaped with
// html.EscapeString.
func writeStatusPage(w io.Writer, st Status) error {
	var b strings.Builder
	e := html.EscapeString
	b.WriteString(statusHead)
	fmt.Fprintf(&b, "<h1>imds-proxy</h1><p>Generated %s; %d tenants. <a href=\"status.json\">JSON</a></p>\n", when(st.Generated), len(st.Tenants))
	b.WriteString(`<table><thead><tr><th>Tenant</th><th>Sources</th><th>Instance</th><th>Zone</th><th>Role</th><th>IMDS</th>
<th>Credentials expire</th><th>Last refresh</th><th>Mirror</th><th>Tokens</th><th>Events</th><th>State</th></tr></thead><tbody>
`)
	for _, t := range st.Tenants {
		fmt.Fprintf(&b, `<tr id="tenant-%s"><td>%s</td><td>`, e(t.Name), e(t.Name))
		for _, src := range t.Sources {
			b.WriteString(e(src) + "<br>")
		}
		expires, refreshed, mirror := "-", "-", "-"
		if c := t.Credentials; c != nil {
			expires, refreshed = when(c.Expiration), when(c.Refreshed)
		}
		if m := t.Mirror; m != nil {
			mirror = "not yet"
			if m.Mirrored {
				mirror = e(m.Instance) + " at " + when(m.Refreshed)
			}
		}
		fmt.Fprintf(&b, "</td>\n<td>%s</td><td>%s</td><td>%s</td><td>%s</td>\n<td>%s</td>\n<td>%s</td>\n<td>%s</td>\n<td>%d</td>\n",
			e(t.InstanceID), e(t.AvailabilityZone), e(cmp.Or(t.Role, "-")), e(t.IMDS), expires, refreshed, mirror, t.Tokens)
		b.WriteString("<td>")
		for i, ev := range t.Events {
			if i > 0 {
				b.WriteString("<br>")
			}
			b.WriteString(e(ev.String()))
		}
		if len(t.Events) == 0 {
			b.WriteString("-")
		}
		b.WriteString("</td>\n")
		if t.Ready {
			b.WriteString(`<td class="state"><span class="ok">ready</span></td></tr>` + "\n")
			continue
		}
		b.WriteString(`<td class="state"><span class="bad">`)
		for _, p := range t.Problems {
			b.WriteString(e(p.What) + ": " + e(p.Reason) + "<br>")
		}
		b.WriteString("</span></td></tr>\n")
	}
	b.WriteString("</tbody></table></body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// when is a status time, "-" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (s *Server) handleStatusPage(w http.ResponseWriter, _ *http.Request) {
	w.Header()["Content-Type"] = []string{"text/html; charset=utf-8"}
	if err := writeStatusPage(w, s.Status()); err != nil {
		s.log.Error().Err(err).Msg("status page")
	}
}
