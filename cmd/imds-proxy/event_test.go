package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// fakeEventsAdmin answers the admin listener's events endpoints and
// /status.json for the tenants web and worker, and records what was posted.
type fakeEventsAdmin struct {
	mu     sync.Mutex
	posted []handlers.EventRequest
	events map[string][]handlers.EventView
}

var eventNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func (f *fakeEventsAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if r.URL.Path == "/status.json" && r.Method == http.MethodGet {
		st := handlers.Status{Generated: eventNow}
		for _, name := range []string{"web", "worker"} {
			st.Tenants = append(st.Tenants, handlers.TenantStatus{Name: name, Events: append([]handlers.EventView{}, f.events[name]...)})
		}
		reply(http.StatusOK, st)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/tenants/")
	name, ok2 := strings.CutSuffix(name, "/events")
	if !ok || !ok2 {
		http.NotFound(w, r)
		return
	}
	if name != "web" && name != "worker" {
		reply(http.StatusNotFound, handlers.MFAFailure{Code: "NoSuchTenant", Message: "no tenant is named " + name})
		return
	}
	switch r.Method {
	case http.MethodPost:
		var req handlers.EventRequest
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&req) != nil {
			reply(http.StatusBadRequest, handlers.MFAFailure{Code: "BadRequest", Message: "bad body"})
			return
		}
		f.posted = append(f.posted, req)
		in, _ := time.ParseDuration(req.In)
		e := handlers.EventView{Type: req.Type, Action: req.Action, State: req.State, Code: req.Code,
			Notice: eventNow.Add(in), Time: eventNow.Add(in), Active: in == 0}
		if req.Type == "spot-interruption" {
			e.Time = e.Notice.Add(2 * time.Minute)
		}
		f.events[name] = append(f.events[name], e)
	case http.MethodDelete:
		delete(f.events, name)
	}
	reply(http.StatusOK, handlers.EventsReply{Tenant: name, Events: append([]handlers.EventView{}, f.events[name]...)})
}

