package handlers

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// EventRequest is the body of POST /tenants/{name}/events: the keys of a
// configured event, with durations as Go writes them ("30s") and In for
// after.
type EventRequest struct {
	Type   string `json:"type"`
	Action string `json:"action,omitempty"`
	State  string `json:"state,omitempty"`
	Code   string `json:"code,omitempty"`
	In     string `json:"in,omitempty"`
	Starts string `json:"starts,omitempty"`
	Window string `json:"window,omitempty"`
}

// EventView is an event as the admin listener shows it.
type EventView struct {
	Type   string    `json:"type"`
	Action string    `json:"action,omitempty"`
	State  string    `json:"state,omitempty"`
	Code   string    `json:"code,omitempty"`
	ID     string    `json:"event_id,omitempty"`
	Notice time.Time `json:"notice"`
	Time   time.Time `json:"time"` // the interruption, the window's opening; else the notice
	Active bool      `json:"active"`
}

// EventsReply answers the events endpoints.
type EventsReply struct {
	Tenant string      `json:"tenant"`
	Events []EventView `json:"events"`
}

const eventBodyLimit = 4 << 10

// String is an event on one line, as the status page and `imds-proxy
// status` show it: "spot-interruption terminate at 12:04:00Z (active)".
func (v EventView) String() string {
	var b strings.Builder
	b.WriteString(v.Type)
	if d := v.Detail(); d != "" {
		b.WriteString(" " + d)
	}
	b.WriteString(" at " + v.Time.UTC().Format("15:04:05Z"))
	if v.Active {
		b.WriteString(" (active)")
	} else {
		b.WriteString(" (pending)")
	}
	return b.String()
}

// Detail is what sets an event apart from others of its type: a spot
// interruption's action, a maintenance's code, an Auto Scaling state.
func (v EventView) Detail() string {
	switch v.Type {
	case tenants.SpotInterruption:
		return v.Action
	case tenants.Maintenance:
		return v.Code
	case tenants.AutoScaling:
		return v.State
	}
	return ""
}

// eventViews shows es as at now; never nil, so that JSON says [].
func eventViews(es []ScheduledEvent, now time.Time) []EventView {
	out := make([]EventView, 0, len(es))
	for _, e := range es {
		at := e.Notice
		if e.Type == tenants.SpotInterruption || e.Type == tenants.Maintenance {
			at = e.Time()
		}
		out = append(out, EventView{Type: e.Type, Action: e.Action, State: e.State, Code: e.Code, ID: e.ID,
			Notice: e.Notice, Time: at, Active: !now.Before(e.Notice)})
	}
	return out
}

func (s *Server) eventsReply(name string) (EventsReply, bool) {
	es, ok := s.Events(name)
	if !ok {
		return EventsReply{}, false
	}
	return EventsReply{Tenant: name, Events: eventViews(es, s.opts.Now())}, true
}

func (s *Server) handleEventsGet(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	reply, ok := s.eventsReply(name)
	if !ok {
		writeJSON(w, http.StatusNotFound, MFAFailure{"NoSuchTenant", "no tenant is named " + name})
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// handleEventsPost schedules an event for a tenant. As for POST /mfa, only
// a program may send one: nothing a browser marks, a JSON body.
func (s *Server) handleEventsPost(w http.ResponseWriter, r *http.Request) {
	if fromBrowser(r) {
		writeJSON(w, http.StatusForbidden, MFAFailure{"Forbidden", "events are triggered with `imds-proxy event`, never from a web page"})
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, MFAFailure{"BadRequest", `send application/json: {"type": "spot-interruption", "in": "30s"}`})
		return
	}
	var req EventRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, eventBodyLimit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, MFAFailure{"BadRequest", `send {"type": "spot-interruption", "in": "30s"}: ` + err.Error()})
		return
	}
	c := tenants.EventConfig{Type: req.Type, Action: req.Action, State: req.State, Code: req.Code}
	for _, d := range []struct {
		key string
		s   string
		to  *tenants.Duration
	}{{"in", req.In, &c.After}, {"starts", req.Starts, &c.Starts}, {"window", req.Window, &c.Window}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, MFAFailure{"BadRequest", d.key + ": " + d.s + " is not a duration such as 30s or 2m"})
			return
		}
		*d.to = tenants.Duration(v)
	}
	e, err := tenants.NewEvent(c)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, MFAFailure{"BadRequest", err.Error()})
		return
	}
	name := chi.URLParam(r, "name")
	se, ok := s.AddEvent(name, e)
	if !ok {
		writeJSON(w, http.StatusNotFound, MFAFailure{"NoSuchTenant", "no tenant is named " + name})
		return
	}
	s.log.Info().Str("tenant", name).Str("event", e.Type).Time("notice", se.Notice).Msg("event scheduled")
	reply, _ := s.eventsReply(name)
	writeJSON(w, http.StatusOK, reply)
}

func (s *Server) handleEventsDelete(w http.ResponseWriter, r *http.Request) {
	if fromBrowser(r) {
		writeJSON(w, http.StatusForbidden, MFAFailure{"Forbidden", "events are cleared with `imds-proxy event clear`, never from a web page"})
		return
	}
	name := chi.URLParam(r, "name")
	if !s.ClearEvents(name) {
		writeJSON(w, http.StatusNotFound, MFAFailure{"NoSuchTenant", "no tenant is named " + name})
		return
	}
	s.log.Info().Str("tenant", name).Msg("events cleared")
	writeJSON(w, http.StatusOK, EventsReply{Tenant: name, Events: []EventView{}})
}
