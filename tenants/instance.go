package tenants

import (
	"net/netip"
	"time"
)

// Instance holds every attribute of the IMDS catalogue. Empty values are
// absent from the catalogue (their paths answer 404), exactly as on an
// instance that lacks them, e.g. a public address.
//
// Its slices, maps and Extras may be shared with other tenants' (Build
// interns the values tenants hold alike): replace them, never write into
// them.
type Instance struct {
	ID             string
	Type           string
	AMIID          string
	ReservationID  string
	AccountID      string
	PendingTime    time.Time
	SecurityGroups []string

	Region             string
	AvailabilityZone   string
	AvailabilityZoneID string

	LocalHostname  string
	PublicHostname string

	// Extras holds the attributes that few instances set, or that many
	// hold alike; nil when none is set. Read it through the methods of the
	// same names, which read a nil Extras as the zero value.
	Extras *InstanceExtras

	// BlockDevices maps IMDS names (ami, root, ebs1, ephemeral0, swap) to
	// device names.
	BlockDevices map[string]string
	Tags         map[string]string

	// Interfaces are the network interfaces by device number; the first is
	// the primary one whose addresses are the instance's.
	Interfaces []Interface
}

// InstanceExtras are an instance's attributes that are rarely set (kernel,
// ramdisk, placement group, host, key pair, product codes) or that
// instances of one configuration hold alike (architecture, life cycle):
// apart, Build gives tenants with equal ones one InstanceExtras for them
// all, and an instance without them carries only a nil pointer.
type InstanceExtras struct {
	KernelID     string
	RamdiskID    string
	LaunchIndex  int
	Architecture string
	LifeCycle    string // on-demand | spot | scheduled
	ProductCodes []string
	BillingCodes []string
	Monitoring   bool // dynamic/fws/instance-monitoring

	PlacementGroup  string
	PartitionNumber int // 0: not in a partition placement group
	HostID          string

	KeyName   string
	PublicKey string // OpenSSH format; served under public-keys/0/openssh-key
}

// orNil is x, or nil when x sets nothing.
func (x *InstanceExtras) orNil() *InstanceExtras {
	if x == nil || x.KernelID == "" && x.RamdiskID == "" && x.LaunchIndex == 0 && x.Architecture == "" &&
		x.LifeCycle == "" && x.ProductCodes == nil && x.BillingCodes == nil && !x.Monitoring &&
		x.PlacementGroup == "" && x.PartitionNumber == 0 && x.HostID == "" && x.KeyName == "" && x.PublicKey == "" {
		return nil
	}
	return x
}

// Writable is in's Extras made its own to write into: a copy of what it
// held, which may be shared. Set in.Extras to its orNil when done, so that
// an instance left without extras holds none.
func (in *Instance) Writable() *InstanceExtras {
	x := new(InstanceExtras)
	if in.Extras != nil {
		*x = *in.Extras
	}
	in.Extras = x
	return x
}

// noInstanceExtras is what a nil Extras reads as. Never written to.
var noInstanceExtras InstanceExtras

// extras is the Extras to read from: the zero InstanceExtras when there are none.
func (in *Instance) extras() *InstanceExtras {
	if in.Extras == nil {
		return &noInstanceExtras
	}
	return in.Extras
}

// KernelID is Extras.KernelID, empty without Extras.
func (in *Instance) KernelID() string {
	return in.extras().KernelID
}

// RamdiskID is Extras.RamdiskID, empty without Extras.
func (in *Instance) RamdiskID() string {
	return in.extras().RamdiskID
}

// LaunchIndex is Extras.LaunchIndex, 0 without Extras.
func (in *Instance) LaunchIndex() int {
	return in.extras().LaunchIndex
}

// Architecture is Extras.Architecture, empty without Extras.
func (in *Instance) Architecture() string {
	return in.extras().Architecture
}

// LifeCycle is Extras.LifeCycle, empty without Extras.
func (in *Instance) LifeCycle() string {
	return in.extras().LifeCycle
}

// ProductCodes is Extras.ProductCodes, nil without Extras.
func (in *Instance) ProductCodes() []string {
	return in.extras().ProductCodes
}

// BillingCodes is Extras.BillingCodes, nil without Extras.
func (in *Instance) BillingCodes() []string {
	return in.extras().BillingCodes
}

// Monitoring is Extras.Monitoring, false without Extras.
func (in *Instance) Monitoring() bool {
	return in.extras().Monitoring
}

// PlacementGroup is Extras.PlacementGroup, empty without Extras.
func (in *Instance) PlacementGroup() string {
	return in.extras().PlacementGroup
}

// PartitionNumber is Extras.PartitionNumber, 0 without Extras.
func (in *Instance) PartitionNumber() int {
	return in.extras().PartitionNumber
}

// HostID is Extras.HostID, empty without Extras.
func (in *Instance) HostID() string {
	return in.extras().HostID
}

// KeyName is Extras.KeyName, empty without Extras.
func (in *Instance) KeyName() string {
	return in.extras().KeyName
}

// PublicKey is Extras.PublicKey, empty without Extras.
func (in *Instance) PublicKey() string {
	return in.extras().PublicKey
}

// Interface is one network interface, served under
// network/interfaces/macs/<mac>/.
type Interface struct {
	MAC              string // lower-case, colon-separated
	ID               string
	DeviceNumber     int32 // EC2's own width: two of them fill one word
	NetworkCardIndex int32
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
