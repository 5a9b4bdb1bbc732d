package tenants

import (
	"net/netip"
	"time"
)

// Instance holds every attribute of the IMDS catalogue. Empty values are
// absent from the catalogue (their paths answer 404), exactly as on an
// instance that lacks them, e.g. a public address.
//
// Its slices and maps may be shared with other tenants' (Build interns the
// values tenants hold alike): replace them, never write into them.
type Instance struct {
	ID             string
	Type           string
	AMIID          string
	KernelID       string
	RamdiskID      string
	LaunchIndex    int
	ReservationID  string
	AccountID      string
	Architecture   string
	LifeCycle      string // on-demand | spot | scheduled
	PendingTime    time.Time
	ProductCodes   []string
	BillingCodes   []string
	Monitoring     bool // dynamic/fws/instance-monitoring
	SecurityGroups []string

	Region             string
	AvailabilityZone   string
	AvailabilityZoneID string
	PlacementGroup     string
	PartitionNumber    int // 0: not in a partition placement group
	HostID             string

	LocalHostname  string
	PublicHostname string
	KeyName        string
	PublicKey      string // OpenSSH format; served under public-keys/0/openssh-key

	// BlockDevices maps IMDS names (ami, root, ebs1, ephemeral0, swap) to
	// device names.
	BlockDevices map[string]string
	Tags         map[string]string

	// Interfaces are the network interfaces by device number; the first is
	// the primary one whose addresses are the instance's.
	Interfaces []Interface
}

// Interface is one network interface, served under
// network/interfaces/macs/<mac>/.
type Interface struct {
	MAC              string // lower-case, colon-separated
	ID               string
	DeviceNumber     int
	NetworkCardIndex int
	OwnerID          string
	LocalHostname    string
	PublicHostname   string
	LocalIPv4s       []netip.Addr
	PublicIPv4s      []netip.Addr
	IPv6s            []netip.Addr
	SecurityGroups   []string
	SecurityGroupIDs []string
	SubnetID         string
	SubnetIPv4CIDR   netip.Prefix
	SubnetIPv6CIDRs  []netip.Prefix
	VPCID            string
	VPCIPv4CIDRs     []netip.Prefix // the first is the VPC's primary block
	VPCIPv6CIDRs     []netip.Prefix
	// IPv4Associations maps each public address to the private one it is
	// associated with.
	IPv4Associations map[netip.Addr]netip.Addr
}

// Primary returns the primary network interface, or the zero Interface.
func (in *Instance) Primary() Interface {
	if len(in.Interfaces) == 0 {
		return Interface{}
	}
	return in.Interfaces[0]
}

// PrivateIP is the primary private IPv4 address (the zero Addr when unknown).
func (in *Instance) PrivateIP() netip.Addr {
	if p := in.Primary(); len(p.LocalIPv4s) > 0 {
		return p.LocalIPv4s[0]
	}
	return netip.Addr{}
}

// PublicIP is the primary public IPv4 address (the zero Addr when none).
func (in *Instance) PublicIP() netip.Addr {
	if p := in.Primary(); len(p.PublicIPv4s) > 0 {
		return p.PublicIPv4s[0]
	}
	return netip.Addr{}
}
