package docker

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Watcher keeps the set of running containers current from the engine's
// event stream. A container is reported only while it runs: on die, stop
// or destroy it goes at once, before anything else is asked of the engine,
// so that its address, once reused, never serves it.
type Watcher struct {
	// Client reaches the engine.
	Client *Client
	// Log receives connection problems, with what to do about them.
	Log zerolog.Logger
	// Changed receives every running container after each change, in no
	// particular order, from Run's goroutine. While the engine cannot be
	// reached it is called with none: containers not seen running are
	// not served.
	Changed func([]Container)
	// MinBackoff and MaxBackoff bound the wait before reconnecting. If
	// zero, 250ms and 30s.
	MinBackoff, MaxBackoff time.Duration
}

// Run follows the engine until ctx ends, reconnecting with backoff.
func (w *Watcher) Run(ctx context.Context) {
	minB, maxB := w.MinBackoff, w.MaxBackoff
	if minB <= 0 {
		minB = 250 * time.Millisecond
	}
	if maxB <= 0 {
		maxB = 30 * time.Second
	}
	backoff := minB
	var lastProblem string
	for {
		s := &session{w: w, running: map[string]Container{}}
		err := s.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if s.reported {
			w.Changed(nil) // fail closed until the engine is listed again
		}
		if s.connected {
			backoff = minB
		}
		problem := Explain(w.Client.Socket(), err)
		e := w.Log.Debug()
		if problem != lastProblem || s.connected {
			e = w.Log.Warn()
		}
		lastProblem = problem
		e.Err(err).Str("socket", w.Client.Socket()).Dur("retry_in_ms", backoff).Msg(problem)

		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxB)
	}
}

// session is one connection to the engine: the events, then the list.
type session struct {
	w         *Watcher
	running   map[string]Container
	connected bool // the engine answered
	reported  bool // Changed was called
}

func (s *session) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := s.w.Client.Events(ctx)
	if err != nil {
		return err
	}
	defer events.Close()
	s.connected = true
	ids, err := s.w.Client.Running(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.inspect(ctx, id); err != nil {
			return err
		}
	}
	s.report()
	s.w.Log.Info().Str("socket", s.w.Client.Socket()).Int("running", len(s.running)).Msg("following Docker containers")
	for {
		ev, err := events.Next()
		if err != nil {
			return err
		}
		changed, err := s.apply(ctx, ev)
		if err != nil {
			return err
		}
		if changed {
			s.report()
		}
	}
}

// apply updates the running containers from one event.
func (s *session) apply(ctx context.Context, ev Event) (bool, error) {
	id := ev.Container()
	if id == "" {
		return false, nil
	}
	before, had := s.running[id]
	switch ev.Type + " " + ev.Action {
	case "container die", "container stop", "container destroy":
		delete(s.running, id)
	case "container start", "container kill", "container rename", "network connect", "network disconnect":
		if err := s.inspect(ctx, id); err != nil {
			return false, err
		}
	default:
		return false, nil
	}
	after, has := s.running[id]
	changed := had != has || (has && !reflect.DeepEqual(before, after))
	if changed {
		s.w.Log.Debug().Str("container", strings.TrimPrefix(cmp.Or(after.Name, before.Name), "/")).Str("event", ev.Type+" "+ev.Action).
			Bool("running", has).Interface("addrs", after.Addrs).Msg("container changed")
	}
	return changed, nil
}

func (s *session) inspect(ctx context.Context, id string) error {
	ct, running, err := s.w.Client.Inspect(ctx, id)
	if err != nil {
		return err
	}
	if running {
		s.running[id] = ct
	} else {
		delete(s.running, id)
	}
	return nil
}

func (s *session) report() {
	out := make([]Container, 0, len(s.running))
	for _, ct := range s.running {
		out = append(out, ct)
	}
	slices.SortFunc(out, func(a, b Container) int { return strings.Compare(a.ID, b.ID) })
	s.reported = true
	s.w.Changed(out)
}
