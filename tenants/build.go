package tenants

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxUserData is EC2's limit on user data.
const MaxUserData = 16 << 10

var (
	hostNamePattern    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)
	namePattern        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	instanceIDPattern  = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)
	typePattern        = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9-]+$`)
	accountPattern     = regexp.MustCompile(`^\d{12}$`)
	roleARNPattern     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$`)
	policyARNPattern   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(?:\d{12}|aws):policy/[\w+=,.@/-]+$`)
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	roleNamePattern    = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	azIDPattern        = regexp.MustCompile(`^[a-z]{3,6}\d+-az\d+$`)
	lifeCycles         = map[string]bool{"on-demand": true, "spot": true, "scheduled": true, "capacity-block": true}
	architectures      = map[string]bool{"x86_64": true, "arm64": true, "i386": true, "x86_64_mac": true, "arm64_mac": true}
)

// idPattern matches EC2 resource ids with the given prefix: 8 or 17 hex digits.
func idPattern(prefix string) *regexp.Regexp {
	return regexp.MustCompile(`^` + prefix + `-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)
}

var (
	amiPattern     = idPattern("ami")
	akiPattern     = idPattern("aki")
	ariPattern     = idPattern("ari")
	rPattern       = idPattern("r")
	vpcPattern     = idPattern("vpc")
	subnetPattern  = idPattern("subnet")
	sgPattern      = idPattern("sg")
	eniPattern     = idPattern("eni")
	hostIDPattern  = idPattern("h")
	productPattern = regexp.MustCompile(`^[a-z0-9]{1,64}$`)
)

// Build validates a decoded configuration and turns it into tenants, deriving
// everything left out. baseDir resolves relative user_data_file paths; now is
// the instances' launch time. Every problem is reported, not only the first.
func Build(f *File, baseDir string, now time.Time) (*Config, Errors) {
	return build(f, baseDir, now, nil)
}

