package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

const eventsConfig = `
tenants:
  - name: web
    sources: [10.0.0.1]
    events:
      - {type: spot-interruption, action: terminate, after: 2m}
      - {type: rebalance-recommendation, after: 1m}
      - {type: maintenance, code: system-reboot, after: 1m, starts: 10m, window: 20m}
      - {type: autoscaling, state: Terminated, after: 3m}
  - name: worker
    sources: [10.0.0.2]
`

func get(t *testing.T, h http.Handler, src, path string) (int, string) {
	t.Helper()
	w := serve(h, http.MethodGet, "/latest/meta-data/"+path, src+":4000")
	return w.Code, w.Body.String()
}

// TestEventsFromConfig: each event answers 404 until its notice, then the
// user guide's document; the listings follow; another tenant sees none.
func TestEventsFromConfig(t *testing.T) {
	srv, clock := newServer(t, eventsConfig, handlers.Options{})
	for _, p := range []string{"spot/instance-action", "spot/termination-time", "events/recommendations/rebalance", "autoscaling/target-lifecycle-state"} {
		if code, body := get(t, srv, "10.0.0.1", p); code != 404 {
			t.Errorf("%s before its notice: %d %q, want 404", p, code, body)
		}
	}
	if _, body := get(t, srv, "10.0.0.1", "instance-life-cycle"); body != "spot" {
		t.Errorf("instance-life-cycle = %q, want spot: a spot interruption is scheduled", body)
	}
	if _, body := get(t, srv, "10.0.0.1", "events/maintenance/scheduled"); body != "[]" {
		t.Errorf("maintenance before its notice = %q, want []", body)
	}

	clock.Advance(3 * time.Minute)
	want := map[string]string{
		"spot/instance-action":               `{"action": "terminate", "time": "2024-05-01T12:04:00Z"}`,
		"spot/termination-time":              "2024-05-01T12:04:00Z",
		"events/recommendations/rebalance":   `{"noticeTime": "2024-05-01T12:01:00Z"}`,
		"autoscaling/target-lifecycle-state": "Terminated",
	}
	for p, w := range want {
		if code, body := get(t, srv, "10.0.0.1", p); code != 200 || body != w {
			t.Errorf("%s = %d %q, want %q", p, code, body, w)
		}
	}
	_, sched := get(t, srv, "10.0.0.1", "events/maintenance/scheduled")
	maint := regexp.MustCompile(`(?s)^\[ \{\n  "NotBefore" : "1 May 2024 12:11:00 GMT",\n  "Code" : "system-reboot",\n  "Description" : "scheduled reboot",\n  "EventId" : "instance-event-[0-9a-f]{17}",\n  "NotAfter" : "1 May 2024 12:31:00 GMT",\n  "State" : "active"\n\} \]$`)
	if !maint.MatchString(sched) {
		t.Errorf("maintenance/scheduled = %q, want %s", sched, maint)
	}
	_, list := get(t, srv, "10.0.0.1", "")
	for _, d := range []string{"spot/", "autoscaling/", "events/"} {
		if !strings.Contains("\n"+list+"\n", "\n"+d+"\n") {
			t.Errorf("meta-data/ listing lacks %s:\n%s", d, list)
		}
	}
	if _, l := get(t, srv, "10.0.0.1", "events/recommendations/"); l != "rebalance" {
		t.Errorf("events/recommendations/ = %q", l)
	}

	clock.Advance(30 * time.Minute)
	if _, s := get(t, srv, "10.0.0.1", "events/maintenance/scheduled"); s != "[]" {
		t.Errorf("scheduled after the window = %q, want []", s)
	}
	if _, h := get(t, srv, "10.0.0.1", "events/maintenance/history"); !strings.Contains(h, `"State" : "completed"`) {
		t.Errorf("history after the window = %q, want the event completed", h)
	}

	// Only the named tenant sees its events.
	for _, p := range []string{"spot/instance-action", "events/recommendations/rebalance", "autoscaling/target-lifecycle-state"} {
		if code, _ := get(t, srv, "10.0.0.2", p); code != 404 {
			t.Errorf("worker sees web's %s: %d", p, code)
		}
	}
	if _, l := get(t, srv, "10.0.0.2", ""); strings.Contains(l, "spot/") {
		t.Errorf("worker's listing has spot/:\n%s", l)
	}
	if !srv.ClearEvents("web") {
		t.Fatal("ClearEvents(web) = false")
	}
	if code, _ := get(t, srv, "10.0.0.1", "spot/instance-action"); code != 404 {
		t.Errorf("spot/instance-action after ClearEvents: %d, want 404", code)
	}
}

