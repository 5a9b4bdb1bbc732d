// Package liveconfig keeps the running configuration current: it reloads
// the configuration file when it changes or on SIGHUP (Reloader), adds the
// addresses of the Docker containers that tenants name as they start, stop
// and move (Containers), and, in Kubernetes mode, those of the pods of this
// node as they claim tenants (Pods). The three are stages of one chain
// that ends in one apply function, each under its own lock taken in that
// order, so that a reload, a container event and a pod event never
// interleave.
//
// It knows no AWS and serves no HTTP: loading a file is the caller's
// pipeline, and applying it the caller's server.
package liveconfig
