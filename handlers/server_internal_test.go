package handlers

import (
	"testing"
	"time"
)

// TestDateHeader: the Date value reused within a second is the one
// net/http would write, and a new second gets its own.
func TestDateHeader(t *testing.T) {
	var d dateHeader
	base := time.Date(2026, 11, 30, 21, 0, 0, 0, time.FixedZone("CET", 3600))
	for _, at := range []time.Time{base, base.Add(999 * time.Millisecond), base.Add(time.Second), base.Add(-time.Hour)} {
		if got, want := d.at(at)[0], at.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT"); got != want {
			t.Errorf("at(%v) = %q, want %q", at, got, want)
		}
	}
}
