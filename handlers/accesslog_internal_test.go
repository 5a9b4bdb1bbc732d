package handlers

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestAppendMillis: dur_ms reads as zerolog's Dur wrote it, digit for
// digit, for the durations a request takes (past 2^53 ns, about 104 days,
// a float64 loses digits that this keeps), and any Duration is a number.
func TestAppendMillis(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 9, 10, 999, 1000, 155666, 155600, 1e6, 1e6 + 1, 12_345_678,
		time.Second, 90 * time.Minute, 100 * 24 * time.Hour, -1, -500_000, -12_345_678} {
		var want bytes.Buffer
		lg := zerolog.New(&want)
		lg.Log().Dur("d", d).Send()
		var field map[string]json.RawMessage
		if err := json.Unmarshal(want.Bytes(), &field); err != nil {
			t.Fatal(err)
		}
		if got := string(appendMillis(nil, d)); got != string(field["d"]) {
			t.Errorf("%d ns: %s, zerolog writes %s", int64(d), got, field["d"])
		}
	}
	for _, d := range []time.Duration{math.MaxInt64, math.MinInt64} {
		var ms float64
		if err := json.Unmarshal(appendMillis(nil, d), &ms); err != nil || math.Abs(ms-float64(d)/1e6) > 1 {
			t.Errorf("%d ns: %s (%v)", int64(d), appendMillis(nil, d), err)
		}
	}
}
