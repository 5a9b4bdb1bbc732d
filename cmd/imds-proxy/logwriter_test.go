package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// countingWriter counts the writes that reach it.
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

func (c *countingWriter) snapshot() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.writes
}

// TestLogBufferOneWriteABatch: lines logged within an interval reach the
// output in one write, that interval after the first; nothing is written
// while nothing is logged.
func TestLogBufferOneWriteABatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		under := &countingWriter{}
		b := newLogBuffer(under, 10*time.Millisecond, 1<<20)
		defer b.Close()
		for range 100 {
			if _, err := b.Write([]byte("a log line\n")); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(9 * time.Millisecond)
		synctest.Wait()
		if _, n := under.snapshot(); n != 0 {
			t.Fatalf("%d writes before the interval ended, want 0", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		got, n := under.snapshot()
		if n != 1 || strings.Count(got, "a log line\n") != 100 {
			t.Fatalf("%d writes, %d lines; want 1 write of 100 lines", n, strings.Count(got, "a log line\n"))
		}
		time.Sleep(time.Hour) // idle: the flusher waits for a line, not a tick
		synctest.Wait()
		if _, n := under.snapshot(); n != 1 {
			t.Fatalf("%d writes after an idle hour, want still 1", n)
		}
		_, _ = b.Write([]byte("later\n"))
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		if got, n := under.snapshot(); n != 2 || !strings.HasSuffix(got, "later\n") {
			t.Fatalf("%d writes, ending %q; want a second write of the new line", n, got[max(0, len(got)-20):])
		}
	})
}

// TestLogBufferClose: Close writes what is left at once, and a line
// logged after it (net/http's last words) still reaches the output, in
// order.
func TestLogBufferClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		under := &countingWriter{}
		b := newLogBuffer(under, time.Hour, 1<<20)
		_, _ = b.Write([]byte("first\n"))
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		_, _ = b.Write([]byte("after close\n"))
		if got, _ := under.snapshot(); got != "first\nafter close\n" {
			t.Fatalf("output %q", got)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// blockedWriter stands for a terminal nobody reads: every write waits for
// release.
type blockedWriter struct {
	countingWriter
	release chan struct{}
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.countingWriter.Write(p)
}

// TestLogBufferBounded: while the output is stuck, lines gather up to the
// bound and the rest are dropped, never blocking the caller; the drop is
// TestLogBufferDropBeginsBatch: a line too long for the buffer, logged
// while nothing has gathered, is dropped, and the lines after it still
// reach the output within an interval, with the count of the drop; they
// do not wait for Close.
func TestLogBufferDropBeginsBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		under := &countingWriter{}
		b := newLogBuffer(under, time.Millisecond, 16)
		defer b.Close()
		_, _ = b.Write([]byte(strings.Repeat("x", 31) + "\n"))
		_, _ = b.Write([]byte("next\n"))
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got, _ := under.snapshot(); got != "next\nimds-proxy: log buffer full, 1 lines dropped\n" {
			t.Fatalf("output %q one interval after a drop; want the next line and the count", got)
		}
	})
}

// counted in the output once it moves again, and every line kept is whole.
func TestLogBufferBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		under := &blockedWriter{release: make(chan struct{})}
		line := []byte(strings.Repeat("x", 99) + "\n")
		b := newLogBuffer(under, time.Millisecond, 10*len(line))
		_, _ = b.Write(line)
		time.Sleep(time.Millisecond)
		synctest.Wait() // the flusher is now stuck writing the first line
		for range 25 {
			if n, err := b.Write(line); n != len(line) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		close(under.release)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		got, _ := under.snapshot()
		if kept := strings.Count(got, string(line)); kept != 11 {
			t.Errorf("%d lines kept, want 11 (the one being written and 10 more)", kept)
		}
		if !strings.HasSuffix(got, "imds-proxy: log buffer full, 15 lines dropped\n") {
			t.Errorf("no count of the 15 lines dropped at the end of:\n%s", got[max(0, len(got)-200):])
		}
	})
}

func TestTimestampMs(t *testing.T) {
	var h timestampMs
	base := time.Date(2026, 3, 29, 0, 59, 59, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"whole second", base},
		{"milliseconds", base.Add(7 * time.Millisecond)},
		{"same second again", base.Add(999*time.Millisecond + 999)},
		{"next second", base.Add(time.Second + 120*time.Millisecond)},
		{"UTC, same second", base.UTC().Add(2*time.Second + 45*time.Millisecond)},
		{"CET again", base.Add(2*time.Second + 46*time.Millisecond)},
		{"back in time", base.Add(-time.Hour + 1*time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(h.appendStamp([]byte("x"), tc.at))
			if want := "x" + tc.at.Format(logTimeFormat); got != want {
				t.Errorf("appendStamp = %q, want %q", got, want)
			}
		})
	}
}
