// Package docker follows the running containers of a Docker Engine, and
// their addresses, through the Engine API on its unix socket: what tenants
// that name containers in their sources are served to. It knows nothing of
// tenants; the proxy matches the containers it reports to them.
package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Container is a running container with its addresses.
type Container struct {
	ID     string
	Name   string // without Docker's leading "/"
	Labels map[string]string
	Addrs  []netip.Addr // IPv4 and global IPv6 addresses on every network
}

// Client calls the Engine API over a unix socket. Paths carry no API
// version, so the engine answers in its own, which every engine since 1.24
// does for the few fields read here.
type Client struct {
	socket string
	hc     *http.Client
}

// callTimeout bounds one list or inspect call; the event stream has none.
const callTimeout = 10 * time.Second

// NewClient returns a client of the engine listening on socket (a path).
func NewClient(socket string) *Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    2,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Socket is the path the client dials.
func (c *Client) Socket() string { return c.socket }

// errNotFound is the engine's 404: the container is gone.
var errNotFound = errors.New("no such container")

func (c *Client) get(ctx context.Context, path string, query url.Values) (*http.Response, error) {
	u := url.URL{Scheme: "http", Host: "docker", Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker %s: %w", path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		drain(resp)
		return nil, errNotFound
	case resp.StatusCode != http.StatusOK:
		var body struct{ Message string }
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&body)
		drain(resp)
		return nil, fmt.Errorf("docker %s: %s: %s", path, resp.Status, body.Message)
	}
	return resp, nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.get(ctx, path, nil)
	if err != nil {
		return err
	}
	defer drain(resp)
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("docker %s: %w", path, err)
	}
	return nil
}

// Running lists the ids of the running containers.
func (c *Client) Running(ctx context.Context) ([]string, error) {
	var list []struct {
		ID string `json:"Id"`
	}
	if err := c.getJSON(ctx, "/containers/json", &list); err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, l := range list {
		ids[i] = l.ID
	}
	return ids, nil
}

// inspected is the part of GET /containers/{id}/json read here.
type inspected struct {
	ID     string `json:"Id"`
	Name   string
	Config struct{ Labels map[string]string }
	State  struct{ Running bool }
	// NetworkSettings.Networks holds one entry per attached network.
	NetworkSettings struct {
		Networks map[string]struct {
			IPAddress         string
			GlobalIPv6Address string
		}
	}
}

// Inspect returns a container and whether it runs; a container that no
// longer exists is not running.
func (c *Client) Inspect(ctx context.Context, id string) (Container, bool, error) {
	var in inspected
	switch err := c.getJSON(ctx, "/containers/"+url.PathEscape(id)+"/json", &in); {
	case errors.Is(err, errNotFound):
		return Container{}, false, nil
	case err != nil:
		return Container{}, false, err
	}
	ct := Container{ID: in.ID, Name: strings.TrimPrefix(in.Name, "/"), Labels: in.Config.Labels}
	for _, n := range in.NetworkSettings.Networks {
		for _, s := range []string{n.IPAddress, n.GlobalIPv6Address} {
			if a, err := netip.ParseAddr(s); err == nil {
				ct.Addrs = append(ct.Addrs, a.Unmap())
			}
		}
	}
	// Sorted: the networks come from a map, and an unchanged container
	// must compare equal.
	slices.SortFunc(ct.Addrs, netip.Addr.Compare)
	ct.Addrs = slices.Compact(ct.Addrs)
	return ct, in.State.Running, nil
}

// Event is one line of the engine's event stream.
type Event struct {
	Type   string // container, network
	Action string // start, die, connect, ...
	Actor  struct {
		ID         string
		Attributes map[string]string
	}
}

// Container is the id of the container the event is about: the actor of a
// container event, the "container" attribute of a network one.
func (e Event) Container() string {
	if e.Type == "network" {
		return e.Actor.Attributes["container"]
	}
	return e.Actor.ID
}

// EventStream is an open GET /events response.
type EventStream struct {
	body io.Closer
	dec  *json.Decoder
}

// Events opens the stream of container and network events. It returns once
// the engine has answered, so that containers listed afterwards miss no
// event.
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	filters := `{"type":["container","network"]}`
	resp, err := c.get(ctx, "/events", url.Values{"filters": {filters}})
	if err != nil {
		return nil, err
	}
	return &EventStream{body: resp.Body, dec: json.NewDecoder(resp.Body)}, nil
}

// Next blocks until the next event; an error ends the stream.
func (s *EventStream) Next() (Event, error) {
	var ev Event
	if err := s.dec.Decode(&ev); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the engine closed the event stream")
		}
		return ev, fmt.Errorf("docker /events: %w", err)
	}
	return ev, nil
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// Explain says what to do about an error reaching the engine at socket.
func Explain(socket string, err error) string {
	switch {
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return fmt.Sprintf("permission denied on %s: add the user imds-proxy runs as to the docker group, or mount the socket into its container with a group that may read it", socket)
	case errors.Is(err, syscall.ENOENT):
		return fmt.Sprintf("no Docker socket at %s: is Docker running? set server.docker_socket or DOCKER_HOST=unix://PATH to where it is", socket)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing answers on %s: is the Docker daemon running?", socket)
	}
	return "the Docker Engine API failed; retrying"
}