func TestEventCommand(t *testing.T) {
	worker := []handlers.EventView{{Type: "maintenance", Code: "system-reboot", ID: "instance-event-0123456789abcdef0",
		Notice: eventNow.Add(-time.Minute), Time: eventNow.Add(9 * time.Minute), Active: true}}
	tests := []struct {
		name     string
		args     []string
		want     string                 // stdout, exactly; "" to skip
		wantErr  string                 // a substring of the error; "" for none
		exit     int                    // the exit status
		posted   *handlers.EventRequest // what reached the proxy
		nothing  bool                   // nothing may reach the proxy
		contains []string               // substrings of stdout
	}{
		{name: "spot interruption", args: []string{"spot-interruption", "--tenant", "web", "--in", "30s", "--action", "stop"},
			posted: &handlers.EventRequest{Type: "spot-interruption", Action: "stop", In: "30s"},
			want: "scheduled spot-interruption for web; its events:\n" +
				"TENANT  TYPE               DETAIL  NOTICE                TIME                  STATE    EVENT ID\n" +
				"web     spot-interruption  stop    2026-11-30T12:00:30Z  2026-11-30T12:02:30Z  pending  -\n"},
		{name: "flags before the type", args: []string{"--tenant", "web", "maintenance", "--code", "instance-stop", "--starts", "1h", "--window", "30m"},
			posted: &handlers.EventRequest{Type: "maintenance", Code: "instance-stop", Starts: "1h0m0s", Window: "30m0s"}},
		{name: "autoscaling", args: []string{"autoscaling", "--tenant", "web", "--state", "Terminated"},
			posted: &handlers.EventRequest{Type: "autoscaling", State: "Terminated"}, contains: []string{"web     autoscaling  Terminated  ", "  active  -\n"}},
		{name: "rebalance at once", args: []string{"rebalance-recommendation", "--tenant", "web"},
			posted: &handlers.EventRequest{Type: "rebalance-recommendation"}},
		{name: "list one tenant", args: []string{"list", "--tenant", "worker"},
			want: "TENANT  TYPE         DETAIL         NOTICE                TIME                  STATE   EVENT ID\n" +
				"worker  maintenance  system-reboot  2026-11-30T11:59:00Z  2026-11-30T12:09:00Z  active  instance-event-0123456789abcdef0\n"},
		{name: "list every tenant", args: []string{"list"}, contains: []string{"\nworker  maintenance"}},
		{name: "list none", args: []string{"list", "--tenant", "web"}, want: "no pending or active events\n"},
		{name: "clear", args: []string{"clear", "--tenant", "worker"}, want: "cleared the events of worker\n"},
		{name: "unknown tenant", args: []string{"spot-interruption", "--tenant", "nope"}, exit: exitFailure,
			wantErr: "event spot-interruption: NoSuchTenant: no tenant is named nope"},

		{name: "no type", args: []string{"--tenant", "web"}, exit: exitUsage, nothing: true,
			wantErr: "event: want a type (spot-interruption, rebalance-recommendation, maintenance, autoscaling), list or clear"},
		{name: "unknown type", args: []string{"meteor", "--tenant", "web"}, exit: exitUsage, nothing: true, wantErr: `unknown type "meteor"`},
		{name: "no tenant", args: []string{"spot-interruption"}, exit: exitUsage, nothing: true, wantErr: "--tenant is required"},
		{name: "clear without tenant", args: []string{"clear"}, exit: exitUsage, nothing: true, wantErr: "--tenant is required"},
		{name: "bad action", args: []string{"spot-interruption", "--tenant", "web", "--action", "explode"}, exit: exitUsage, nothing: true,
			wantErr: `--action: "explode": use terminate, stop or hibernate`},
		{name: "flag of another type", args: []string{"rebalance-recommendation", "--tenant", "web", "--action", "stop"}, exit: exitUsage,
			nothing: true, wantErr: "event rebalance-recommendation: --action does not apply"},
		{name: "in with clear", args: []string{"clear", "--tenant", "web", "--in", "1m"}, exit: exitUsage, nothing: true, wantErr: "--in does not apply"},
		{name: "autoscaling without state", args: []string{"autoscaling", "--tenant", "web"}, exit: exitUsage, nothing: true, wantErr: `--state: ""`},
		{name: "in the past", args: []string{"spot-interruption", "--tenant", "web", "--in", "-1m"}, exit: exitUsage, nothing: true, wantErr: "--in: -1m0s is in the past"},
		{name: "stray argument", args: []string{"list", "web"}, exit: exitUsage, nothing: true, wantErr: `event list: unexpected argument "web"`},
		{name: "bad flag", args: []string{"list", "--bogus"}, exit: exitUsage, nothing: true, wantErr: "imds-proxy help event"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeEventsAdmin{events: map[string][]handlers.EventView{"worker": worker}}
			addr := statusServer(t, fake.ServeHTTP)
			var out, errOut bytes.Buffer
			getenv := func(k string) string {
				if k == adminEnv {
					return addr
				}
				return ""
			}
			err := run(t.Context(), append([]string{"event"}, tc.args...), getenv, &out, &errOut)
			if got := exitCode(err); got != tc.exit {
				t.Errorf("exit %d (%v), want %d", got, err, tc.exit)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if tc.want != "" && out.String() != tc.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), tc.want)
			}
			for _, s := range tc.contains {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if tc.posted != nil && (len(fake.posted) != 1 || fake.posted[0] != *tc.posted) {
				t.Errorf("posted %+v, want %+v", fake.posted, *tc.posted)
			}
			if tc.nothing && (len(fake.posted) != 0 || len(fake.events["worker"]) != 1) {
				t.Errorf("a refused command reached the proxy: %+v", fake.posted)
			}
		})
	}
}

// TestEventsCell: the status table's EVENTS cell.
func TestEventsCell(t *testing.T) {
	if got := eventsCell(nil); got != "-" {
		t.Errorf("no events: %q", got)
	}
	es := []handlers.EventView{{Type: "spot-interruption", Action: "terminate", Time: eventNow, Active: true},
		{Type: "rebalance-recommendation", Time: eventNow.Add(time.Hour)}}
	if got, want := eventsCell(es), "spot-interruption terminate at 12:00:00Z (active); rebalance-recommendation at 13:00:00Z (pending)"; got != want {
		t.Errorf("eventsCell = %q, want %q", got, want)
	}
}
