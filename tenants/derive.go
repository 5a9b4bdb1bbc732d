package tenants

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// What EC2 would have given an instance whose user said nothing more. Every
// derived id is a hash of stable inputs (the tenant's name, its account and
// region), so a tenant keeps its identity across restarts and hosts.

const (
	defaultRegion       = "us-east-1"
	defaultInstanceType = "t3.micro"
	defaultAccountID    = "123456789012"
)

// defaultVPC is the CIDR of the default VPC EC2 creates in every region; its
// subnets are the /20s in zone order.
var defaultVPC = netip.MustParsePrefix("172.31.0.0/16")

// stableID returns the 17 lower-case hex digits of an EC2 resource id
// (i-…, ami-…, vpc-…), determined by the parts.
func stableID(parts ...string) string {
	sum := stableBytes(parts...)
	return hex.EncodeToString(sum[:])[:17]
}

// stableBytes returns 32 bytes determined by the parts.
func stableBytes(parts ...string) [32]byte {
	return sha256.Sum256([]byte(strings.Join(parts, "\x00")))
}

var (
	azPattern        = regexp.MustCompile(`^([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+)([a-z])$`)
	localZonePattern = regexp.MustCompile(`^([a-z]{2}-[a-z]+-\d+)-[a-z]+-\d+([a-z])$`)
	regionPattern    = regexp.MustCompile(`^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+$`)
)

// RegionOfZone is the region an availability zone (or local zone) is in, or
// "" when az is not a zone name.
func RegionOfZone(az string) string {
	if m := azPattern.FindStringSubmatch(az); m != nil {
		return m[1]
	}
	if m := localZonePattern.FindStringSubmatch(az); m != nil {
		return m[1]
	}
	return ""
}

// zoneID derives an AZ id of EC2's shape (us-east-1a -> use1-az1). Real ids
// are shuffled per account; this mapping is the unshuffled one.
func zoneID(region, az string) string {
	parts := strings.Split(region, "-")
	if len(parts) < 3 || az == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1 : len(parts)-1] {
		b.WriteString(directionCode(p))
	}
	b.WriteString(parts[len(parts)-1])
	return fmt.Sprintf("%s-az%d", b.String(), az[len(az)-1]-'a'+1)
}

func directionCode(word string) string {
	switch word {
	case "north", "south", "east", "west", "central":
		return word[:1]
	case "northeast", "southeast", "northwest", "southwest":
		return word[:1] + word[5:6]
	case "gov":
		return "g"
	}
	return word[:1]
}

// Partition is the AWS partition of a region and its service domain.
func Partition(region string) (partition, domain string) {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn", "amazonaws.com.cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov", "amazonaws.com"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso", "c2s.ic.gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b", "sc2s.sgov.gov"
	}
	return "aws", "amazonaws.com"
}

// localHostname is EC2's IP-based private DNS name.
func localHostname(ip netip.Addr, region string) string {
	if !ip.IsValid() {
		return ""
	}
	dashed := strings.ReplaceAll(ip.String(), ".", "-")
	if region == "us-east-1" {
		return "ip-" + dashed + ".ec2.internal"
	}
	return "ip-" + dashed + "." + region + ".compute.internal"
}

// publicHostname is EC2's public DNS name for a public address.
func publicHostname(ip netip.Addr, region string) string {
	if !ip.IsValid() {
		return ""
	}
	dashed := strings.ReplaceAll(ip.String(), ".", "-")
	_, domain := Partition(region)
	if region == "us-east-1" {
		return "ec2-" + dashed + ".compute-1." + domain
	}
	return "ec2-" + dashed + "." + region + ".compute." + domain
}

// zoneSubnet is the default VPC's subnet for a zone: the zone letter's /20.
func zoneSubnet(az string) netip.Prefix {
	i := 0
	if az != "" {
		i = int(az[len(az)-1]-'a') % 16
	}
	b := defaultVPC.Addr().As4()
	b[2] = byte(16 * i)
	return netip.PrefixFrom(netip.AddrFrom4(b), 20)
}

// hostIn picks a stable host address inside an IPv4 subnet, avoiding the
// four addresses AWS reserves at its start and the broadcast at its end.
func hostIn(subnet netip.Prefix, seed string) netip.Addr {
	hostBits := 32 - subnet.Bits()
	size := uint32(1) << hostBits
	base := subnet.Masked().Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	h := stableBytes("host", seed)
	off := uint32(h[0])<<24 | uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3])
	if size > 5 {
		off = 4 + off%(size-5)
	} else {
		off = 0
	}
	n += off
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// stableMAC is a locally administered unicast MAC, as EC2's ENIs have.
func stableMAC(seed string) string {
	h := stableBytes("mac", seed)
	h[0] = h[0]&0xfc | 0x02
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4], h[5])
}

// instanceProfileID has the shape of IAM's unique ids (AIPA + 17 characters).
func instanceProfileID(seed string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	h := stableBytes("instance-profile", seed)
	b := []byte("AIPA")
	for i := 0; i < 17; i++ {
		b = append(b, alphabet[h[i]%32])
	}
	return string(b)
}

var gravitonType = regexp.MustCompile(`^(?:a1|[a-z]+\d+g[a-z]*)\.`)

// architectureOf guesses the CPU architecture from an instance type.
func architectureOf(instanceType string) string {
	if gravitonType.MatchString(instanceType) {
		return "arm64"
	}
	return "x86_64"
}
