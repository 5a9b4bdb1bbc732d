//go:build e2e

package main

import (
	"strings"
	"testing"
)

// TestE2EEventCommand: a spot interruption scheduled from the command line
// appears in its tenant's metadata only, event list and status show it,
// and event clear takes it away.
func TestE2EEventCommand(t *testing.T) {
	e2eLoopback(t)
	needCurl(t)
	p := e2eStart(t, e2eEnv(t), "--config", e2eConfig(t), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	web, worker := e2eTenants[0], e2eTenants[2] // both answer IMDSv1
	action := "http://" + p.imdsAddr + "/latest/meta-data/spot/instance-action"

	if code, _ := curlFrom(t, web.src, action); code != 404 {
		t.Fatalf("instance-action before any event: %d, want 404", code)
	}
	code, out, errOut := e2eRun(t, "event", "spot-interruption", "--tenant", web.name, "--action", "stop", "--admin", p.adminAddr)
	if code != 0 || !strings.Contains(out, "scheduled spot-interruption for "+web.name) {
		t.Fatalf("event spot-interruption = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, body := curlFrom(t, web.src, action); code != 200 || !strings.HasPrefix(body, `{"action": "stop", "time": "`) {
		t.Errorf("web's instance-action = %d %q, want the stop", code, body)
	}
	if code, _ := curlFrom(t, worker.src, action); code != 404 {
		t.Errorf("%s sees web's interruption: %d", worker.name, code)
	}
	code, out, errOut = e2eRun(t, "event", "list", "--admin", p.adminAddr)
	if rows := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(rows) != 2 ||
		strings.Join(strings.Fields(rows[1])[:3], " ") != web.name+" spot-interruption stop" || !strings.Contains(rows[1], " active ") {
		t.Errorf("event list = exit %d, stdout %q, stderr %q; want web's active interruption alone", code, out, errOut)
	}
	if code, out, _ := e2eRun(t, "status", "--admin", p.adminAddr); code != 0 || !strings.Contains(out, "spot-interruption stop at ") {
		t.Errorf("status = exit %d, %q; want the interruption in web's row", code, out)
	}
	if code, out, errOut := e2eRun(t, "event", "clear", "--tenant", web.name, "--admin", p.adminAddr); code != 0 || out != "cleared the events of "+web.name+"\n" {
		t.Errorf("event clear = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _ := curlFrom(t, web.src, action); code != 404 {
		t.Errorf("instance-action after event clear: %d, want 404", code)
	}
	if code, out, _ := e2eRun(t, "event", "list", "--tenant", web.name, "--admin", p.adminAddr); code != 0 || out != "no pending or active events\n" {
		t.Errorf("event list after clear = exit %d, %q", code, out)
	}
	if code, _, errOut := e2eRun(t, "event", "spot-interruption", "--admin", p.adminAddr); code != exitUsage || !strings.Contains(errOut, "--tenant is required") {
		t.Errorf("event without --tenant = exit %d, stderr %q; want 2", code, errOut)
	}
	p.stop(t)
}
