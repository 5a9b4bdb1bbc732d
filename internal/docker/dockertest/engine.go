// Package dockertest is a fake Docker Engine API on a unix socket: the
// list, inspect and events calls the proxy makes, with containers a test
// starts and stops, each change written into the open event streams as
// the engine does.
package dockertest

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Container is a fake container. Networks maps a network's name to the
// container's addresses on it: an IPv4 and, optionally, an IPv6 one.
type Container struct {
	ID       string
	Name     string
	Labels   map[string]string
	Networks map[string][]string
	running  bool
}

// Engine is the fake engine. Its methods may be called from any goroutine.
type Engine struct {
	// Socket is the unix socket the engine listens on.
	Socket string

	mu         sync.Mutex
	containers map[string]*Container
	streams    map[*stream]bool
	requests   []string
}

type stream struct {
	events chan []byte
	done   chan struct{}
}

// New starts an engine on a socket in a temporary directory; it stops when
// the test ends.
func New(t testing.TB) *Engine {
	t.Helper()
	return Listen(t, filepath.Join(t.TempDir(), "docker.sock"))
}

// Listen starts an engine on the given socket path.
func Listen(t testing.TB, socket string) *Engine {
	t.Helper()
	e := &Engine{Socket: socket, containers: map[string]*Container{}, streams: map[*stream]bool{}}
	l, err := net.Listen("unix", e.Socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(e.serve)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		e.CloseStreams()
		_ = srv.Close()
	})
	return e
}

var versioned = regexp.MustCompile(`^/v[0-9.]+/`)

func (e *Engine) serve(w http.ResponseWriter, r *http.Request) {
	path := versioned.ReplaceAllString(r.URL.Path, "/")
	e.mu.Lock()
	e.requests = append(e.requests, r.Method+" "+path)
	e.mu.Unlock()
	switch {
	case r.Method != http.MethodGet:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "not faked"})
	case path == "/containers/json":
		writeJSON(w, http.StatusOK, e.list())
	case strings.HasPrefix(path, "/containers/") && strings.HasSuffix(path, "/json"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/containers/"), "/json")
		if in, ok := e.inspect(id); ok {
			writeJSON(w, http.StatusOK, in)
		} else {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "No such container: " + id})
		}
	case path == "/events":
		e.events(w, r)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type listed struct {
	ID     string `json:"Id"`
	Names  []string
	Labels map[string]string
	State  string
}

func (e *Engine) list() []listed {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []listed{}
	for _, c := range e.containers {
		if c.running {
			out = append(out, listed{ID: c.ID, Names: []string{"/" + c.Name}, Labels: c.Labels, State: "running"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

type network struct {
	IPAddress         string
	GlobalIPv6Address string
}

type inspected struct {
	ID              string `json:"Id"`
	Name            string
	Config          struct{ Labels map[string]string }
	State           struct{ Running bool }
	NetworkSettings struct{ Networks map[string]network }
}

func (e *Engine) inspect(id string) (inspected, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.containers[id]
	if c == nil {
		return inspected{}, false
	}
	in := inspected{ID: c.ID, Name: "/" + c.Name}
	in.Config.Labels = c.Labels
	in.State.Running = c.running
	in.NetworkSettings.Networks = map[string]network{}
	if c.running { // a stopped container keeps no address, as in Docker
		for name, addrs := range c.Networks {
			var n network
			for _, a := range addrs {
				if strings.Contains(a, ":") {
					n.GlobalIPv6Address = a
				} else {
					n.IPAddress = a
				}
			}
			in.NetworkSettings.Networks[name] = n
		}
	}
	return in, true
}

func (e *Engine) events(w http.ResponseWriter, r *http.Request) {
	var f struct{ Type []string }
	if err := json.Unmarshal([]byte(r.URL.Query().Get("filters")), &f); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "invalid filters"})
		return
	}
	s := &stream{events: make(chan []byte, 256), done: make(chan struct{})}
	e.mu.Lock()
	e.streams[s] = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		if e.streams[s] {
			close(s.done)
			delete(e.streams, s)
		}
		e.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush() // the engine answers at once
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case ev := <-s.events:
			if _, err := w.Write(ev); err != nil {
				return
			}
			if err := http.NewResponseController(w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return
			}
		}
	}
}

// Streams is how many event streams are open: a client that follows the
// engine holds one.
func (e *Engine) Streams() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.streams)
}

// Requests lists the calls made so far, as "GET /path".
func (e *Engine) Requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.requests...)
}

// CloseStreams ends every open event stream, as an engine restart does.
func (e *Engine) CloseStreams() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.streams {
		close(s.done)
		delete(e.streams, s)
	}
}

// Emit writes an event into every open stream. For a network event, id is
// the container's, carried in the "container" attribute.
func (e *Engine) Emit(typ, action, id string) {
	ev := map[string]any{"Type": typ, "Action": action, "status": action, "id": id,
		"Actor": map[string]any{"ID": id, "Attributes": map[string]string{}}, "scope": "local"}
	if typ == "network" {
		ev["Actor"] = map[string]any{"ID": "net-" + id, "Attributes": map[string]string{"container": id, "type": "bridge"}}
		delete(ev, "id")
		delete(ev, "status")
	}
	line, _ := json.Marshal(ev)
	line = append(line, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.streams {
		select {
		case s.events <- line:
		default: // a client this far behind is not reading; tests emit far fewer
		}
	}
}

// Start creates the container if it is new, runs it and emits "start".
func (e *Engine) Start(c Container) {
	e.mu.Lock()
	cp := c
	cp.running = true
	e.containers[c.ID] = &cp
	e.mu.Unlock()
	e.Emit("container", "start", c.ID)
}

// Die stops the container, which keeps existing, and emits "die".
func (e *Engine) Die(id string) {
	e.mu.Lock()
	if c := e.containers[id]; c != nil {
		c.running = false
	}
	e.mu.Unlock()
	e.Emit("container", "die", id)
}

// Remove deletes the container and emits "destroy".
func (e *Engine) Remove(id string) {
	e.mu.Lock()
	delete(e.containers, id)
	e.mu.Unlock()
	e.Emit("container", "destroy", id)
}

// Connect attaches a running container to one more network and emits a
// network "connect" event.
func (e *Engine) Connect(id, network string, addrs ...string) {
	e.mu.Lock()
	if c := e.containers[id]; c != nil {
		nets := map[string][]string{network: addrs}
		for k, v := range c.Networks {
			nets[k] = v
		}
		c.Networks = nets
	}
	e.mu.Unlock()
	e.Emit("network", "connect", id)
}
