package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// adminClient calls a running proxy's admin listener for a command
// (status, mfa, event).
type adminClient struct {
	base    string // http://host:port
	timeout time.Duration
	cmd     string // prefixes errors: "event list"
}

// adminDefault is the admin listener a command asks when --admin does not
// say: IMDS_PROXY_ADMIN, else the server's default.
func adminDefault(getenv func(string) string) string {
	return cmp.Or(getenv(adminEnv), tenants.DefaultAdminListen)
}

// adminBodyLimit bounds what a command reads: a status of thousands of
// tenants is well under it, and anything larger is not an imds-proxy.
const adminBodyLimit = 32 << 20

// call sends body (nil: none) as JSON and decodes the answer into out.
func (c adminClient) call(ctx context.Context, method, path string, body, out any) error {
	b, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: %s %s%s: not an imds-proxy answer: %w", c.cmd, method, c.base, path, err)
	}
	return nil
}

// do sends body (nil: none) as JSON and returns the answer as it came. A
// failure the proxy explains ({"code", "message"}) is the error.
func (c adminClient) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.cmd, err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.cmd, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// The admin listener is local: no proxy from the environment applies.
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said below
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", c.timeout)
		}
		return nil, fmt.Errorf("%s: cannot reach the admin listener at %s: %w; "+
			"is imds-proxy running with server.admin_listen there? Choose the address with --admin or %s", c.cmd, c.base, err, adminEnv)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, adminBodyLimit))
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", c.cmd, method, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var f handlers.MFAFailure
		if json.Unmarshal(b, &f) == nil && f.Message != "" {
			return nil, fmt.Errorf("%s: %s: %s", c.cmd, f.Code, f.Message)
		}
		return nil, fmt.Errorf("%s: %s %s: %s (an imds-proxy without %s, or not imds-proxy?)", c.cmd, method, u, resp.Status, path)
	}
	return b, nil
}
