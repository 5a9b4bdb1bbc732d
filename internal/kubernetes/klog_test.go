package kubernetes

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"k8s.io/klog/v2"
)

// TestRouteLogs: what client-go logs through klog reaches the structured
// log, redacted, and klog's debug verbosities only a debug log.
func TestRouteLogs(t *testing.T) {
	redact := func(s string) string { return strings.ReplaceAll(s, "s3cret", "[redacted]") }
	for _, level := range []zerolog.Level{zerolog.InfoLevel, zerolog.DebugLevel} {
		var out bytes.Buffer
		RouteLogs(zerolog.New(&out).Level(level), redact)
		klog.ErrorS(errors.New("watch failed: token s3cret"), "Failed to watch", "reflector", "pods", "url", "https://api/?t=s3cret")
		klog.InfoS("starting reflector", "resource", "pods")
		klog.V(2).InfoS("chatty detail")
		klog.Flush()
		got := out.String()
		if strings.Contains(got, "s3cret") {
			t.Errorf("at %v: a secret reached the log:\n%s", level, got)
		}
		for _, want := range []string{
			`"level":"warn","error":"watch failed: token [redacted]","from":"kubernetes","reflector":"pods","url":"https://api/?t=[redacted]","message":"Failed to watch"`,
			`"level":"info","from":"kubernetes","resource":"pods","message":"starting reflector"`,
		} {
			if !strings.Contains(got, want) {
				t.Errorf("at %v: no %s in:\n%s", level, want, got)
			}
		}
		if detail := strings.Contains(got, "chatty detail"); detail != (level == zerolog.DebugLevel) {
			t.Errorf("at %v: klog's V(2) line logged: %v, want %v:\n%s", level, detail, level == zerolog.DebugLevel, got)
		}
	}
}
