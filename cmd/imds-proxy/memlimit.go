package main

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimit is --memory-limit: the soft limit of the Go runtime's memory
// (runtime/debug.SetMemoryLimit), which makes the collector run before the
// heap doubles its live size (GOGC=100) once the process nears it.
//
// The proxy's live heap is almost all long-lived: configurations, rendered
// catalogues, counters; a request allocates next to nothing. Left to GOGC
// alone the heap still grows to twice what is live before a collection,
// and the process keeps that much resident: 124 MiB at 10,000 tenants
// after every tenant was asked, of which 50 MiB was live. A limit spends a
// collection where the doubling would spend memory, and costs nothing
// while the heap is far below it. The runtime caps the collector's CPU when
// live memory nears the limit, so a limit too low slows the proxy rather
// than stopping it; auto keeps it well above what a configuration holds.
type memoryLimit struct {
	auto  bool
	bytes int64 // with auto false: the limit; 0, off
}

const (
	// autoMemoryFloor is the least resident size auto aims at: what a few
	// thousand tenants need, with room for a burst of connections.
	autoMemoryFloor = 64 << 20
	// autoMemoryPerTenant is what auto allows each tenant above the floor:
	// more than twice the live heap of a tenant that was asked its metadata
	// and credentials (BenchmarkFootprint/10000-roles-asked), so that the
	// heap keeps room to grow between collections at any count of tenants.
	autoMemoryPerTenant = 6 << 10
	// autoMappedCode is what auto leaves out of the runtime's limit for
	// the pages of the binary itself (its code and read-only data, mapped
	// from the file): they count in the resident size (RssFile, 16 MiB
	// measured with Kubernetes mode linked in) but not in the memory the
	// runtime limits, so a limit of the whole aim let the process sit that
	// much above it.
	autoMappedCode = 16 << 20
)

func (m *memoryLimit) String() string {
	switch {
	case m == nil || m.auto:
		return "auto"
	case m.bytes == 0:
		return "off"
	}
	return strconv.FormatInt(m.bytes, 10)
}

// Set accepts auto, off, or a size in GOMEMLIMIT's syntax: bytes, or a
// number with B, KiB, MiB, GiB or TiB.
func (m *memoryLimit) Set(v string) error {
	switch v {
	case "auto":
		*m = memoryLimit{auto: true}
		return nil
	case "off", "0":
		*m = memoryLimit{}
		return nil
	}
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*m = memoryLimit{bytes: n}
	return nil
}

func parseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	num, shift := v, uint(0)
	for _, u := range units {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			num, shift = s, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q: use auto, off, or a size such as 64MiB or 1GiB", v)
	}
	return n << shift, nil
}

// limit is the limit to set for a configuration of n tenants; 0: none.
// auto aims the whole resident size at the larger of the floor and the
// tenants' allowance, so it sets the runtime's limit to that less the
// binary's mapped code; it leaves a GOMEMLIMIT of the environment
// (goMemLimit) to the runtime, which has applied it already. A size given
// is the runtime's limit as given, as GOMEMLIMIT is.
func (m memoryLimit) limit(tenants int, goMemLimit bool) int64 {
	if !m.auto {
		return m.bytes
	}
	if goMemLimit {
		return 0
	}
	return max(autoMemoryFloor, int64(tenants)*autoMemoryPerTenant) - autoMappedCode
}

// apply sets the runtime's limit for a configuration of n tenants, at
// start and at every reload; it returns the limit set, 0 if none.
func (m memoryLimit) apply(tenants int, goMemLimit bool) int64 {
	l := m.limit(tenants, goMemLimit)
	if l > 0 {
		debug.SetMemoryLimit(l)
	}
	return l
}
