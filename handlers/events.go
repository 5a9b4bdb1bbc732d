package handlers

import (
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// ScheduledEvent is a lifecycle event at its absolute time: its notice
// appears in the tenant's metadata at Notice.
type ScheduledEvent struct {
	tenants.Event
	Notice time.Time
	ID     string // maintenance: the EventId
	// configured: scheduled from the tenant's events: list, which a reload
	// that changes the list replaces; else added through the admin listener.
	configured bool
}

// Time is when a spot interruption happens, a maintenance window opens.
func (e ScheduledEvent) Time() time.Time {
	if e.Type == tenants.SpotInterruption {
		return e.Notice.Add(tenants.SpotWarning)
	}
	return e.Notice.Add(e.Starts)
}

// eventBoard holds one tenant's events. It lives as long as the tenant's
// name is configured, across reloads. It is made when the tenant's first
// event is: a nil board has none.
type eventBoard struct {
	mu     sync.Mutex
	events []ScheduledEvent
	// config is the events: list the configured events were scheduled
	// from: a reload compares it with the new one.
	config []tenants.Event
	gen    uint64 // bumped at every change: the key of the rendered catalogue
	// cat is the catalogue last rendered with events, for key.
	key string
	cat *catalogue
}

func (b *eventBoard) add(es ...ScheduledEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, es...)
	b.gen++
}

// configure schedules the tenant's events: list at now when it differs
// from the list last scheduled (on the first call, whenever it is not
// empty): the events scheduled from the previous list give way to it,
// those added through the admin listener stay. An unchanged list keeps its
// events where they are, so a reload does not move a notice.
func (b *eventBoard) configure(config []tenants.Event, now time.Time, rnd io.Reader) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if slices.Equal(b.config, config) {
		return
	}
	b.events = slices.DeleteFunc(b.events, func(e ScheduledEvent) bool { return e.configured })
	for _, e := range scheduleEvents(config, now, rnd) {
		e.configured = true
		b.events = append(b.events, e)
	}
	b.config = slices.Clone(config)
	b.gen++
}

func (b *eventBoard) clear() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events, b.cat, b.key = nil, nil, ""
	b.gen++
}

func (b *eventBoard) list() []ScheduledEvent {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.events)
}

// catalogue is base with the events visible at now; base itself when none
// is known (b nil included). A catalogue is rendered again only when what
// is visible changes.
func (b *eventBoard) catalogue(v *view, now time.Time) *catalogue {
	if b == nil {
		return v.catalogue()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.events) == 0 {
		return v.catalogue()
	}
	var key strings.Builder
	fmt.Fprintf(&key, "%p/%d", v, b.gen)
	for _, e := range b.events {
		key.WriteString(eventPhase(e, now))
	}
	if b.cat == nil || b.key != key.String() {
		b.cat, b.key = buildCatalogueAt(v.tenant, v.lazy.signer, v.lazy.shapes, b.events, now), key.String()
	}
	return b.cat
}

// eventPhase says how an event shows at now: not yet, announced, over.
func eventPhase(e ScheduledEvent, now time.Time) string {
	switch {
	case now.Before(e.Notice):
		return "p"
	case e.Type == tenants.Maintenance && !now.Before(e.Time().Add(e.Window)):
		return "d"
	}
	return "a"
}

// Time formats of the event documents, as the EC2 user guide shows them.
const (
	spotTimeFormat        = "2006-01-02T15:04:05Z"
	maintenanceTimeFormat = "2 Jan 2006 15:04:05 GMT"
)

// addEvents adds to c the paths the events visible at now answer. A
// mirrored instance's own scheduled events (live) come first in the
// maintenance lists, as EC2 last reported them, then the tenant's own.
func (c tree) addEvents(in *tenants.Instance, live []tenants.InstanceEvent, events []ScheduledEvent, now time.Time) {
	md := func(p string, v string) { c.text("meta-data/"+p, v) }
	var scheduled, history []string
	for _, e := range live {
		if e.State == tenants.EventActive {
			scheduled = append(scheduled, maintenanceDoc(e))
		} else {
			history = append(history, maintenanceDoc(e))
		}
	}
	for _, e := range events {
		if e.Type == tenants.SpotInterruption {
			md("instance-life-cycle", "spot") // known ahead: the instance is a spot one
		}
		phase := eventPhase(e, now)
		if phase == "p" {
			continue
		}
		switch e.Type {
		case tenants.SpotInterruption:
			// Shown from the notice on, past the interruption too: the
			// proxy does not stop serving the tenant (docs/operations.md).
			at := e.Time().UTC().Format(spotTimeFormat)
			md("spot/instance-action", fmt.Sprintf(`{"action": %q, "time": %q}`, e.Action, at))
			if e.Action == "terminate" {
				md("spot/termination-time", at)
			}
		case tenants.RebalanceRecommendation:
			md("events/recommendations/rebalance", fmt.Sprintf(`{"noticeTime": %q}`, e.Notice.UTC().Format(spotTimeFormat)))
		case tenants.AutoScaling:
			md("autoscaling/target-lifecycle-state", e.State)
		case tenants.Maintenance:
			if phase == "d" {
				history = append(history, maintenanceDoc(e.instanceEvent(tenants.EventCompleted)))
			} else {
				scheduled = append(scheduled, maintenanceDoc(e.instanceEvent(tenants.EventActive)))
			}
		}
	}
	if scheduled != nil {
		md("events/maintenance/scheduled", "[ "+strings.Join(scheduled, ", ")+" ]")
	}
	if history != nil {
		md("events/maintenance/history", "[ "+strings.Join(history, ", ")+" ]")
	}
}

