// Package liveconfig keeps the running configuration current: it reloads
// the configuration file when it changes or on SIGHUP (Reloader), and adds
// the addresses of the Docker containers that tenants name as they start,
// stop and move (Containers). Both end in one apply function, under one
// lock, so that a reload and a container event never interleave.
//
// It knows no AWS and no HTTP: loading a file is the caller's pipeline, and
// applying it the caller's server.
package liveconfig
