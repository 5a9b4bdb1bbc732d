package tenants

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Static is an instance: block once validated: the values a tenant's
// configuration sets explicitly. Apply lays them over an Instance, field by
// field, whether that Instance was derived from the tenant's name or copied
// from a live instance by a mirror: static values always win.
type Static struct {
	cfg        InstanceConfig // validated; cfg.Mirror is not used
	privateIP  netip.Addr
	publicIP   netip.Addr
	ipv6       []netip.Addr
	vpcCIDR    netip.Prefix
	subnetCIDR netip.Prefix
	subnetIPv6 []netip.Prefix
	vpcIPv6    []netip.Prefix
	mac        string
}

// parseStatic validates an instance: block; invalid values are reported and
// left out.
func parseStatic(c InstanceConfig, path []any, el errorList) Static {
	check(el, at(path, "instance_id"), c.InstanceID, instanceIDPattern, "an instance id (i- and 8 or 17 hex digits)")
	check(el, at(path, "instance_type"), c.InstanceType, typePattern, "an instance type such as t3.micro")
	check(el, at(path, "ami_id"), c.AMIID, amiPattern, "an AMI id (ami- and 8 or 17 hex digits)")
	check(el, at(path, "kernel_id"), c.KernelID, akiPattern, "a kernel id (aki-...)")
	check(el, at(path, "ramdisk_id"), c.RamdiskID, ariPattern, "a ramdisk id (ari-...)")
	check(el, at(path, "reservation_id"), c.ReservationID, rPattern, "a reservation id (r-...)")
	check(el, at(path, "account_id"), c.AccountID, accountPattern, "an account id (12 digits)")
	check(el, at(path, "availability_zone_id"), c.AvailabilityZoneID, azIDPattern, "an availability zone id such as use1-az1")
	check(el, at(path, "host_id"), c.HostID, hostIDPattern, "a dedicated host id (h-...)")
	check(el, at(path, "vpc_id"), c.VPCID, vpcPattern, "a VPC id (vpc- and 8 or 17 hex digits)")
	check(el, at(path, "subnet_id"), c.SubnetID, subnetPattern, "a subnet id (subnet-...)")
	check(el, at(path, "interface_id"), c.InterfaceID, eniPattern, "a network interface id (eni-...)")
	for i, id := range c.SecurityGroupIDs {
		check(el, at(path, "security_group_ids", i), id, sgPattern, "a security group id (sg-...)")
	}
	for i, pc := range c.ProductCodes {
		check(el, at(path, "product_codes", i), pc, productPattern, "a product code")
	}
	if c.LifeCycle != "" && !lifeCycles[c.LifeCycle] {
		el.add(at(path, "instance_life_cycle"), "%q: must be on-demand, spot, scheduled or capacity-block", c.LifeCycle)
	}
	if c.Architecture != "" && !architectures[c.Architecture] {
		el.add(at(path, "architecture"), "%q: must be x86_64, arm64, i386, x86_64_mac or arm64_mac", c.Architecture)
	}
	if c.AMILaunchIndex < 0 {
		el.add(at(path, "ami_launch_index"), "%d: must not be negative", c.AMILaunchIndex)
	}
	if c.PartitionNumber < 0 || c.PartitionNumber > 7 {
		el.add(at(path, "partition_number"), "%d: must be between 1 and 7 (0: none)", c.PartitionNumber)
	}
	if c.PublicKey != "" && c.KeyName == "" && el.decoded(at(path, "key_name")) {
		el.add(at(path, "public_key"), "a public key is served under its key_name: set key_name too")
	}
	if c.AvailabilityZone != "" && RegionOfZone(c.AvailabilityZone) == "" {
		el.add(at(path, "availability_zone"), "%q is not an availability zone such as us-east-1a", c.AvailabilityZone)
		c.AvailabilityZone = ""
	}
	for k := range c.BlockDeviceMapping {
		if !validDeviceKey(k) {
			el.add(at(path, "block_device_mapping", k), "%q: keys are ami, root, swap, ebsN or ephemeralN", k)
		}
	}
	c.PublicKey = strings.TrimSpace(c.PublicKey)
	c.Mirror = nil

	s := Static{
		privateIP:  parseAddr4(el, at(path, "private_ip"), c.PrivateIP),
		publicIP:   parseAddr4(el, at(path, "public_ip"), c.PublicIP),
		vpcCIDR:    parseCIDR(el, at(path, "vpc_cidr"), c.VPCCIDR, true),
		subnetCIDR: parseCIDR(el, at(path, "subnet_cidr"), c.SubnetCIDR, true),
	}
	if c.MACAddress != "" {
		hw, err := net.ParseMAC(c.MACAddress)
		if err != nil || len(hw) != 6 {
			el.add(at(path, "mac_address"), "%q is not a MAC address such as 0e:49:61:0f:c3:11", c.MACAddress)
		} else {
			s.mac = hw.String()
		}
	}
	for i, v := range c.IPv6 {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is6() || a.Is4In6() {
			el.add(at(path, "ipv6", i), "%q is not an IPv6 address", v)
			continue
		}
		s.ipv6 = append(s.ipv6, a)
	}
	s.subnetIPv6 = parseIPv6Blocks(el, at(path, "subnet_ipv6_cidr_blocks"), c.SubnetIPv6CIDRs, 64)
	s.vpcIPv6 = parseIPv6Blocks(el, at(path, "vpc_ipv6_cidr_blocks"), c.VPCIPv6CIDRs, 60)
	if len(s.subnetIPv6) > 0 {
		for i, a := range s.ipv6 {
			if !anyContains(s.subnetIPv6, a) {
				el.add(at(path, "ipv6", i), "%s is outside the subnet's IPv6 blocks %s", a, prefixList(s.subnetIPv6))
			}
		}
	}
	if len(s.vpcIPv6) > 0 {
		for i, p := range s.subnetIPv6 {
			if !anyContains(s.vpcIPv6, p.Addr()) {
				el.add(at(path, "subnet_ipv6_cidr_blocks", i), "%s is outside the VPC's IPv6 blocks %s", p, prefixList(s.vpcIPv6))
			}
		}
	}
	s.cfg = c
	return s
}

