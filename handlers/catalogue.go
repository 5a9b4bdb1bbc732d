package handlers

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// kind says how an entry's body is produced.
type kind uint8

const (
	static          kind = iota // body rendered once, when the catalogue is built
	roleCredentials             // the tenant's role credentials, from the credential source
	iamInfo                     // iam/info, which names the credentials' account
	signatureDoc                // dynamic/instance-identity/signature, signed once when first asked
	pkcs7Doc                    // dynamic/instance-identity/pkcs7, likewise
	rsa2048Doc                  // dynamic/instance-identity/rsa2048, likewise
)

const (
	textPlain   = "text/plain"
	octetStream = "application/octet-stream"
)

// node is one path of a tree, a directory listing or a value.
type node struct {
	body        []byte
	contentType string
	dir         bool
	kind        kind
	children    map[string]bool // name -> is a directory; listings only
	listing     bool            // body set explicitly, not derived from children
	since       string          // the first version this entry serves (introducedIn)
}

// Where the identity document and its signatures are, below the version.
const (
	identityDocumentPath  = "dynamic/instance-identity/document"
	identitySignaturePath = "dynamic/instance-identity/signature"
	identityPKCS7Path     = "dynamic/instance-identity/pkcs7"
	identityRSA2048Path   = "dynamic/instance-identity/rsa2048"
)

// treeSize is the room a tree is made with: a tenant derived from its name
// has 59 entries, a mirrored one more.
const treeSize = 64

// tree is a tenant's metadata tree while it is built, keyed by the path
// below the version without leading or trailing slashes ("" is the
// version's root). An interface's MAC and the role's name stand in it as
// placeholders (names), so that tenants of the same shape build the same
// paths; compile turns it into the catalogue served.
type tree map[string]*node

func (c tree) add(path string, e *node) {
	c[path] = e
	for path != "" {
		parent, name := "", path
		if i := strings.LastIndexByte(path, '/'); i >= 0 {
			parent, name = path[:i], path[i+1:]
		}
		d := c[parent]
		if d == nil {
			d = &node{dir: true, contentType: textPlain, children: map[string]bool{}}
			c[parent] = d
		}
		d.children[name] = c[path].dir
		path = parent
	}
}

func (c tree) text(path, v string) {
	if v != "" {
		c.add(path, &node{body: []byte(v), contentType: textPlain})
	}
}

func (c tree) lines(path string, vs []string) {
	if len(vs) > 0 {
		c.text(path, strings.Join(vs, "\n"))
	}
}

// dir adds a directory whose listing is not its children's names, such as
// public-keys/ ("0=name").
func (c tree) dir(path string, listing string) {
	c.add(path, &node{dir: true, contentType: textPlain, children: map[string]bool{}, body: []byte(listing), listing: true})
}

