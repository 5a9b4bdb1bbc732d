package main

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/imds-proxy/imds-proxy/internal/awssource"
)

// notifySocket listens where a service manager would, and hands over each
// datagram.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	states := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			states <- string(buf[:n])
		}
	}()
	return path, states
}

func TestNotifierWithoutSocket(t *testing.T) {
	if err := (notifier{}).notify("READY=1"); err != nil {
		t.Errorf("notify without NOTIFY_SOCKET = %v, want nil (nothing to tell)", err)
	}
	if err := (notifier{"/nonexistent/notify"}).notify("READY=1"); err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET") {
		t.Errorf("notify to a missing socket = %v, want an error naming NOTIFY_SOCKET", err)
	}
}

// The proxy says READY=1 once it listens and the credentials are fetched,
// RELOADING=1 then READY=1 around a reload (SIGHUP), and STOPPING=1 when
// it stops.
func TestServeNotifiesReadiness(t *testing.T) {
	sock, states := notifySocket(t)
	config := filepath.Join(t.TempDir(), "c.yaml")
	write(t, config, `server: {listen: ["127.0.0.1:0"], admin_listen: "off"}
defaults: {credentials: {profile: dev}}
tenants:
  - {name: web, sources: [127.0.0.21], credentials: {role_arn: "arn:aws:iam::111122223333:role/web"}}
`)
	fake := &fakeSTS{}
	d := deps{profiles: func(_ context.Context, name string) (*awssource.Profile, error) {
		return &awssource.Profile{Name: name, STS: fake,
			Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLEKEY000001", "not-a-secret", "")}, nil
	}}
	getenv := func(k string) string {
		if k == "NOTIFY_SOCKET" {
			return sock
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runWith(ctx, d, []string{"--config", config}, getenv, io.Discard, io.Discard) }()
	next := func(want string) {
		t.Helper()
		select {
		case st := <-states:
			if !strings.HasPrefix(st, want) {
				t.Fatalf("notified %q, want %s", st, want)
			}
			if want == "READY=1\n" && !strings.Contains(st, "STATUS=serving 1 tenants") {
				t.Errorf("ready state %q, want a STATUS naming the tenants served", st)
			}
		case err := <-done:
			t.Fatalf("run returned %v before notifying %s", err, want)
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s within 10s", want)
		}
	}
	next("READY=1\n")
	fake.mu.Lock()
	calls := fake.calls
	fake.mu.Unlock()
	if calls != 1 {
		t.Errorf("ready after %d AssumeRole calls, want 1: ready means prefetched", calls)
	}
	// The reloader registers for SIGHUP as it starts, which may be after
	// READY=1: signal until it hears.
	reloaded := false
	for i := 0; i < 50 && !reloaded; i++ {
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		select {
		case st := <-states:
			if st != stateReloading {
				t.Fatalf("notified %q after SIGHUP, want %s", st, stateReloading)
			}
			reloaded = true
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !reloaded {
		t.Fatal("no RELOADING=1 after SIGHUP")
	}
	next("READY=1")
	// Further SIGHUPs may have been sent: their reloads pair their states
	// before STOPPING=1.
	cancel()
	for stopping := false; !stopping; {
		select {
		case st := <-states:
			stopping = st == "STOPPING=1"
		case <-time.After(10 * time.Second):
			t.Fatal("no STOPPING=1 within 10s of the context's end")
		}
	}
	if err := <-done; err != nil {
		t.Errorf("run returned %v, want nil", err)
	}
}
