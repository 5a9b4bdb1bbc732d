package main

import (
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// seedSpotNotice is when --mock-spot-termination's interruption notice
// appears: two minutes after start, so that a termination handler starting
// with the application sees no notice first, then one; the instance is
// interrupted two minutes after that, as on EC2.
const seedSpotNotice = 2 * time.Minute

// seedEvents are the seed tenant's events: a spot termination with
// --mock-spot-termination, none otherwise.
func seedEvents(spot bool) []tenants.EventConfig {
	if !spot {
		return nil
	}
	return []tenants.EventConfig{{Type: tenants.SpotInterruption, Action: "terminate", After: tenants.Duration(seedSpotNotice)}}
}
