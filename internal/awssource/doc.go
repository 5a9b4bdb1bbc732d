// Package awssource is where imds-proxy meets AWS: it loads named profiles
// with aws-sdk-go-v2/config (static keys, source_profile chains,
// credential_process, IAM Identity Center), turns them into temporary role
// credentials with STS, copies live instances with the EC2 API, and says
// what the operator must do about every failure (*tenants.UpstreamError).
//
// The domain (package tenants) declares what it needs, a CredentialSource
// and an InstanceSource; this package implements them. No answer is
// cached here — package cache decides when a source is asked again — but
// a Loader keeps one connection pool for every call.
package awssource
