//go:build unix

package handlers

import "syscall"

// fileLimit is the process's soft limit of open file descriptors (which the
// Go runtime raises to the hard limit at start).
func fileLimit() (uint64, bool) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, false
	}
	return uint64(l.Cur), true
}
