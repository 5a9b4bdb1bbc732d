package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// logBuffer is where every log line goes: a request appends its line to a
// buffer in memory under a lock held for one copy, and a flusher writes
// what has gathered in one write(2) at most every interval after the first
// line of a batch. A write per line was the largest cost the access log
// added to a request (measured: about 15% of the proxy's CPU under load),
// and the lock-free ring buffer it replaced (zerolog's diode) copied each
// line into a fresh allocation and woke its reader every 10 ms, idle or
// not; this one allocates nothing per line and sleeps while nothing is
// logged.
//
// A request never waits on the output: while the flusher is stuck on a
// slow terminal or pipe, lines gather up to max bytes, and past that they
// are dropped and counted, and the count is written after the next batch
// ("log buffer full, N lines dropped").
type logBuffer struct {
	out      io.Writer
	interval time.Duration
	max      int // bytes gathered at most while a write is under way

	mu      sync.Mutex // held by Write for one append, by the flusher for a swap
	lines   []byte     // gathered since the last swap
	dropped int        // lines refused since the last swap
	closed  bool

	wmu   sync.Mutex // serialises writes to out; guards spare
	spare []byte     // the buffer last written, reused for the next batch

	kick      chan struct{} // a batch has begun
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Defaults of newLogger's buffer: lines reach the output at most
// logFlushInterval after they are logged, and logBufferMax bytes gather
// at most (the diode held 8,192 lines, about as much).
const (
	logFlushInterval = 10 * time.Millisecond
	logBufferMax     = 2 << 20
	// logBufferKeep is the largest buffer kept between batches: a burst
	// may grow one to logBufferMax, which is then given back.
	logBufferKeep = 256 << 10
)

func newLogBuffer(out io.Writer, interval time.Duration, max int) *logBuffer {
	b := &logBuffer{out: out, interval: interval, max: max, kick: make(chan struct{}, 1), done: make(chan struct{})}
	b.wg.Add(1)
	go b.run()
	return b
}

// Write gathers p, one or more whole lines, for the next batch. It never
// fails: a line that does not fit is counted as dropped.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		// After Close (a late net/http error line): straight through.
		b.mu.Unlock()
		b.wmu.Lock()
		defer b.wmu.Unlock()
		return b.out.Write(p)
	}
	// A drop begins a batch as a line does: its count must be written,
	// and the lines after it no longer see an empty buffer.
	first := len(b.lines) == 0 && b.dropped == 0
	if len(b.lines)+len(p) > b.max {
		b.dropped++
	} else {
		b.lines = append(b.lines, p...)
	}
	if first {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
	return len(p), nil
}

// run writes a batch interval after it begins, until Close.
func (b *logBuffer) run() {
	defer b.wg.Done()
	t := time.NewTimer(b.interval)
	t.Stop()
	for {
		select {
		case <-b.kick:
		case <-b.done:
			return
		}
		t.Reset(b.interval)
		select {
		case <-t.C:
		case <-b.done:
			t.Stop()
			return
		}
		b.flush(false)
	}
}

// flush writes what has gathered, then the count of lines dropped since
// the last flush, if any; closing: the last time, after which Write goes
// straight to the output (still after this batch: both hold wmu).
func (b *logBuffer) flush(closing bool) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	batch, dropped := b.lines, b.dropped
	b.lines, b.dropped = b.spare[:0], 0
	b.closed = b.closed || closing
	b.mu.Unlock()
	if len(batch) > 0 {
		_, _ = b.out.Write(batch)
	}
	if dropped > 0 {
		_, _ = fmt.Fprintf(b.out, "imds-proxy: log buffer full, %d lines dropped\n", dropped)
	}
	if cap(batch) > logBufferKeep {
		batch = nil
	}
	b.spare = batch[:0]
}

// Close writes what is left and stops the flusher; lines written after it
// go straight to the output. The output stays open: it is stderr, where
// main still reports errors.
func (b *logBuffer) Close() error {
	b.closeOnce.Do(func() {
		close(b.done)
		b.wg.Wait()
		b.flush(true)
	})
	return nil
}
