package handlers_test

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// TestMirroredTenantServesInstanceEvents: a mirrored tenant serves its
// live instance's scheduled events (active ones scheduled, completed and
// canceled ones in history) in the IMDS document, before the events of its
// own, which keep their schedule.
func TestMirroredTenantServesInstanceEvents(t *testing.T) {
	config := mirrorConfig + `    events:
      - {type: maintenance, code: instance-reboot, after: 1m, starts: 10m, window: 20m}
`
	srv, clock := newServer(t, config, handlers.Options{})
	date := func(s string) time.Time {
		d, err := time.Parse("2 Jan 2006 15:04:05 MST", s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	copied := parseConfig(t, config).Tenants[0].WithMirror(&tenants.Mirrored{
		Instance: tenants.Instance{ID: "i-0123456789abcdef0", Region: "eu-west-1"},
		IMDS:     tenants.IMDSOptions{Enabled: true, HopLimit: 1},
		Events: []tenants.InstanceEvent{
			{ID: "instance-event-0123456789abcdef0", Code: "system-maintenance", Description: "scheduled maintenance",
				NotBefore: date("7 Jan 2019 10:00:00 GMT"), NotAfter: date("7 Jan 2019 12:00:00 GMT"), State: tenants.EventCanceled},
			{ID: "instance-event-0a1b2c3d4e5f60718", Code: "instance-retirement", Description: "The instance is running on degraded hardware",
				NotBefore: date("14 Jan 2019 08:00:00 GMT"), State: tenants.EventCompleted},
			{ID: "instance-event-0d59937288b749b32", Code: "system-reboot", Description: "scheduled reboot",
				NotBefore: date("21 Jan 2019 09:00:43 GMT"), NotAfter: date("21 Jan 2019 09:17:23 GMT"),
				NotBeforeDeadline: date("31 Jan 2019 09:00:43 GMT"), State: tenants.EventActive},
		},
	})
	if !srv.Publish("web", copied) {
		t.Fatal("Publish(web) = false")
	}
	const live = `{
  "NotBefore" : "21 Jan 2019 09:00:43 GMT",
  "Code" : "system-reboot",
  "Description" : "scheduled reboot",
  "EventId" : "instance-event-0d59937288b749b32",
  "NotAfter" : "21 Jan 2019 09:17:23 GMT",
  "NotBeforeDeadline" : "31 Jan 2019 09:00:43 GMT",
  "State" : "active"
}`
	const history = `[ {
  "NotBefore" : "7 Jan 2019 10:00:00 GMT",
  "Code" : "system-maintenance",
  "Description" : "scheduled maintenance",
  "EventId" : "instance-event-0123456789abcdef0",
  "NotAfter" : "7 Jan 2019 12:00:00 GMT",
  "State" : "canceled"
}, {
  "NotBefore" : "14 Jan 2019 08:00:00 GMT",
  "Code" : "instance-retirement",
  "Description" : "The instance is running on degraded hardware",
  "EventId" : "instance-event-0a1b2c3d4e5f60718",
  "State" : "completed"
} ]`
	check := func(when, path, want string) {
		t.Helper()
		if code, body := get(t, srv, "10.0.0.1", path); code != http.StatusOK || body != want {
			t.Errorf("%s, %s = %d\n%s\nwant\n%s", when, path, code, body, want)
		}
	}
	check("before the tenant's own notice", "events/maintenance/scheduled", "[ "+live+" ]")
	check("before the tenant's own notice", "events/maintenance/history", history)

	// The tenant's own event joins the instance's from its notice on.
	clock.Advance(2 * time.Minute)
	_, body := get(t, srv, "10.0.0.1", "events/maintenance/scheduled")
	both := regexp.MustCompile(`^\[ ` + regexp.QuoteMeta(live) + `, \{\n  "NotBefore" : "1 May 2024 12:11:00 GMT",\n  "Code" : "instance-reboot",(?s:.*)"State" : "active"\n\} \]$`)
	if !both.MatchString(body) {
		t.Errorf("scheduled with the tenant's own event =\n%s\nwant the instance's, then the tenant's", body)
	}
	check("after the tenant's own notice", "events/maintenance/history", history)

}