// instanceEvent is a maintenance event as EC2 would report it, in state.
func (e ScheduledEvent) instanceEvent(state string) tenants.InstanceEvent {
	from := e.Time().UTC()
	return tenants.InstanceEvent{ID: e.ID, Code: e.Code, Description: maintenanceDescription(e.Code),
		NotBefore: from, NotAfter: from.Add(e.Window), State: state}
}

// maintenanceDoc is one entry of events/maintenance/scheduled or history.
// NotAfter and NotBeforeDeadline are left out when EC2 does not say them.
func maintenanceDoc(e tenants.InstanceEvent) string {
	q := strconv.Quote
	at := func(t time.Time) string { return q(t.UTC().Format(maintenanceTimeFormat)) }
	var b strings.Builder
	fmt.Fprintf(&b, "{\n  \"NotBefore\" : %s,\n  \"Code\" : %s,\n  \"Description\" : %s,\n  \"EventId\" : %s,\n",
		at(e.NotBefore), q(e.Code), q(e.Description), q(e.ID))
	if !e.NotAfter.IsZero() {
		fmt.Fprintf(&b, "  \"NotAfter\" : %s,\n", at(e.NotAfter))
	}
	if !e.NotBeforeDeadline.IsZero() {
		fmt.Fprintf(&b, "  \"NotBeforeDeadline\" : %s,\n", at(e.NotBeforeDeadline))
	}
	fmt.Fprintf(&b, "  \"State\" : %s\n}", q(e.State))
	return b.String()
}

func maintenanceDescription(code string) string {
	switch code {
	case "system-reboot":
		return "scheduled reboot"
	case "instance-reboot":
		return "scheduled instance reboot"
	case "instance-retirement":
		return "The instance is running on degraded hardware"
	case "instance-stop":
		return "The instance is scheduled to stop"
	}
	return "scheduled maintenance"
}

// scheduleEvents places events relative to now; maintenance events get an
// EventId from rnd, in EC2's shape.
func scheduleEvents(events []tenants.Event, now time.Time, rnd io.Reader) []ScheduledEvent {
	out := make([]ScheduledEvent, 0, len(events))
	for _, e := range events {
		se := ScheduledEvent{Event: e, Notice: now.Add(e.After).Truncate(time.Second)}
		if e.Type == tenants.Maintenance {
			var b [9]byte
			_, _ = io.ReadFull(rnd, b[:]) // a short read leaves zeros: still a valid id
			se.ID = "instance-event-" + hex.EncodeToString(b[:])[:17]
		}
		out = append(out, se)
	}
	return out
}

// Events are a tenant's lifecycle events, ok false when no tenant has the
// name.
func (s *Server) Events(name string) (events []ScheduledEvent, ok bool) {
	si := s.state.Load().site(name)
	if si == nil {
		return nil, false
	}
	return si.kept.events.Load().list(), true
}

// AddEvent schedules e for the tenant named, After from now.
func (s *Server) AddEvent(name string, e tenants.Event) (ScheduledEvent, bool) {
	si := s.state.Load().site(name)
	if si == nil {
		return ScheduledEvent{}, false
	}
	se := scheduleEvents([]tenants.Event{e}, s.opts.Now(), s.opts.Rand)[0]
	si.kept.board().add(se)
	return se, true
}

// ClearEvents forgets the tenant's events, pending and announced.
func (s *Server) ClearEvents(name string) bool {
	si := s.state.Load().site(name)
	if si == nil {
		return false
	}
	si.kept.events.Load().clear()
	return true
}
