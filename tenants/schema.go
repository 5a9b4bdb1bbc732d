package tenants

import (
	"fmt"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is the YAML configuration file. Its key names are a public interface:
// extend them, never rename them.
type File struct {
	Server ServerConfig `yaml:"server"`
	// Kubernetes, when present, follows the pods of this node: their
	// addresses are served as the tenants they claim.
	Kubernetes *KubernetesConfig `yaml:"kubernetes"`
	Defaults   TenantConfig      `yaml:"defaults"`
	Tenants    []TenantConfig    `yaml:"tenants"`
}

// KubernetesConfig is the kubernetes: block. Present (even empty), the
// proxy runs in Kubernetes mode.
type KubernetesConfig struct {
	// Kubeconfig is a kubeconfig file, for development outside a
	// cluster; empty: the pod's in-cluster service account.
	Kubeconfig string `yaml:"kubeconfig"`
	// NodeName is the node whose pods are followed; empty: $NODE_NAME.
	NodeName string `yaml:"node_name"`
	// NamespaceRestrictions: a pod may claim a tenant by annotation only
	// if its namespace's imds-proxy.io/allowed-tenants allows it (deny by
	// default); empty: true.
	NamespaceRestrictions *bool `yaml:"namespace_restrictions"`
	// RoleTemplate is the tenant copied per role ARN that pods name in
	// kube2iam's iam.amazonaws.com/role annotation; empty: the annotation
	// is ignored.
	RoleTemplate string `yaml:"role_template"`
}

// ServerConfig is the server: block.
type ServerConfig struct {
	Listen         []string `yaml:"listen"`
	AdminListen    string   `yaml:"admin_listen"`
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ContainerListen is the optional container-credentials listener
	// (AWS_CONTAINER_CREDENTIALS_FULL_URI); empty: none.
	ContainerListen string `yaml:"container_listen"`
	// ECSListen is the optional listener of the ECS-style credentials
	// endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, served on
	// 169.254.170.2:80), which chooses the tenant by source address;
	// empty: none.
	ECSListen string `yaml:"ecs_listen"`
	// PodIdentityListen are the listeners of the EKS Pod Identity
	// credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI
	// http://169.254.170.23/v1/credentials, and [fd00:ec2::23]), which
	// chooses the tenant by the service account of the token a pod sends;
	// empty: none.
	PodIdentityListen []string `yaml:"pod_identity_listen"`
	// Hosts are extra names clients may send as the Host header (besides
	// IP literals, localhost, instance-data and host.docker.internal);
	// any other name is refused, which defeats DNS rebinding.
	Hosts []string `yaml:"hosts"`
	// DockerSocket is the Docker Engine API's unix socket, read only when
	// a tenant names containers in its sources; empty: DOCKER_HOST if it
	// is unix://..., else /var/run/docker.sock.
	DockerSocket string `yaml:"docker_socket"`
	// MFADuration is how long an MFA session lasts (sts:GetSessionToken
	// with a code from `imds-proxy mfa`): 15m to 36h; empty: 12h.
	MFADuration Duration `yaml:"mfa_duration"`
}

// TenantConfig is one entry of tenants:, and also the shape of defaults:,
// whose values every tenant inherits field by field.
type TenantConfig struct {
	Name        string            `yaml:"name"`
	Sources     Sources           `yaml:"sources"`
	Region      string            `yaml:"region"`
	IMDS        IMDSConfig        `yaml:"imds"`
	Credentials CredentialsConfig `yaml:"credentials"`
	Instance    InstanceConfig    `yaml:"instance"`
	UserData    *string           `yaml:"user_data"`
	// ContainerCredentials authorises the tenant on the container
	// credentials endpoint.
	ContainerCredentials ContainerCredentialsConfig `yaml:"container_credentials"`
	// Paths hides parts of the catalogue from the tenant.
	Paths PathsConfig `yaml:"paths"`
	// Limits bound each source address of the tenant.
	Limits       LimitsConfig `yaml:"limits"`
	UserDataFile string       `yaml:"user_data_file"`
	// Events are lifecycle events announced after the proxy starts.
	Events []EventConfig `yaml:"events"`
}

// IMDSConfig is the imds: block, EC2's MetadataOptions.
type IMDSConfig struct {
	Enabled  *bool  `yaml:"enabled"`
	Tokens   string `yaml:"tokens"` // optional | required
	HopLimit int    `yaml:"hop_limit"`
	Tags     *bool  `yaml:"tags"`
}

// CredentialsConfig is the credentials: block.
type CredentialsConfig struct {
	Profile        string            `yaml:"profile"`
	RoleARN        string            `yaml:"role_arn"`
	RoleName       string            `yaml:"role_name"`
	SessionName    string            `yaml:"session_name"`
	ExternalID     string            `yaml:"external_id"`
	SourceIdentity string            `yaml:"source_identity"`
	Policy         string            `yaml:"policy"`
	PolicyARNs     []string          `yaml:"policy_arns"`
	Tags           map[string]string `yaml:"tags"`
	Duration       Duration          `yaml:"duration"`
	RefreshBefore  Duration          `yaml:"refresh_before"`
	// Mock vends made-up credentials that look like STS's, with no AWS
	// account and no network: for moto or LocalStack.
	Mock bool `yaml:"mock"`
}

// ContainerCredentialsConfig is the container_credentials: block: the
// token a client sends as its Authorization header
// (AWS_CONTAINER_AUTHORIZATION_TOKEN or ..._TOKEN_FILE).
type ContainerCredentialsConfig struct {
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// AnySource lets the token work from any address, not only the
	// tenant's sources: for clients that reach the endpoint through NAT,
	// such as Docker Desktop's VM.
	AnySource bool `yaml:"any_source"`
}

// PathsConfig is the paths: block: patterns below the version root
// ("user-data", "dynamic/*") or, for anything else, below meta-data/
// ("iam/*", "tags").
type PathsConfig struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// LimitsConfig is the limits: block, per source address.
type LimitsConfig struct {
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	Burst             int     `yaml:"burst"`
	Connections       int     `yaml:"connections"`
}

// InstanceConfig is the instance: block: static attributes, each overriding
// what a mirror or the derivation from the tenant's name would give.
type InstanceConfig struct {
	Mirror *MirrorConfig `yaml:"mirror"`

	InstanceID         string            `yaml:"instance_id"`
	InstanceType       string            `yaml:"instance_type"`
	AMIID              string            `yaml:"ami_id"`
	KernelID           string            `yaml:"kernel_id"`
	RamdiskID          string            `yaml:"ramdisk_id"`
	AMILaunchIndex     int               `yaml:"ami_launch_index"`
	ReservationID      string            `yaml:"reservation_id"`
	AccountID          string            `yaml:"account_id"`
	Architecture       string            `yaml:"architecture"`
	LifeCycle          string            `yaml:"instance_life_cycle"`
	AvailabilityZone   string            `yaml:"availability_zone"`
	AvailabilityZoneID string            `yaml:"availability_zone_id"`
	PlacementGroup     string            `yaml:"placement_group"`
	PartitionNumber    int               `yaml:"partition_number"`
	HostID             string            `yaml:"host_id"`
	PrivateIP          string            `yaml:"private_ip"`
	PublicIP           string            `yaml:"public_ip"`
	IPv6               []string          `yaml:"ipv6"`
	Hostname           string            `yaml:"hostname"`
	PublicHostname     string            `yaml:"public_hostname"`
	MACAddress         string            `yaml:"mac_address"`
	InterfaceID        string            `yaml:"interface_id"`
	VPCID              string            `yaml:"vpc_id"`
	VPCCIDR            string            `yaml:"vpc_cidr"`
	SubnetID           string            `yaml:"subnet_id"`
	SubnetCIDR         string            `yaml:"subnet_cidr"`
	SubnetIPv6CIDRs    []string          `yaml:"subnet_ipv6_cidr_blocks"`
	VPCIPv6CIDRs       []string          `yaml:"vpc_ipv6_cidr_blocks"`
	SecurityGroups     []string          `yaml:"security_groups"`
	SecurityGroupIDs   []string          `yaml:"security_group_ids"`
	KeyName            string            `yaml:"key_name"`
	PublicKey          string            `yaml:"public_key"`
	ProductCodes       []string          `yaml:"product_codes"`
	BlockDeviceMapping map[string]string `yaml:"block_device_mapping"`
	Monitoring         *bool             `yaml:"monitoring"`
	Tags               map[string]string `yaml:"tags"`
}

// MirrorConfig is instance.mirror: the live instance a tenant copies.
type MirrorConfig struct {
	InstanceID string   `yaml:"instance_id"`
	Filters    []string `yaml:"filters"`
	Region     string   `yaml:"region"`
	Profile    string   `yaml:"profile"`
	Refresh    Duration `yaml:"refresh"`
}

// Duration is a time.Duration written as Go writes one ("90s", "1h").
type Duration time.Duration

// decodeNode accepts Go duration strings only, so that a bare 3600
// (seconds? hours?) is an error instead of a guess.
func (d *Duration) decodeNode(dec *decoder, n *yaml.Node, path []any) bool {
	if n.Kind != yaml.ScalarNode {
		return dec.mismatch(n, "a duration", path)
	}
	v, err := time.ParseDuration(n.Value)
	switch {
	case err == nil:
		*d = Duration(v)
		return true
	case isNumber(n.Value):
		return dec.invalid(n, path, "%s is not a duration: write it with a unit, e.g. %s", shown(n), withUnit(n.Value))
	}
	return dec.invalid(n, path, "%s is not a duration such as 90s, 15m or 1h", shown(n))
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// withUnit writes a number of seconds as durations: 3600 as 1h or 3600s.
func withUnit(secs string) string {
	switch n, err := strconv.Atoi(secs); {
	case err != nil || n == 0:
	case n%3600 == 0:
		return fmt.Sprintf("%dh or %ss", n/3600, secs)
	case n%60 == 0:
		return fmt.Sprintf("%dm or %ss", n/60, secs)
	}
	return secs + "s"
}
