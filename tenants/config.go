package tenants

import (
	"net/netip"
	"time"
)

// Config is a validated configuration: what the server runs.
type Config struct {
	Server  Server
	Tenants []*Tenant
	// Kubernetes is the kubernetes: block; nil: no Kubernetes mode (no pod
	// is followed, and every tenant needs a source).
	Kubernetes *Kubernetes
	// Warnings are values that work but surprise, located like errors:
	// check prints them, the server logs them when it loads the file.
	Warnings Errors

	// serviceAccounts indexes Tenants by the service accounts their
	// sources name ("NAMESPACE/NAME"); nil: look through the tenants.
	// Tenants derived from this configuration keep their indexes, so the
	// derived configurations share it.
	serviceAccounts map[string]int
	// runningPods are the UIDs of the pods WithPods was given that hold an
	// address, claimed or not; nil: the configuration follows no pods.
	runningPods map[string]struct{}
}

// Kubernetes is the validated kubernetes: block.
type Kubernetes struct {
	// Kubeconfig is the kubeconfig file to reach the API server with;
	// empty: the pod's in-cluster service account.
	Kubeconfig string
	// NodeName is the node whose pods are followed as configured; empty:
	// the NODE_NAME environment variable, read by the server.
	NodeName string
	// NamespaceRestrictions: a pod claims a tenant by annotation only if
	// its namespace's imds-proxy.io/allowed-tenants allows it.
	NamespaceRestrictions bool
	// RoleTemplate names the tenant copied per kube2iam role ARN; empty:
	// the iam.amazonaws.com/role annotation is ignored.
	RoleTemplate string
}

// Server is the validated server: block.
type Server struct {
	Listen          []string
	AdminListen     string
	TrustedProxies  []netip.Prefix
	ContainerListen string // empty: no container credentials endpoint
	ECSListen       string // empty: no ECS-style (source-bound) credentials endpoint
	// PodIdentityListen are the EKS Pod Identity endpoint's addresses;
	// none: no such endpoint.
	PodIdentityListen []string
	Hosts             []string      // extra Host header names accepted
	DockerSocket      string        // path of the Docker Engine API socket; empty: DOCKER_HOST or the default
	MFADuration       time.Duration // of MFA sessions; 0: DefaultMFADuration
}

// DefaultMFADuration is how long an MFA session lasts unless
// server.mfa_duration says otherwise.
const DefaultMFADuration = 12 * time.Hour

// DefaultListen is where the proxy listens unless told otherwise: loopback
// only, so that nothing off the host reaches credentials by accident.
const DefaultListen = "127.0.0.1:8080"

// DefaultAdminListen is the admin listener's default address.
const DefaultAdminListen = "127.0.0.1:9180"
