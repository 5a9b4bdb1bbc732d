package tenants

import (
	"path"
	"strings"
)

// PathPolicy limits what of the catalogue a tenant sees. A path denied, or
// not allowed when an allow list exists, answers what IMDS answers for an
// absent path (404) and disappears from listings.
type PathPolicy struct {
	Allow []string // if not empty, only these paths (and what leads to them)
	Deny  []string // never these paths, nor anything below them
}

// rootEntries are the entries of a version's root; a pattern starting with
// anything else is relative to meta-data/.
var rootEntries = map[string]bool{"meta-data": true, "dynamic": true, "user-data": true}

// normalizePattern makes a pattern relative to the version root:
// "iam/*" -> "meta-data/iam/*", "user-data" stays.
func normalizePattern(p string) string {
	p = strings.Trim(p, "/")
	first, _, _ := strings.Cut(p, "/")
	if rootEntries[first] {
		return p
	}
	return "meta-data/" + p
}

// matches reports whether pattern matches p or one of its ancestors, so
// that denying a directory denies everything below it. Patterns use
// path.Match syntax, segment by segment ("*" never crosses a "/").
func matches(pattern, p string) bool {
	for {
		if ok, _ := path.Match(pattern, p); ok {
			return true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return false
		}
		p = p[:i]
	}
}

// leadsTo reports whether p is a directory on the way to what pattern
// matches: it must stay listed for the allowed paths to be reachable.
func leadsTo(pattern, p string) bool {
	ps, pp := strings.Split(p, "/"), strings.Split(pattern, "/")
	if len(ps) >= len(pp) {
		return false
	}
	for i := range ps {
		if ok, _ := path.Match(pp[i], ps[i]); !ok {
			return false
		}
	}
	return true
}

// Permits reports whether the tenant may see the path below the version
// root (e.g. "meta-data/iam/info", "user-data"). Deny beats allow.
func (pp PathPolicy) Permits(p string) bool {
	for _, d := range pp.Deny {
		if matches(d, p) {
			return false
		}
	}
	if len(pp.Allow) == 0 {
		return true
	}
	for _, a := range pp.Allow {
		if matches(a, p) || leadsTo(a, p) {
			return true
		}
	}
	return false
}

func buildPaths(c PathsConfig, p []any, el errorList) PathPolicy {
	var out PathPolicy
	norm := func(key string, patterns []string) []string {
		var list []string
		for i, pat := range patterns {
			if _, err := path.Match(pat, ""); err != nil || strings.TrimSpace(pat) == "" {
				el.add(at(p, key, i), "%q is not a path pattern such as user-data or iam/*", pat)
				continue
			}
			list = append(list, normalizePattern(pat))
		}
		return list
	}
	out.Allow = norm("allow", c.Allow)
	out.Deny = norm("deny", c.Deny)
	return out
}

// Limits bound what one source address may take of the server, so that a
// runaway client cannot starve the others.
type Limits struct {
	RequestsPerSecond float64 // sustained rate per source address
	Burst             int     // requests allowed at once above the rate
	Connections       int     // open connections per source address
}

// DefaultLimits are generous for any real client (real IMDS allows on the
// order of 1,000 packets per second per interface; SDKs make a handful of
// requests an hour) yet bound a runaway loop.
func DefaultLimits() Limits { return Limits{RequestsPerSecond: 500, Burst: 1000, Connections: 64} }

func buildLimits(c LimitsConfig, p []any, el errorList) Limits {
	l := DefaultLimits()
	if c.RequestsPerSecond != 0 {
		if c.RequestsPerSecond < 0 {
			el.add(at(p, "requests_per_second"), "%v: must be positive", c.RequestsPerSecond)
		}
		l.RequestsPerSecond = c.RequestsPerSecond
	}
	if c.Burst != 0 {
		if c.Burst < 1 {
			el.add(at(p, "burst"), "%d: must be at least 1", c.Burst)
		}
		l.Burst = c.Burst
	}
	if c.Connections != 0 {
		if c.Connections < 1 {
			el.add(at(p, "connections"), "%d: must be at least 1", c.Connections)
		}
		l.Connections = c.Connections
	}
	return l
}
