//go:build !unix

package handlers

// fileLimit is unknown here: the default ceiling applies.
func fileLimit() (uint64, bool) { return 0, false }
