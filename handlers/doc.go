// Package handlers is the HTTP surface of imds-proxy: the IMDS protocol
// (IMDSv2 session tokens, listings, the catalogue of a tenant's instance,
// credentials, user data and dynamic data), with every answer shaped as a
// real instance shapes it, byte for byte where clients can tell.
//
// It never calls AWS: what it serves is rendered ahead of time from
// tenants.Tenant values and the credential source it is given.
package handlers
