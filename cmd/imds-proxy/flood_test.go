//go:build e2e

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rssKiB reads a process's resident memory from /proc.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestFloodAndSlowloris attacks the server with 10,000 distinct source
// addresses and with clients that send their headers a byte at a time,
// while a legitimate tenant keeps asking for its instance id: every one of
// its requests must be served, the slow clients must be cut off, and the
// server's memory must stay bounded.
func TestFloodAndSlowloris(t *testing.T) {
	e2eLoopback(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "imds-proxy.yaml")
	cfg := `tenants:
  - name: web
    sources: ["127.0.0.2"]
    instance: {instance_id: i-0a1b2c3d4e5f60002}
  - name: crowd
    sources: ["127.2.0.0/16"]
`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := e2eStart(t, e2eEnv(t), "--config", path, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	pid := p.cmd.Process.Pid
	before := rssKiB(t, pid)

	stop := make(chan struct{})
	var legit, legitFailed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := httpClientFrom(t, "127.0.0.2", &tokenRecorder{})
		for {
			select {
			case <-stop:
				return
			default:
			}
			status, body, err := reloadGet(c, "http://"+p.imdsAddr+"/latest/meta-data/instance-id")
			if err != nil || status != 200 || body != "i-0a1b2c3d4e5f60002" {
				legitFailed.Add(1)
			}
			legit.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// Slowloris: 100 connections (20 sources × 5) trickling headers.
	var cutOff atomic.Int64
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			src := fmt.Sprintf("127.3.0.%d", 1+i%20)
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
			c, err := d.Dial("tcp", p.imdsAddr)
			if err != nil {
				return
			}
			defer c.Close()
			if _, err := io.WriteString(c, "GET /latest/meta-data/instance-id HTTP/1.1\r\n"); err != nil {
				cutOff.Add(1)
				return
			}
			for j := 0; j < 20; j++ { // up to ~10 s of trickling
				time.Sleep(500 * time.Millisecond)
				if _, err := io.WriteString(c, "X: y\r\n"); err != nil {
					cutOff.Add(1)
					return
				}
			}
		}(i)
	}

	// Flood: 10,000 distinct sources in 127.1.0.0/16 (no tenant) and in
	// 127.2.0.0/16 (the crowd tenant), one request each, 32 at a time.
	var flooded, floodServed atomic.Int64
	sem := make(chan struct{}, 32)
	var fw sync.WaitGroup
	for i := 0; i < 10_000; i++ {
		sem <- struct{}{}
		fw.Add(1)
		go func(i int) {
			defer fw.Done()
			defer func() { <-sem }()
			n := i / 2 // 5,000 distinct addresses in each of the two /16s
			src := fmt.Sprintf("127.%d.%d.%d", 1+i%2, n/254, 1+n%254)
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
			c, err := d.Dial("tcp", p.imdsAddr)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(c, "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				resp.Body.Close()
				flooded.Add(1)
				if resp.StatusCode == 200 {
					floodServed.Add(1)
				}
			}
		}(i)
	}
	fw.Wait()
	peak := rssKiB(t, pid)
	time.Sleep(6 * time.Second) // past the 5 s header timeout of the slow clients
	close(stop)
	wg.Wait()
	after := rssKiB(t, pid)

	if legitFailed.Load() != 0 || legit.Load() < 50 {
		t.Fatalf("legitimate tenant: %d of %d requests failed", legitFailed.Load(), legit.Load())
	}
	if cutOff.Load() < 90 {
		t.Fatalf("only %d of 100 slowloris connections were cut off", cutOff.Load())
	}
	if flooded.Load() < 9_000 {
		t.Fatalf("only %d of 10,000 flood requests were answered", flooded.Load())
	}
	if growth := peak - before; growth > 64<<10 {
		t.Fatalf("memory grew by %d KiB under the flood (before %d KiB, peak %d KiB)", growth, before, peak)
	}
	t.Logf("legit: %d requests, 0 failed; flood: %d answered (%d served to the crowd tenant); slowloris: %d of 100 cut off; RSS before %d KiB, peak %d KiB, after %d KiB",
		legit.Load(), flooded.Load(), floodServed.Load(), cutOff.Load(), before, peak, after)
	p.stop(t)
}