// parseIPv6Blocks reads a list of IPv6 CIDR blocks no longer than
// /longest: EC2 gives VPCs /44 to /60 and subnets /44 to /64.
func parseIPv6Blocks(el errorList, path []any, list []string, longest int) []netip.Prefix {
	var out []netip.Prefix
	for i, v := range list {
		p, err := netip.ParsePrefix(v)
		switch {
		case err != nil || !p.Addr().Is6() || p.Addr().Is4In6():
			el.add(at(path, i), "%q is not an IPv6 CIDR block such as 2600:1f18:1:100::/64", v)
		case p.Masked() != p:
			el.add(at(path, i), "%q has host bits set; did you mean %s?", v, p.Masked())
		case p.Bits() < 44 || p.Bits() > longest:
			el.add(at(path, i), "%q: EC2 allows /44 to /%d here", v, longest)
		default:
			out = append(out, p)
		}
	}
	return out
}

func anyContains(blocks []netip.Prefix, a netip.Addr) bool {
	for _, b := range blocks {
		if b.Contains(a) {
			return true
		}
	}
	return false
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// applyExtras is Apply for what in.Extras holds, which may be shared: it is
// copied only when the configuration sets any of it.
func (s *Static) applyExtras(in *Instance) {
	x := *in.extras()
	if !s.setExtras(&x) {
		return // in keeps its Extras, shared or none
	}
	own := x
	in.Extras = own.orNil()
}

// setExtras lays the configured values of Extras over x, and reports
// whether the configuration sets any.
func (s *Static) setExtras(x *InstanceExtras) bool {
	c := &s.cfg
	any := false
	str := func(dst *string, v string) {
		if v != "" {
			*dst, any = v, true
		}
	}
	num := func(dst *int, v int) {
		if v != 0 {
			*dst, any = v, true
		}
	}
	str(&x.KernelID, c.KernelID)
	str(&x.RamdiskID, c.RamdiskID)
	str(&x.Architecture, c.Architecture)
	str(&x.LifeCycle, c.LifeCycle)
	str(&x.PlacementGroup, c.PlacementGroup)
	str(&x.HostID, c.HostID)
	str(&x.KeyName, c.KeyName)
	str(&x.PublicKey, c.PublicKey)
	num(&x.LaunchIndex, c.AMILaunchIndex)
	num(&x.PartitionNumber, c.PartitionNumber)
	if c.Monitoring != nil {
		x.Monitoring, any = *c.Monitoring, true
	}
	if len(c.ProductCodes) > 0 {
		x.ProductCodes, any = c.ProductCodes, true
	}
	return any
}

// Apply lays the static values over in, field by field; what the
// configuration leaves out keeps in's value. Maps (tags, block devices) are
// merged key by key. in's slices and maps are never written to, so in may
// share them with a cached copy.
func (s *Static) Apply(in *Instance) {
	c := &s.cfg
	set(&in.ID, c.InstanceID)
	set(&in.Type, c.InstanceType)
	set(&in.AMIID, c.AMIID)
	set(&in.ReservationID, c.ReservationID)
	set(&in.AccountID, c.AccountID)
	set(&in.LocalHostname, c.Hostname)
	set(&in.PublicHostname, c.PublicHostname)
	s.applyExtras(in)
	if len(c.SecurityGroups) > 0 {
		in.SecurityGroups = c.SecurityGroups
	}
	if az := c.AvailabilityZone; az != "" && az != in.AvailabilityZone {
		// The region is the zone's, and another zone's id would contradict
		// it: derive the id unless it is set too.
		in.AvailabilityZone, in.Region = az, RegionOfZone(az)
		in.AvailabilityZoneID = zoneID(in.Region, az)
	}
	set(&in.AvailabilityZoneID, c.AvailabilityZoneID)
	in.BlockDevices = merged(in.BlockDevices, c.BlockDeviceMapping)
	in.Tags = merged(in.Tags, c.Tags)
	if s.setsPrimaryInterface() {
		s.applyPrimary(in)
	}
}

// setsPrimaryInterface reports whether any static value belongs to the
// primary network interface.
func (s *Static) setsPrimaryInterface() bool {
	c := &s.cfg
	return s.privateIP.IsValid() || s.publicIP.IsValid() || len(s.ipv6) > 0 || s.mac != "" ||
		len(s.subnetIPv6) > 0 || len(s.vpcIPv6) > 0 ||
		s.vpcCIDR.IsValid() || s.subnetCIDR.IsValid() || c.InterfaceID != "" || c.VPCID != "" ||
		c.SubnetID != "" || len(c.SecurityGroups) > 0 || len(c.SecurityGroupIDs) > 0 ||
		c.Hostname != "" || c.PublicHostname != ""
}

func (s *Static) applyPrimary(in *Instance) {
	c := &s.cfg
	in.Interfaces = slices.Clone(in.Interfaces)
	if len(in.Interfaces) == 0 {
		in.Interfaces = []Interface{{}}
	}
	p := &in.Interfaces[0]
	set(&p.MAC, s.mac)
	set(&p.ID, c.InterfaceID)
	set(&p.VPCID, c.VPCID)
	set(&p.SubnetID, c.SubnetID)
	set(&p.LocalHostname, c.Hostname)
	set(&p.PublicHostname, c.PublicHostname)
	if p.OwnerID == "" {
		p.OwnerID = c.AccountID
	}
	if len(c.SecurityGroups) > 0 {
		p.SecurityGroups = c.SecurityGroups
	}
	if len(c.SecurityGroupIDs) > 0 {
		p.SecurityGroupIDs = c.SecurityGroupIDs
	}
	if s.subnetCIDR.IsValid() {
		p.SubnetIPv4CIDR = s.subnetCIDR
	}
	if s.vpcCIDR.IsValid() {
		// The primary block; the VPC's other blocks stay.
		p.VPCIPv4CIDRs = replaceFirst(p.VPCIPv4CIDRs, s.vpcCIDR)
	}
	if len(s.ipv6) > 0 {
		p.IPv6s = s.ipv6
	}
	s.applyIPv6Blocks(p)
	if s.privateIP.IsValid() {
		old := p.LocalIPv4s
		p.LocalIPv4s = replaceFirst(old, s.privateIP)
		if len(old) > 0 && len(p.IPv4Associations) > 0 {
			// The public address that pointed at the replaced primary
			// address now points at the new one.
			assoc := make(map[netip.Addr]netip.Addr, len(p.IPv4Associations))
			for pub, priv := range p.IPv4Associations {
				if priv == old[0] {
					priv = s.privateIP
				}
				assoc[pub] = priv
			}
			p.IPv4Associations = assoc
		}
	}
	if s.publicIP.IsValid() {
		p.PublicIPv4s = replaceFirst(p.PublicIPv4s, s.publicIP)
		assoc := map[netip.Addr]netip.Addr{}
		for pub, priv := range p.IPv4Associations {
			if len(p.LocalIPv4s) == 0 || priv != p.LocalIPv4s[0] {
				assoc[pub] = priv
			}
		}
		if len(p.LocalIPv4s) > 0 {
			assoc[s.publicIP] = p.LocalIPv4s[0]
		}
		p.IPv4Associations = assoc
	}
}

// applyIPv6Blocks sets the interface's IPv6 CIDR blocks: the configured
// ones, else, when the configuration gives IPv6 addresses or subnet blocks
// that what p has does not hold, blocks derived from them as EC2 would
// have assigned them: the subnet is the /64 holding the first address, the
// VPC the /56 holding the subnet (Amazon's pool gives VPCs a /56 and
// subnets /64s out of it). Nothing is derived for a mirrored interface the
// configuration says nothing IPv6 about: its blocks are the copy's, and
// unknown ones answer 404.
func (s *Static) applyIPv6Blocks(p *Interface) {
	if len(s.subnetIPv6) > 0 {
		p.SubnetIPv6CIDRs = s.subnetIPv6
	}
	if len(s.vpcIPv6) > 0 {
		p.VPCIPv6CIDRs = s.vpcIPv6
	}
	if len(s.ipv6) > 0 && !anyContains(p.SubnetIPv6CIDRs, s.ipv6[0]) {
		p.SubnetIPv6CIDRs = []netip.Prefix{netip.PrefixFrom(s.ipv6[0], 64).Masked()}
	}
	if (len(s.ipv6) > 0 || len(s.subnetIPv6) > 0) && len(p.SubnetIPv6CIDRs) > 0 {
		subnet := p.SubnetIPv6CIDRs[0]
		if !anyContains(p.VPCIPv6CIDRs, subnet.Addr()) {
			p.VPCIPv6CIDRs = []netip.Prefix{netip.PrefixFrom(subnet.Addr(), min(56, subnet.Bits())).Masked()}
		}
	}
}

// replaceFirst returns a copy of list whose first element is v.
func replaceFirst[T any](list []T, v T) []T {
	out := make([]T, 1, max(len(list), 1))
	out[0] = v
	if len(list) > 1 {
		out = append(out, list[1:]...)
	}
	return out
}

// merged returns base with over's keys laid on it, as a new map; nil when
// both are empty.
func merged(base, over map[string]string) map[string]string {
	if len(over) == 0 {
		return base
	}
	out := maps.Clone(base)
	if out == nil {
		out = make(map[string]string, len(over))
	}
	maps.Copy(out, over)
	return out
}

func set(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}
