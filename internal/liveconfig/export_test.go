package liveconfig

import (
	"context"
	"time"
)

// SetWait replaces the reloader's sleep between loads, so that tests
// decide when a file has settled without a clock.
func SetWait(rl *Reloader, wait func(ctx context.Context, d time.Duration) bool) { rl.wait = wait }