// build is Build for a File that did not decode whole: undecoded are the
// paths whose values are missing for that reason, which it does not check
// again.
func build(f *File, baseDir string, now time.Time, undecoded [][]any) (*Config, Errors) {
	var errs Errors
	cfg := &Config{}
	el := errorList{errs: &errs, warns: &cfg.Warnings, undecoded: undecoded}
	cfg.Server = buildServer(f.Server, el)
	cfg.Kubernetes = buildKubernetes(f.Kubernetes)
	cfg.serviceAccounts = map[string]int{}

	if f.Defaults.Name != "" {
		el.add([]any{"defaults", "name"}, "a name belongs to one tenant, not to defaults")
	}
	if f.Defaults.Sources != nil {
		el.add([]any{"defaults", "sources"}, "sources belong to one tenant, not to defaults")
	}
	if f.Defaults.Instance.Mirror != nil {
		el.add([]any{"defaults", "instance", "mirror"}, "a mirror belongs to one tenant, not to defaults")
	}
	if len(f.Tenants) == 0 {
		el.add([]any{"tenants"}, "at least one tenant is required")
	}

	names := map[string]int{}
	owners := map[netip.Prefix]int{}
	selectors := map[ContainerSelector]int{}
	tokens := map[string]int{}
	shared := newInterner()
	for i, tc := range f.Tenants {
		path := []any{"tenants", i}
		merged := f.Defaults
		overlay(reflect.ValueOf(&merged).Elem(), reflect.ValueOf(tc))
		merged.Name, merged.Sources = tc.Name, tc.Sources
		if tc.UserData != nil || tc.UserDataFile != "" {
			// A tenant's own user data replaces the default whichever key
			// holds either; inheriting the other key would make them conflict.
			merged.UserData, merged.UserDataFile = tc.UserData, tc.UserDataFile
		}
		t := buildTenant(merged, tc, path, baseDir, now, f.Kubernetes != nil, el)
		if t == nil {
			continue
		}
		shared.tenant(t)
		if j, dup := names[t.Name]; dup {
			el.add(at(path, "name"), "tenant %q is already defined by tenants[%d]", t.Name, j)
		} else if t.Name != "" { // a missing name is reported once, as missing
			names[t.Name] = i
		}
		for k, p := range t.Sources {
			if j, dup := owners[p]; dup && j != i {
				el.add(at(path, "sources", k), "%s is already a source of tenants[%d] (%s); a source must choose one tenant", p, j, f.Tenants[j].Name)
			}
			owners[p] = i
		}
		for _, sel := range t.Containers() {
			if j, dup := selectors[sel]; dup && j != i {
				el.add(at(path, "sources"), "%s is already a source of tenants[%d] (%s); a source must choose one tenant", sel, j, f.Tenants[j].Name)
			}
			selectors[sel] = i
		}
		for _, sa := range t.ServiceAccounts() {
			if j, dup := cfg.serviceAccounts[sa]; dup {
				el.add(at(path, "sources"), "service_account %s is already a source of tenants[%d] (%s); a source must choose one tenant", sa, j, f.Tenants[j].Name)
				continue
			}
			cfg.serviceAccounts[sa] = len(cfg.Tenants)
		}
		if token := t.ContainerToken(); token != "" {
			if j, dup := tokens[token]; dup {
				el.add(at(path, "container_credentials"), "the same token is used by tenants[%d]; each tenant needs its own", j)
			}
			tokens[token] = i
		}
		cfg.Tenants = append(cfg.Tenants, t)
	}
	checkTrustedProxies(cfg, el)
	checkRoleTemplate(cfg, names, el)
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// checkTrustedProxies refuses a trusted proxy inside a tenant's sources: a
// client there could write any address in X-Forwarded-For and be served as
// any tenant. Proxies and tenants must be told apart by address.
func checkTrustedProxies(cfg *Config, el errorList) {
	for i, p := range cfg.Server.TrustedProxies {
		for _, t := range cfg.Tenants {
			for _, s := range t.Sources {
				if p.Overlaps(s) {
					el.add([]any{"server", "trusted_proxies", i}, "%s overlaps %s, a source of tenant %q: a client there could choose any tenant through X-Forwarded-For", p, s, t.Name)
				}
			}
		}
	}
}

func buildServer(sc ServerConfig, el errorList) Server {
	s := Server{Listen: sc.Listen, AdminListen: sc.AdminListen, ContainerListen: sc.ContainerListen, ECSListen: sc.ECSListen, PodIdentityListen: sc.PodIdentityListen}
	for i, h := range sc.Hosts {
		if !hostNamePattern.MatchString(h) {
			el.add([]any{"server", "hosts", i}, "%q is not a host name", h)
			continue
		}
		s.Hosts = append(s.Hosts, strings.ToLower(h))
	}
	if sc.DockerSocket != "" {
		sock, err := ParseDockerSocket(sc.DockerSocket)
		if err != nil {
			el.add([]any{"server", "docker_socket"}, "%v", err)
		}
		s.DockerSocket = sock
	}
	if sc.ContainerListen != "" {
		if _, err := ParseListen(sc.ContainerListen); err != nil {
			el.add([]any{"server", "container_listen"}, "%v", err)
		}
	}
	if sc.ECSListen != "" {
		if _, err := ParseListen(sc.ECSListen); err != nil {
			el.add([]any{"server", "ecs_listen"}, "%v", err)
		}
	}
	for i, l := range sc.PodIdentityListen {
		if _, err := ParseListen(l); err != nil {
			el.add([]any{"server", "pod_identity_listen", i}, "%v", err)
		}
	}
	s.MFADuration = time.Duration(sc.MFADuration) // 0: DefaultMFADuration, where it is used
	if s.MFADuration != 0 && (s.MFADuration < 15*time.Minute || s.MFADuration > 36*time.Hour) {
		el.add([]any{"server", "mfa_duration"}, "%s: STS issues MFA sessions for 15m to 36h", s.MFADuration)
	}
	if len(s.Listen) == 0 {
		s.Listen = []string{DefaultListen}
	}
	if s.AdminListen == "" {
		s.AdminListen = DefaultAdminListen
	}
	for i, l := range sc.Listen {
		if _, err := ParseListen(l); err != nil {
			el.add([]any{"server", "listen", i}, "%v", err)
		}
	}
	if sc.AdminListen != "" && sc.AdminListen != "off" {
		if _, err := ParseListen(sc.AdminListen); err != nil {
			el.add([]any{"server", "admin_listen"}, "%v", err)
		}
	}
	for i, p := range sc.TrustedProxies {
		pfx, err := ParseSource(p)
		if err != nil {
			el.add([]any{"server", "trusted_proxies", i}, "%v", err)
			continue
		}
		s.TrustedProxies = append(s.TrustedProxies, pfx)
	}
	return s
}

// ParseListen checks a listen address: host:port with a literal IP host
// ("127.0.0.1:8080", "[::1]:8080", "169.254.169.254:80"), or an empty host
// (":8080") for every address of the host, which is returned as the IPv6
// unspecified address: net.Listen binds ":8080" on both families, as it
// does "[::]:8080".
func ParseListen(s string) (netip.AddrPort, error) {
	if port, ok := strings.CutPrefix(s, ":"); ok {
		if n, err := strconv.ParseUint(port, 10, 16); err == nil {
			return netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(n)), nil
		}
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("%q is not an address and port such as 127.0.0.1:8080, [::1]:8080 or :8080 (every address)", s)
	}
	return ap, nil
}