// date sets the version an entry is first served by: a value's (or a
// listing's set explicitly) from introducedIn, a directory's from its
// oldest child.
func (c tree) date(path string) string {
	e := c[path]
	if e.since != "" {
		return e.since
	}
	if !e.dir || e.listing || len(e.children) == 0 {
		e.since = introducedIn(path)
		return e.since
	}
	e.since = "latest"
	for name := range e.children {
		if s := c.date(join(path, name)); s < e.since {
			e.since = s
		}
	}
	return e.since
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// buildCatalogue renders everything a tenant's instance answers that does
// not change until the tenant does. sign signs the identity document;
// shapes, when not nil, shares layouts between tenants.
func buildCatalogue(t *tenants.Tenant, sign *Signer, shapes *layouts) *catalogue {
	return buildCatalogueAt(t, sign, shapes, nil, time.Time{})
}

// buildCatalogueAt is buildCatalogue with the lifecycle events visible at
// now.
func buildCatalogueAt(t *tenants.Tenant, sign *Signer, shapes *layouts, events []ScheduledEvent, now time.Time) *catalogue {
	in := &t.Instance
	// Sized for a derived tenant's paths and directories (59 slots): the
	// first request of each of 10,000 tenants made a few KB of garbage
	// growing it.
	c := make(tree, treeSize)
	var n names
	md := func(p string, v string) { c.text("meta-data/"+p, v) }

	md("ami-id", in.AMIID)
	// A mirrored tenant not copied yet has no instance id: what only the
	// copy can say (the launch index, the identity document) answers 404.
	known := in.ID != ""
	if known {
		md("ami-launch-index", strconv.Itoa(in.LaunchIndex()))
	}
	md("ami-manifest-path", "(unknown)")
	md("hostname", in.LocalHostname)
	md("local-hostname", in.LocalHostname)
	md("instance-action", "none")
	md("instance-id", in.ID)
	md("instance-life-cycle", in.LifeCycle())
	md("instance-type", in.Type)
	md("kernel-id", in.KernelID())
	md("ramdisk-id", in.RamdiskID())
	md("local-ipv4", addrString(in.PrivateIP()))
	md("public-ipv4", addrString(in.PublicIP()))
	md("public-hostname", in.PublicHostname)
	md("mac", in.Primary().MAC)
	md("profile", "default-hvm")
	md("reservation-id", in.ReservationID)
	c.lines("meta-data/security-groups", in.SecurityGroups)
	c.lines("meta-data/product-codes", in.ProductCodes())
	if p := in.Primary(); len(p.IPv6s) > 0 {
		md("ipv6", p.IPv6s[0].String())
	}
	md("metrics/vhostmd", `<?xml version="1.0" encoding="UTF-8"?>`)
	md("events/maintenance/history", "[]")
	md("events/maintenance/scheduled", "[]")

	md("placement/availability-zone", in.AvailabilityZone)
	md("placement/availability-zone-id", in.AvailabilityZoneID)
	md("placement/region", in.Region)
	md("placement/group-name", in.PlacementGroup())
	md("placement/host-id", in.HostID())
	if in.PartitionNumber() > 0 {
		md("placement/partition-number", strconv.Itoa(in.PartitionNumber()))
	}
	partition, domain := tenants.Partition(in.Region)
	md("services/domain", domain)
	md("services/partition", partition)

	for name, dev := range in.BlockDevices {
		md("block-device-mapping/"+name, dev)
	}
	if in.KeyName() != "" {
		c.dir("meta-data/public-keys", "0="+in.KeyName())
		c.dir("meta-data/public-keys/0", "openssh-key")
		if in.PublicKey() != "" {
			md("public-keys/0/openssh-key", in.PublicKey()+"\n")
		}
	}
	if t.IMDS.Tags && len(in.Tags) > 0 {
		c.add("meta-data/tags/instance", &node{dir: true, contentType: textPlain, children: map[string]bool{}})
		for k, v := range in.Tags {
			if validTagPath(k) {
				c.add("meta-data/tags/instance/"+k, &node{body: []byte(v), contentType: textPlain})
			}
		}
	}
	for _, ifc := range in.Interfaces {
		if ifc.MAC != "" { // unknown until mirrored
			addInterface(c, macsDir+macPlaceholder(len(n.macs)), &ifc)
			n.macs = append(n.macs, ifc.MAC)
		}
	}
	if r := t.Role; r != nil {
		n.role = r.Name
		c.add("meta-data/iam/info", &node{contentType: textPlain, kind: iamInfo})
		c.add(roleDir+rolePlaceholder, &node{contentType: textPlain, kind: roleCredentials})
	}
	// identity-credentials/ is left out (404, not listed), although every
	// instance has it. On EC2 its credentials carry no permissions: they
	// only prove to AWS which instance calls. Serving the role's there
	// would hand its permissions to whatever reads a path meant to grant
	// none. Credentials scoped to nothing would need an AssumeRole with a
	// deny-all session policy for each tenant, which a tenant without
	// role_arn cannot make, and one more upstream call to keep warm so that
	// no request waits on STS. The path's readers are AWS's own agents (the
	// SSM Agent's default host management), which have no use for it off
	// EC2. docs/credentials.md says so.

	var doc []byte
	if known { // no document, no signature, for an identity not known yet
		doc = identityDocument(in)
		c.add(identityDocumentPath, &node{body: doc, contentType: textPlain})
		if sign != nil {
			// Signed on first request (catalogue.signature), not here.
			c.add(identitySignaturePath, &node{contentType: textPlain, kind: signatureDoc})
			c.add(identityPKCS7Path, &node{contentType: textPlain, kind: pkcs7Doc})
			c.add(identityRSA2048Path, &node{contentType: textPlain, kind: rsa2048Doc})
		}
		c.text("dynamic/fws/instance-monitoring", map[bool]string{true: "enabled", false: "disabled"}[in.Monitoring()])
	}
	if len(t.UserData()) > 0 { // EC2 has no empty user data: "" is none, 404
		c.add("user-data", &node{body: t.UserData(), contentType: octetStream})
	}
	if len(t.Paths().Allow)+len(t.Paths().Deny) > 0 {
		c = c.restrict(t.Paths(), n)
		if c[identityDocumentPath] == nil {
			// Hidden, yet what the signatures sign: their entries, whose
			// bodies are never served, hold it.
			for _, p := range []string{identitySignaturePath, identityPKCS7Path, identityRSA2048Path} {
				if e := c[p]; e != nil {
					e.body = doc
				}
			}
		}
	}
	c.addEvents(in, t.InstanceEvents(), events, now)
	return c.compile(n, sign, shapes)
}

// restrict keeps what the tenant's path policy permits: a denied value
// answers 404 and leaves its listing, and a directory left empty goes too.
// Applied once per build, it costs requests nothing.
func (c tree) restrict(p tenants.PathPolicy, n names) tree {
	out := tree{}
	for path, e := range c {
		if e.dir && !e.listing || !p.Permits(n.realPath(path)) {
			continue
		}
		kept := *e
		if e.listing {
			kept.children = map[string]bool{}
		}
		out.add(path, &kept)
	}
	return out
}

// validTagPath keeps tag keys that can be a path segment; EC2 refuses to
// enable metadata tags on instances with other keys.
func validTagPath(k string) bool {
	return k != "" && k != "." && k != ".." && !strings.ContainsAny(k, "/ ")
}

func addInterface(c tree, base string, ifc *tenants.Interface) {
	t := func(p, v string) { c.text(base+"/"+p, v) }
	t("device-number", strconv.Itoa(int(ifc.DeviceNumber)))
	t("network-card-index", strconv.Itoa(int(ifc.NetworkCardIndex)))
	t("interface-id", ifc.ID)
	t("mac", ifc.MAC)
	t("owner-id", ifc.OwnerID)
	t("local-hostname", ifc.LocalHostname)
	t("public-hostname", ifc.PublicHostname)
	c.lines(base+"/local-ipv4s", addrStrings(ifc.LocalIPv4s))
	c.lines(base+"/public-ipv4s", addrStrings(ifc.PublicIPv4s))
	c.lines(base+"/ipv6s", addrStrings(ifc.IPv6s))
	c.lines(base+"/security-groups", ifc.SecurityGroups)
	c.lines(base+"/security-group-ids", ifc.SecurityGroupIDs)
	t("subnet-id", ifc.SubnetID)
	t("subnet-ipv4-cidr-block", prefixString(ifc.SubnetIPv4CIDR))
	c.lines(base+"/subnet-ipv6-cidr-blocks", prefixStrings(ifc.SubnetIPv6CIDRs))
	t("vpc-id", ifc.VPCID)
	if len(ifc.VPCIPv4CIDRs) > 0 {
		t("vpc-ipv4-cidr-block", ifc.VPCIPv4CIDRs[0].String())
	}
	c.lines(base+"/vpc-ipv4-cidr-blocks", prefixStrings(ifc.VPCIPv4CIDRs))
	c.lines(base+"/vpc-ipv6-cidr-blocks", prefixStrings(ifc.VPCIPv6CIDRs))
	for public, private := range ifc.IPv4Associations {
		t("ipv4-associations/"+public.String(), private.String())
	}
}

// identityDocument is dynamic/instance-identity/document, keys in the order
// EC2 writes them.
func identityDocument(in *tenants.Instance) []byte {
	return document(
		str("accountId", in.AccountID),
		str("architecture", in.Architecture()),
		str("availabilityZone", in.AvailabilityZone),
		list("billingProducts", in.BillingCodes()),
		list("devpayProductCodes", nil),
		list("marketplaceProductCodes", in.ProductCodes()),
		str("imageId", in.AMIID),
		str("instanceId", in.ID),
		str("instanceType", in.Type),
		strOrNull("kernelId", in.KernelID()),
		str("pendingTime", imdsTime(in.PendingTime)),
		strOrNull("privateIp", addrString(in.PrivateIP())),
		strOrNull("ramdiskId", in.RamdiskID()),
		str("region", in.Region),
		str("version", "2017-09-30"),
	)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
