//go:build dockere2e

package main

import (
	"os"
	"syscall"
)

// fileGID is the group owning a file: the Docker socket's, which the
// proxy's container joins to read it.
func fileGID(fi os.FileInfo) uint32 { return fi.Sys().(*syscall.Stat_t).Gid }
