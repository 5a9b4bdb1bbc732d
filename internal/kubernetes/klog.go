package kubernetes

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"github.com/rs/zerolog"
	"k8s.io/klog/v2"
)

// RouteLogs sends what client-go logs (through klog: a watch that failed,
// a token file it could not read) into log, from "kubernetes", with every
// message and value passed through redact first: klog would otherwise
// write it to stderr as it is, outside the structured log and whatever it
// quotes (an API server's error body, a URL) unredacted. Messages at
// klog's verbosity 0 are logged at info (errors at warn); klog's debug
// verbosities 1–4 only when log is at debug, and none above. klog is the
// process's: the last call's log and redact are the ones used.
func RouteLogs(log zerolog.Logger, redact func(string) string) {
	klogTarget.Store(&klogDest{log: log, redact: redact})
	klogOnce.Do(func() {
		// klog asks its own -v before the sink: let the sink decide.
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		_ = fs.Set("v", strconv.Itoa(maxKlogLevel))
		klog.SetLogger(logr.New(&klogSink{}))
	})
}

// klogDest is where klog's lines go now.
type klogDest struct {
	log    zerolog.Logger
	redact func(string) string
}

var (
	klogTarget atomic.Pointer[klogDest]
	klogOnce   sync.Once
)

// klogSink is a logr.LogSink over the zerolog logger of RouteLogs.
type klogSink struct {
	name   string
	values []any
}

// maxKlogLevel is the most verbose klog level logged, at debug.
const maxKlogLevel = 4

func (s *klogSink) Init(logr.RuntimeInfo) {}

func (s *klogSink) Enabled(level int) bool {
	d := klogTarget.Load()
	if level == 0 {
		return d.log.GetLevel() <= zerolog.InfoLevel
	}
	return level <= maxKlogLevel && d.log.GetLevel() <= zerolog.DebugLevel
}

func (s *klogSink) Info(level int, msg string, kv ...any) {
	d := klogTarget.Load()
	e := d.log.Info()
	if level > 0 {
		e = d.log.Debug()
	}
	s.send(d, e, msg, kv)
}

func (s *klogSink) Error(err error, msg string, kv ...any) {
	d := klogTarget.Load()
	e := d.log.Warn()
	if err != nil {
		e = e.Str("error", d.redact(err.Error()))
	}
	s.send(d, e, msg, kv)
}

func (s *klogSink) send(d *klogDest, e *zerolog.Event, msg string, kv []any) {
	if e == nil {
		return
	}
	e = e.Str("from", "kubernetes")
	if s.name != "" {
		e = e.Str("logger", s.name)
	}
	for _, kvs := range [2][]any{s.values, kv} {
		for i := 0; i+1 < len(kvs); i += 2 {
			key := fmt.Sprint(kvs[i])
			if key == "" || key == "level" || key == "message" || key == "time" {
				key = "k8s_" + key
			}
			e = e.Str(key, d.redact(value(kvs[i+1])))
		}
	}
	e.Msg(d.redact(strings.TrimSuffix(msg, "\n")))
}

// value is a logged value as text: errors and stringers as they say
// themselves, anything else as fmt prints it.
func value(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case error:
		return v.Error()
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(v)
}

func (s *klogSink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.values = append(append([]any(nil), s.values...), kv...)
	return &c
}

func (s *klogSink) WithName(name string) logr.LogSink {
	c := *s
	if c.name != "" {
		name = c.name + "/" + name
	}
	c.name = name
	return &c
}
