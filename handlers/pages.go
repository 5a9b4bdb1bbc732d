package handlers

import (
	_ "embed"
	"strings"
)

// The error pages real IMDS sends, byte for byte (recorded from live
// instances). Clients compare nothing but the status, but a person reading a
// capture should not be able to tell the difference either.
var (
	//go:embed pages/401.html
	page401 []byte
	//go:embed pages/404.html
	page404 []byte
)

// page renders an error page in the shape of the 401 page, for the statuses
// whose real body was not recorded (400, 403).
func page(status string) []byte {
	return []byte(strings.ReplaceAll(string(page401), "401 - Unauthorized", status))
}