// ParseSource reads a source: an address (a single host) or a CIDR block with
// no host bits set. IPv4-mapped IPv6 is read as the IPv4 it maps.
func ParseSource(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not a CIDR block", s)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return p, fmt.Errorf("%q: an IPv4-mapped block needs at least /96", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if m := p.Masked(); m != p {
			return p, fmt.Errorf("%q has host bits set; did you mean %s?", s, m)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR block", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: zones are not allowed in sources", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// overlay copies every non-zero field of src onto dst, recursing into nested
// structs and merging maps key by key: how a tenant inherits defaults.
func overlay(dst, src reflect.Value) {
	for i := 0; i < src.NumField(); i++ {
		s, d := src.Field(i), dst.Field(i)
		switch {
		case s.Kind() == reflect.Struct:
			overlay(d, s)
		case s.Kind() == reflect.Map && !s.IsNil():
			m := reflect.MakeMap(s.Type())
			if !d.IsNil() {
				for _, k := range d.MapKeys() {
					m.SetMapIndex(k, d.MapIndex(k))
				}
			}
			for _, k := range s.MapKeys() {
				m.SetMapIndex(k, s.MapIndex(k))
			}
			d.Set(m)
		case !s.IsZero():
			d.Set(s)
		}
	}
}

// buildTenant builds one tenant from its merged configuration; own is what
// the tenant itself set: its region, unlike an inherited default, must agree
// with its zone, and only its own instance and imds values override a
// mirror.
// kube is whether the file has a kubernetes: block.
func buildTenant(tc, own TenantConfig, path []any, baseDir string, now time.Time, kube bool, el errorList) *Tenant {
	t := &Tenant{Name: tc.Name}
	x := new(TenantExtras)
	switch {
	case tc.Name == "":
		el.add(at(path, "name"), "every tenant needs a name")
	case !namePattern.MatchString(tc.Name):
		el.add(at(path, "name"), "%q: use letters, digits, '.', '_' and '-' (at most 63)", tc.Name)
	}
	if len(tc.Sources) == 0 && !kube {
		// (In Kubernetes mode pods may claim a tenant by annotation alone.)
		el.add(at(path, "sources"), "tenant %q needs at least one source: an address, a CIDR block or a container", tc.Name)
	}
	seen := map[netip.Prefix]bool{}
	seenSel := map[ContainerSelector]bool{}
	for i, s := range tc.Sources {
		if sa, ok, err := parseServiceAccount(s); ok {
			switch {
			case err != nil:
				el.add(at(path, "sources", i), "%v", err)
			case !kube:
				el.add(at(path, "sources", i), "service_account %s: pods are followed only in Kubernetes mode; add a kubernetes: block", sa)
			case slices.Contains(x.ServiceAccounts, sa):
				el.add(at(path, "sources", i), "service_account %s is listed twice", sa)
			default:
				x.ServiceAccounts = append(x.ServiceAccounts, sa)
			}
			continue
		}
		if sel, ok, err := parseSelector(s); ok {
			switch {
			case err != nil:
				el.add(at(path, "sources", i), "%v", err)
			case seenSel[sel]:
				el.add(at(path, "sources", i), "%s is listed twice", sel)
			default:
				seenSel[sel] = true
				x.Containers = append(x.Containers, sel)
			}
			continue
		}
		p, err := ParseSource(s)
		if err != nil {
			el.add(at(path, "sources", i), "%v", err)
			continue
		}
		if seen[p] {
			el.add(at(path, "sources", i), "%s is listed twice", p)
			continue
		}
		seen[p] = true
		t.Sources = append(t.Sources, p)
	}
	t.IMDS = buildIMDS(tc.IMDS, at(path, "imds"), el)
	x.Paths = buildPaths(tc.Paths, at(path, "paths"), el)
	t.Limits = buildLimits(tc.Limits, at(path, "limits"), el)
	x.Events = buildEvents(tc.Events, at(path, "events"), el)
	if tc.Instance.Mirror != nil {
		check(el, at(path, "region"), tc.Region, regionPattern, "a region such as us-east-1")
		t.Mirror = buildMirror(*tc.Instance.Mirror, tc.Region, own.Region, tc.Credentials.Profile, at(path, "instance", "mirror"), el)
		parseStatic(tc.Instance, at(path, "instance"), el) // reports invalid values, inherited ones included
		t.Mirror.Static = parseStatic(own.Instance, nil, errorList{errs: new(Errors)})
		t.Mirror.IMDS = own.IMDS
		t.Instance = t.Mirror.unmirrored()
	} else {
		t.Instance = buildInstance(tc, own.Region, at(path, "instance"), now, el)
	}
	session := t.Instance.ID
	if session == "" && t.Mirror != nil {
		// The instance id is the session name EC2 uses; a mirror found by
		// filters has none until it is copied, and the name must not change.
		session = cmp.Or(t.Mirror.InstanceID, truncate("imds-proxy-"+tc.Name, 64))
	}
	t.Role, t.Credentials = buildCredentials(tc.Credentials, &t.Instance, session, at(path, "credentials"), el)
	x.UserData = loadUserData(tc, path, baseDir, el)
	if t.Mirror != nil {
		// A mirrored tenant serves its instance's user data unless it
		// has its own; the defaults', like their instance values, stand
		// in only for what a derived tenant leaves out.
		t.Mirror.OwnUserData = own.UserData != nil || own.UserDataFile != ""
		if !t.Mirror.OwnUserData {
			x.UserData = nil
		}
	}
	// A profile or role ARN that did not decode may well name a role.
	hasRole := t.Role != nil || !el.decoded(at(path, "credentials", "profile")) || !el.decoded(at(path, "credentials", "role_arn"))
	x.ContainerToken, x.ContainerAnySource = buildContainerCredentials(tc.ContainerCredentials, hasRole, at(path, "container_credentials"), baseDir, el)
	t.Extras = x.orNil()
	return t
}

func buildIMDS(c IMDSConfig, path []any, el errorList) IMDSOptions {
	switch c.Tokens {
	case "", "optional", "required":
	default:
		el.add(at(path, "tokens"), "%q: must be optional or required", c.Tokens)
	}
	if c.HopLimit != 0 && (c.HopLimit < 1 || c.HopLimit > 64) {
		el.add(at(path, "hop_limit"), "%d: must be between 1 and 64", c.HopLimit)
	}
	o := IMDSOptions{Enabled: true, HopLimit: 2, Tags: true}
	o.apply(c)
	return o
}

func loadUserData(tc TenantConfig, path []any, baseDir string, el errorList) []byte {
	var data []byte
	switch {
	case tc.UserData != nil && tc.UserDataFile != "":
		el.add(at(path, "user_data_file"), "set user_data or user_data_file, not both")
		return nil
	case tc.UserData != nil:
		// Never nil, even when empty: user_data: "" is the tenant's own
		// (none), which hides a mirrored instance's.
		data = append([]byte{}, *tc.UserData...)
	case tc.UserDataFile != "":
		name := tc.UserDataFile
		if !filepath.IsAbs(name) {
			name = filepath.Join(baseDir, name)
		}
		b, err := readAtMost(name, MaxUserData+1)
		if err != nil {
			el.add(at(path, "user_data_file"), "%v", err)
			return nil
		}
		if len(b) > MaxUserData {
			el.add(at(path, "user_data_file"), "%s is larger than the %d bytes EC2 allows", name, MaxUserData)
			return nil
		}
		data = b
	default:
		return nil
	}
	if len(data) > MaxUserData {
		el.add(at(path, "user_data"), "%d bytes: EC2 allows at most %d", len(data), MaxUserData)
		return nil
	}
	return data
}

// readAtMost reads up to n bytes of a file, so that a huge file (or
// /dev/zero) is refused without being read whole.
func readAtMost(name string, n int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// check validates one optional string value against a pattern.
func check(el errorList, path []any, v string, re *regexp.Regexp, what string) {
	if v != "" && !re.MatchString(v) {
		el.add(path, "%q is not %s", v, what)
	}
}

func parseAddr4(el errorList, path []any, s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Unmap().Is4() {
		el.add(path, "%q is not an IPv4 address", s)
		return netip.Addr{}
	}
	return a.Unmap()
}

func parseCIDR(el errorList, path []any, s string, v4 bool) netip.Prefix {
	if s == "" {
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Is4() != v4 || p.Masked() != p {
		el.add(path, "%q is not an %s CIDR block", s, map[bool]string{true: "IPv4", false: "IPv6"}[v4])
		return netip.Prefix{}
	}
	return p
}

// buildInstance validates the instance: block and derives everything it
// leaves out; the static values are then laid over the derived instance by
// Static.Apply, the same function that lays them over a mirrored one.
func buildInstance(tc TenantConfig, ownRegion string, path []any, now time.Time, el errorList) Instance {
	s := parseStatic(tc.Instance, path, el)
	region, az := placementOf(tc.Region, ownRegion, s.cfg.AvailabilityZone, path, el)
	in := derive(tc, &s, region, az, now, path, el)
	s.Apply(&in)
	return in
}

// placementOf is the region and zone of a derived instance: a zone decides
// over an inherited region, but must be in the tenant's own.
func placementOf(region, ownRegion, az string, path []any, el errorList) (string, string) {
	if region != "" && !regionPattern.MatchString(region) {
		el.add(at(path[:len(path)-1], "region"), "%q is not a region such as us-east-1", region)
		region = ""
	}
	if az != "" {
		if zr := RegionOfZone(az); ownRegion != "" && zr != ownRegion {
			el.add(at(path, "availability_zone"), "%q is not in the tenant's region %s", az, ownRegion)
		} else {
			region = zr
		}
	}
	if region == "" {
		region = defaultRegion
	}
	if az == "" {
		az = region + "a"
	}
	return region, az
}

// derive makes the instance EC2 would have launched for a tenant that said
// nothing more than s: the static values that other values follow from
// (addresses, account, type, VPC) are read here; Apply sets the rest.
func derive(tc TenantConfig, s *Static, region, az string, now time.Time, path []any, el errorList) Instance {
	c := &s.cfg
	in := Instance{
		ID:                 "i-" + stableID("instance", tc.Name),
		Type:               defaultInstanceType,
		AMIID:              "ami-" + stableID("ami", region),
		ReservationID:      "r-" + stableID("reservation", tc.Name),
		AccountID:          c.AccountID,
		PendingTime:        now.UTC().Truncate(time.Second),
		Region:             region,
		AvailabilityZone:   az,
		AvailabilityZoneID: zoneID(region, az),
		Extras: &InstanceExtras{
			Architecture: architectureOf(cmp.Or(c.InstanceType, defaultInstanceType)),
			LifeCycle:    "on-demand",
		},
	}
	if in.AccountID == "" {
		if m := roleARNPattern.FindStringSubmatch(tc.Credentials.RoleARN); m != nil {
			in.AccountID = m[1]
		} else {
			in.AccountID = defaultAccountID
		}
	}
	if c.BlockDeviceMapping == nil {
		in.BlockDevices = map[string]string{"ami": "/dev/xvda", "root": "/dev/xvda"}
	}
	in.Interfaces = []Interface{derivePrimary(tc.Name, s, &in, path, el)}
	in.LocalHostname = localHostname(in.PrivateIP(), region)
	in.Interfaces[0].LocalHostname = in.LocalHostname
	in.PublicHostname = publicHostname(in.PublicIP(), region)
	in.Interfaces[0].PublicHostname = in.PublicHostname
	in.SecurityGroups = in.Interfaces[0].SecurityGroups
	return in
}

func validDeviceKey(k string) bool {
	switch {
	case k == "ami" || k == "root" || k == "swap":
		return true
	case strings.HasPrefix(k, "ebs"):
		return isDigits(k[3:])
	case strings.HasPrefix(k, "ephemeral"):
		return isDigits(k[9:])
	}
	return false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// derivePrimary derives the primary network interface, as in EC2's default
// VPC unless the static addresses and blocks place it elsewhere.
func derivePrimary(name string, s *Static, in *Instance, path []any, el errorList) Interface {
	c := &s.cfg
	private, public, vpcCIDR, subnetCIDR := s.privateIP, s.publicIP, s.vpcCIDR, s.subnetCIDR
	switch {
	case subnetCIDR.IsValid():
	case private.IsValid() && defaultVPC.Contains(private):
		// The default VPC's subnets are /20s: the one holding the address.
		subnetCIDR = netip.PrefixFrom(private, 20).Masked()
	case private.IsValid():
		subnetCIDR = netip.PrefixFrom(private, 24).Masked()
	default:
		subnetCIDR = zoneSubnet(in.AvailabilityZone)
	}
	switch {
	case vpcCIDR.IsValid():
	case defaultVPC.Contains(subnetCIDR.Addr()):
		vpcCIDR = defaultVPC
	default:
		vpcCIDR = netip.PrefixFrom(subnetCIDR.Addr(), 16).Masked()
	}
	if !private.IsValid() {
		private = hostIn(subnetCIDR, name)
	}
	if !subnetCIDR.Contains(private) {
		el.add(at(path, "private_ip"), "%s is outside the subnet %s", private, subnetCIDR)
	}
	if vpcCIDR.Bits() > subnetCIDR.Bits() || !vpcCIDR.Contains(subnetCIDR.Addr()) {
		el.add(at(path, "subnet_cidr"), "%s is outside the VPC %s", subnetCIDR, vpcCIDR)
	}

	vpcID := cmp.Or(c.VPCID, "vpc-"+stableID("vpc", in.AccountID, in.Region))
	ifc := Interface{
		MAC:            cmp.Or(s.mac, stableMAC(name)),
		ID:             "eni-" + stableID("eni", name),
		OwnerID:        in.AccountID,
		LocalIPv4s:     []netip.Addr{private},
		SubnetID:       "subnet-" + stableID("subnet", in.AccountID, in.AvailabilityZone, subnetCIDR.String()),
		SubnetIPv4CIDR: subnetCIDR,
		VPCID:          vpcID,
		VPCIPv4CIDRs:   []netip.Prefix{vpcCIDR},
	}
	if len(c.SecurityGroups) == 0 && len(c.SecurityGroupIDs) == 0 {
		ifc.SecurityGroups = []string{"default"}
		ifc.SecurityGroupIDs = []string{"sg-" + stableID("sg", vpcID, "default")}
	}
	if public.IsValid() {
		ifc.PublicIPv4s = []netip.Addr{public}
		ifc.IPv4Associations = map[netip.Addr]netip.Addr{public: private}
	}
	return ifc
}

// MockRoleName names the role of a tenant with mock credentials and
// neither role_name, role_arn nor profile.
const MockRoleName = "imds-proxy-mock"

func buildCredentials(c CredentialsConfig, in *Instance, session string, path []any, el errorList) (*Role, CredentialSpec) {
	spec := CredentialSpec{
		Profile:        c.Profile,
		RoleARN:        c.RoleARN,
		SessionName:    cmp.Or(c.SessionName, session),
		ExternalID:     c.ExternalID,
		SourceIdentity: c.SourceIdentity,
		Policy:         c.Policy,
		PolicyARNs:     c.PolicyARNs,
		Tags:           c.Tags,
		Duration:       time.Duration(c.Duration),
		RefreshBefore:  time.Duration(c.RefreshBefore),
		Mock:           c.Mock,
	}
	if spec.Duration == 0 {
		spec.Duration = time.Hour
	}
	if spec.RefreshBefore == 0 {
		// 15m ahead, but never the whole life of a short credential
		// (duration: 15m alone must be valid), and never under the 5m
		// ahead that real IMDS publishes new credentials.
		spec.RefreshBefore = 15 * time.Minute
		if q := max(spec.Duration/3, 5*time.Minute); q < spec.RefreshBefore {
			spec.RefreshBefore = q
		}
	}
	if spec.Duration < 15*time.Minute || spec.Duration > 12*time.Hour {
		el.add(at(path, "duration"), "%s: STS issues credentials for 15m to 12h", spec.Duration)
	}
	if spec.RefreshBefore <= 0 || (spec.RefreshBefore >= spec.Duration && el.decoded(at(path, "duration"))) {
		el.add(at(path, "refresh_before"), "%s: must be positive and shorter than duration (%s)", spec.RefreshBefore, spec.Duration)
	}
	check(el, at(path, "session_name"), c.SessionName, sessionNamePattern, "a session name (2-64 of letters, digits and +=,.@_-)")
	check(el, at(path, "role_name"), c.RoleName, roleNamePattern, "a role name")
	for i, a := range c.PolicyARNs {
		check(el, at(path, "policy_arns", i), a, policyARNPattern, "a policy ARN")
	}
	m := roleARNPattern.FindStringSubmatch(c.RoleARN)
	if c.RoleARN != "" && m == nil {
		el.add(at(path, "role_arn"), "%q is not a role ARN such as arn:aws:iam::111122223333:role/web", c.RoleARN)
	}
	if c.Profile == "" && c.RoleARN == "" && !c.Mock {
		if c.RoleName != "" && el.decoded(at(path, "profile")) && el.decoded(at(path, "role_arn")) {
			el.add(at(path, "role_name"), "a role needs credentials: set profile or role_arn")
		}
		return nil, spec
	}
	name := c.RoleName
	if name == "" && m != nil {
		name = m[2]
	}
	fromProfile := name == "" && c.Profile != "" && !c.Mock
	if fromProfile {
		name = c.Profile
	}
	if name == "" && c.Mock { // a mock role needs no profile to be named by
		name = cmp.Or(c.Profile, MockRoleName)
	}
	partition, _ := Partition(in.Region)
	account := in.AccountID
	if account == "" && m != nil { // a mirror not copied yet
		account = m[1]
	}
	return &Role{
		Name:               name,
		ARN:                c.RoleARN,
		InstanceProfileARN: fmt.Sprintf("arn:%s:iam::%s:instance-profile/%s", partition, account, name),
		InstanceProfileID:  instanceProfileID(account + "/" + name),
		FromProfile:        fromProfile,
	}, spec
}

// minContainerToken keeps container tokens long enough not to be guessed.
const minContainerToken = 16

func buildContainerCredentials(c ContainerCredentialsConfig, hasRole bool, path []any, baseDir string, el errorList) (string, bool) {
	token := c.Token
	switch {
	case c.Token != "" && c.TokenFile != "":
		el.add(at(path, "token_file"), "set token or token_file, not both")
		return "", false
	case c.TokenFile != "":
		name := c.TokenFile
		if !filepath.IsAbs(name) {
			name = filepath.Join(baseDir, name)
		}
		b, err := readAtMost(name, 4096)
		if err != nil {
			el.add(at(path, "token_file"), "%v", err)
			return "", false
		}
		token = strings.TrimSpace(string(b))
		if strings.ContainsAny(string(b), "\r\n") && token != "" && !strings.ContainsAny(token, "\r\n") {
			// A warning, not an error: the proxy compares the trimmed
			// token, which clients given the token itself send; only
			// clients reading the file fail, and editors and echo end
			// files with a line break.
			el.warn(at(path, "token_file"), "%s ends in a line break: the proxy expects the token without it, but a client given "+
				"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%s sends the file as it is, line break included, and fails (the AWS SDKs "+
				"refuse a header value with a line break); write it without one (printf '%%s' \"$TOKEN\" > %s), or give clients "+
				"the token in AWS_CONTAINER_AUTHORIZATION_TOKEN", c.TokenFile, name, c.TokenFile)
		}
	}
	if token == "" {
		if c.AnySource && el.decoded(at(path, "token")) && el.decoded(at(path, "token_file")) {
			el.add(at(path, "any_source"), "any_source needs a token or token_file")
		}
		return "", false
	}
	switch {
	case c.Token != "" && strings.TrimSpace(token) != token:
		// HTTP drops a header value's surrounding whitespace on the way:
		// no client could ever send this token as it is written.
		el.add(at(path, "token"), "the token begins or ends with whitespace, which HTTP drops from the Authorization header, so no client could ever match it: remove it")
	case len(token) < minContainerToken || strings.ContainsAny(token, "\r\n"):
		el.add(at(path, "token"), "a token must be at least %d characters on one line", minContainerToken)
	}
	if !hasRole {
		el.add(path, "the container credentials endpoint serves role credentials: set credentials.profile or credentials.role_arn")
	}
	return token, c.AnySource
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