// TestTerminationHandlerPolls is what a spot termination handler does: a
// GET every 2 s with an IMDSv2 token. A spot interruption scheduled 5 s
// ahead is seen within one poll of its notice. The clock is the server's,
// advanced by the test: no sleep.
func TestTerminationHandlerPolls(t *testing.T) {
	srv, clock := newServer(t, eventsConfig, handlers.Options{})
	e, err := tenants.NewEvent(tenants.EventConfig{Type: tenants.SpotInterruption, After: tenants.Duration(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	se, ok := srv.AddEvent("worker", e)
	if !ok {
		t.Fatal("AddEvent(worker) = false")
	}
	const poll = 2 * time.Second
	tok := mint(t, srv, "10.0.0.2:4000", "21600")
	for elapsed := time.Duration(0); ; elapsed += poll {
		w := serve(srv, http.MethodGet, "/latest/meta-data/spot/instance-action", "10.0.0.2:4000", headerToken, tok)
		if w.Code == http.StatusOK {
			now := clock.Now()
			if now.Before(se.Notice) || now.Sub(se.Notice) >= poll {
				t.Errorf("seen at %v, notice at %v: not within one poll", now, se.Notice)
			}
			if want := `{"action": "terminate", "time": "` + se.Notice.Add(2*time.Minute).UTC().Format(time.RFC3339) + `"}`; w.Body.String() != want {
				t.Errorf("instance-action = %s, want %s", w.Body, want)
			}
			return
		}
		if w.Code != http.StatusNotFound || elapsed > time.Minute {
			t.Fatalf("poll at +%v: %d %s", elapsed, w.Code, w.Body)
		}
		clock.Advance(poll)
	}
}

func adminRequest(h http.Handler, method, path, host, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr, r.Host = "127.0.0.1:5000", host
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestAdminEvents: POST schedules an event for the named tenant only,
// GET lists it, DELETE clears it; the admin listener's checks hold.
func TestAdminEvents(t *testing.T) {
	srv, clock := newServer(t, eventsConfig, handlers.Options{})
	h := srv.Admin()
	const host = "127.0.0.1:9180"
	refused := []struct {
		name, method, path, host, body string
		hdr                            []string
		status                         int
	}{
		{"unknown tenant", "POST", "/tenants/nope/events", host, `{"type":"spot-interruption"}`, nil, 404},
		{"bad type", "POST", "/tenants/worker/events", host, `{"type":"meteor"}`, nil, 400},
		{"bad duration", "POST", "/tenants/worker/events", host, `{"type":"spot-interruption","in":"30"}`, nil, 400},
		{"unknown field", "POST", "/tenants/worker/events", host, `{"type":"spot-interruption","at":"now"}`, nil, 400},
		{"not JSON", "POST", "/tenants/worker/events", host, `type=x`, []string{"Content-Type", "text/plain"}, 415},
		{"cross-site", "POST", "/tenants/worker/events", host, `{"type":"spot-interruption"}`, []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"cross-site delete", "DELETE", "/tenants/web/events", host, ``, []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"rebinding host", "POST", "/tenants/worker/events", "evil.example", `{"type":"spot-interruption"}`, nil, 403},
	}
	for _, tc := range refused {
		if w := adminRequest(h, tc.method, tc.path, tc.host, tc.body, tc.hdr...); w.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, w.Code, w.Body, tc.status)
		}
	}
	if es, _ := srv.Events("worker"); len(es) != 0 {
		t.Fatalf("refused requests scheduled %v", es)
	}

	w := adminRequest(h, "POST", "/tenants/worker/events", host, `{"type":"spot-interruption","action":"stop","in":"30s"}`)
	var reply handlers.EventsReply
	if err := json.Unmarshal(w.Body.Bytes(), &reply); w.Code != 200 || err != nil || len(reply.Events) != 1 || reply.Events[0].Active ||
		!reply.Events[0].Time.Equal(launch.Add(30*time.Second+2*time.Minute)) {
		t.Fatalf("POST = %d %s (%v)", w.Code, w.Body, err)
	}
	clock.Advance(30 * time.Second)
	if code, body := get(t, srv, "10.0.0.2", "spot/instance-action"); code != 200 || body != `{"action": "stop", "time": "2024-05-01T12:02:30Z"}` {
		t.Errorf("worker's instance-action = %d %q", code, body)
	}
	if code, _ := get(t, srv, "10.0.0.2", "spot/termination-time"); code != 404 {
		t.Errorf("termination-time of a stop: %d, want 404", code)
	}
	if code, _ := get(t, srv, "10.0.0.1", "spot/instance-action"); code != 404 {
		t.Errorf("web sees worker's event: %d", code)
	}
	if w := adminRequest(h, "GET", "/tenants/worker/events", host, ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"active": true`) {
		t.Errorf("GET = %d %s", w.Code, w.Body)
	}
	if w := adminRequest(h, "DELETE", "/tenants/worker/events", host, ""); w.Code != 200 {
		t.Errorf("DELETE = %d %s", w.Code, w.Body)
	}
	if code, _ := get(t, srv, "10.0.0.2", "spot/instance-action"); code != 404 {
		t.Errorf("instance-action after DELETE: %d, want 404", code)
	}
}

// TestStatusEvents: /status.json lists each tenant's events, pending then
// active, and [] for a tenant without; the page shows them on one line each.
func TestStatusEvents(t *testing.T) {
	srv, clock := newServer(t, eventsConfig, handlers.Options{})
	status := func() handlers.Status {
		t.Helper()
		w := serve(srv.Admin(), "GET", "/status.json", "127.0.0.1:1")
		var st handlers.Status
		if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
			t.Fatalf("status.json: %v\n%s", err, w.Body)
		}
		return st
	}
	st := status()
	if len(st.Tenants) != 2 || len(st.Tenants[0].Events) != 4 || st.Tenants[1].Events == nil || len(st.Tenants[1].Events) != 0 {
		t.Fatalf("events in status: %+v", st.Tenants)
	}
	spot := st.Tenants[0].Events[0]
	if spot.Type != "spot-interruption" || spot.Action != "terminate" || spot.Active ||
		!spot.Notice.Equal(launch.Add(2*time.Minute)) || !spot.Time.Equal(launch.Add(4*time.Minute)) {
		t.Errorf("spot interruption in status: %+v", spot)
	}
	if got := spot.String(); got != "spot-interruption terminate at 12:04:00Z (pending)" {
		t.Errorf("spot interruption shown as %q", got)
	}
	clock.Advance(2 * time.Minute)
	st = status()
	if got := st.Tenants[0].Events[0].String(); got != "spot-interruption terminate at 12:04:00Z (active)" {
		t.Errorf("spot interruption at its notice shown as %q", got)
	}
	if got := st.Tenants[0].Events[3].String(); got != "autoscaling Terminated at 12:03:00Z (pending)" {
		t.Errorf("autoscaling event shown as %q", got)
	}
	if w := serve(srv.Admin(), "GET", "/status.json", "127.0.0.1:1"); !strings.Contains(w.Body.String(), `"events": []`) {
		t.Errorf("a tenant without events has no \"events\": []:\n%s", w.Body)
	}
	page := serve(srv.Admin(), "GET", "/status", "127.0.0.1:1").Body.String()
	if !strings.Contains(page, "<th>Events</th>") || !strings.Contains(page, "spot-interruption terminate at 12:04:00Z (active)<br>rebalance-recommendation at 12:01:00Z (active)") {
		t.Errorf("status page lacks the events:\n%s", page)
	}
}

// TestReloadReplacesConfiguredEvents: a reload that changes a tenant's
// events: list schedules the new list from the reload and drops the old
// one's events; an event added through the admin listener stays; an
// unchanged list keeps its events where they were.
func TestReloadReplacesConfiguredEvents(t *testing.T) {
	srv, clock := newServer(t, eventsConfig, handlers.Options{})
	if _, ok := srv.AddEvent("web", tenants.Event{Type: tenants.RebalanceRecommendation, After: time.Hour}); !ok {
		t.Fatal("AddEvent(web) = false")
	}
	load := func(config string) []handlers.ScheduledEvent {
		t.Helper()
		if err := srv.Load(parseConfig(t, config)); err != nil {
			t.Fatal(err)
		}
		es, _ := srv.Events("web")
		return es
	}
	clock.Advance(time.Minute)
	if es := load(eventsConfig); len(es) != 5 || !es[0].Notice.Equal(launch.Add(2*time.Minute)) {
		t.Fatalf("an unchanged list moved or lost events: %+v", es)
	}
	changed := strings.Replace(eventsConfig, `
      - {type: spot-interruption, action: terminate, after: 2m}
      - {type: rebalance-recommendation, after: 1m}
      - {type: maintenance, code: system-reboot, after: 1m, starts: 10m, window: 20m}
      - {type: autoscaling, state: Terminated, after: 3m}`, `
      - {type: spot-interruption, action: stop, after: 30s}`, 1)
	es := load(changed)
	if len(es) != 2 || es[0].Type != tenants.RebalanceRecommendation || !es[0].Notice.Equal(launch.Add(time.Hour)) ||
		es[1].Action != "stop" || !es[1].Notice.Equal(launch.Add(time.Minute+30*time.Second)) {
		t.Fatalf("after the change: %+v; want the admin listener's event and the new spot interruption, 30s after the reload", es)
	}
	clock.Advance(30 * time.Second)
	if code, body := get(t, srv, "10.0.0.1", "spot/instance-action"); code != 200 || body != `{"action": "stop", "time": "2024-05-01T12:03:30Z"}` {
		t.Errorf("instance-action after the reload = %d %q", code, body)
	}
	if code, _ := get(t, srv, "10.0.0.1", "autoscaling/target-lifecycle-state"); code != 404 {
		t.Errorf("the removed autoscaling event still answers: %d", code)
	}
	noEvents := strings.Replace(changed, "    events:\n      - {type: spot-interruption, action: stop, after: 30s}\n", "", 1)
	if es := load(noEvents); len(es) != 1 || es[0].Type != tenants.RebalanceRecommendation {
		t.Fatalf("events: removed: %+v; want only the admin listener's event", es)
	}
	if es, _ := srv.Events("worker"); len(es) != 0 {
		t.Errorf("worker has events: %+v", es)
	}
}

// TestSpotNoticeStaysAfterTheInterruption: the proxy has no instance to
// stop, so once a spot interruption's time has passed the tenant is served
// on, the notice still there with its time, as EC2 leaves it until the
// instance is gone (docs/operations.md, "Lifecycle events").
func TestSpotNoticeStaysAfterTheInterruption(t *testing.T) {
	srv, clock := newServer(t, eventsConfig, handlers.Options{})
	for _, after := range []time.Duration{4 * time.Minute, 5 * time.Minute, time.Hour, 72 * time.Hour} {
		clock.Advance(after - clock.Now().Sub(launch))
		want := map[string]string{
			"spot/instance-action":  `{"action": "terminate", "time": "2024-05-01T12:04:00Z"}`,
			"spot/termination-time": "2024-05-01T12:04:00Z",
			"instance-life-cycle":   "spot",
			"instance-action":       "none",
		}
		for p, w := range want {
			if code, body := get(t, srv, "10.0.0.1", p); code != http.StatusOK || body != w {
				t.Errorf("+%v: %s = %d %q, want %q", after, p, code, body, w)
			}
		}
		if code, _ := get(t, srv, "10.0.0.1", "instance-id"); code != http.StatusOK {
			t.Errorf("+%v: instance-id = %d: the tenant must still be served", after, code)
		}
	}
}
