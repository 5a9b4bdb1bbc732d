package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
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

func TestBatchWriterGathersLines(t *testing.T) {
	under := &countingWriter{}
	b := newBatchWriter(under, time.Hour) // no timed flush: only Close writes
	for i := 0; i < 100; i++ {
		if _, err := b.Write([]byte("a log line\n")); err != nil {
			t.Fatal(err)
		}
	}
	if _, n := under.snapshot(); n != 0 {
		t.Fatalf("%d writes before any flush, want 0", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	got, n := under.snapshot()
	if n != 1 || strings.Count(got, "a log line\n") != 100 {
		t.Fatalf("after Close: %d writes, %d lines; want 1 write of 100 lines", n, strings.Count(got, "a log line\n"))
	}
}

func TestBatchWriterFlushesOnItsOwn(t *testing.T) {
	under := &countingWriter{}
	b := newBatchWriter(under, 5*time.Millisecond)
	defer b.Close()
	_, _ = b.Write([]byte("soon\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := under.snapshot(); got == "soon\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a line was never flushed without Close")
		}
		time.Sleep(time.Millisecond)
	}
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
