//go:build e2e

package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// TestE2EStatusCommand runs `imds-proxy status` against a running proxy,
// and against nothing.
func TestE2EStatusCommand(t *testing.T) {
	e2eLoopback(t)
	p := e2eStart(t, e2eEnv(t), "--config", e2eConfig(t), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")

	t.Run("table", func(t *testing.T) {
		code, out, errOut := e2eRun(t, "status", "--admin", p.adminAddr)
		if code != 0 {
			t.Fatalf("status = exit %d, stderr %q", code, errOut)
		}
		lines := strings.Split(out, "\n")
		if want := p.adminAddr + ": 3 tenants, 3 ready"; !strings.HasPrefix(lines[0], want) {
			t.Errorf("first line %q, want it to begin %q", lines[0], want)
		}
		if f := strings.Fields(lines[1]); strings.Join(f, " ") != "TENANT SOURCES INSTANCE ZONE ROLE IMDS CREDENTIALS MIRROR TOKENS READY EVENTS" {
			t.Errorf("header %q", lines[1])
		}
		for i, tn := range e2eTenants {
			imds := "optional"
			if tn.tokensRequired {
				imds = "required"
			}
			want := []string{tn.name, tn.src + "/32", tn.instanceID, tn.zone, "-", imds, "-", "-", "0", "yes", "-"}
			if got := strings.Fields(lines[2+i]); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("row %d = %q, want %q", i, got, want)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		code, out, errOut := e2eRun(t, "status", "--json", "--admin", p.adminAddr)
		if code != 0 {
			t.Fatalf("status --json = exit %d, stderr %q", code, errOut)
		}
		var st handlers.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Tenants) != len(e2eTenants) {
			t.Fatalf("status --json = %q (%v), want the status of %d tenants", out, err, len(e2eTenants))
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		code, out, errOut := e2eRun(t, "status", "--admin", addr)
		if code == 0 || out != "" || !strings.Contains(errOut, "imds-proxy: status: cannot reach the admin listener at http://"+addr) {
			t.Errorf("status of nothing = exit %d, stdout %q, stderr %q; want non-zero and a clear message", code, out, errOut)
		}
	})
	p.stop(t)
}
