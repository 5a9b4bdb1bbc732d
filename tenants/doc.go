// Package tenants is the domain of imds-proxy: a Tenant is one client (a
// container, a namespace, a process) served as its own EC2 instance, chosen by
// the source address of its connections. The package owns the configuration
// schema, its strict loading and validation, and the derivation of every
// catalogue attribute a user leaves out, so that a tenant with only a name and
// a source is a complete, plausible instance.
//
// It knows nothing of HTTP: handlers render what it describes.
package tenants
