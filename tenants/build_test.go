package tenants_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// parse parses a configuration that must be valid.
func parse(t *testing.T, name, config string) *tenants.Config {
	t.Helper()
	cfg, err := tenants.Parse(name, []byte(config), launch)
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return cfg
}

// parseOne parses a one-tenant configuration and returns the tenant.
func parseOne(t *testing.T, config string) *tenants.Tenant {
	t.Helper()
	cfg := parse(t, "c.yaml", config)
	if len(cfg.Tenants) != 1 {
		t.Fatalf("%d tenants, want 1", len(cfg.Tenants))
	}
	return cfg.Tenants[0]
}

// tenantConfig is a one-tenant configuration: the tenant web on 10.0.0.1,
// with extra lines of its own (indented by four spaces) and a preamble.
func tenantConfig(preamble string, tenantLines ...string) string {
	var b strings.Builder
	b.WriteString(preamble)
	b.WriteString("tenants:\n  - name: web\n    sources: [10.0.0.1]\n")
	for _, l := range tenantLines {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

func TestParseDefaultsInherited(t *testing.T) {
	cfg := parse(t, "c.yaml", `defaults:
  region: eu-west-1
  imds: {tokens: required, hop_limit: 3, tags: false}
  credentials: {profile: dev, duration: 2h, refresh_before: 10m, tags: {team: core}}
  instance:
    instance_type: m5.large
    tags: {Team: core, Env: dev}
tenants:
  - name: web
    sources: [10.0.0.1]
    instance:
      tags: {Env: prod, Name: web}
  - name: worker
    sources: [10.0.0.2]
  - name: batch
    sources: [10.0.0.3]
    region: us-west-2
    imds: {enabled: false, hop_limit: 1}
    credentials: {role_arn: "arn:aws:iam::111122223333:role/batch", duration: 1h}
    instance: {instance_type: c7g.xlarge}
`)
	web, worker, batch := cfg.Tenants[0], cfg.Tenants[1], cfg.Tenants[2]

	inherited := tenants.IMDSOptions{Enabled: true, TokensRequired: true, HopLimit: 3, Tags: false}
	for _, tn := range []*tenants.Tenant{web, worker} {
		if tn.Instance.Region != "eu-west-1" || tn.Instance.AvailabilityZone != "eu-west-1a" {
			t.Errorf("%s: region %s, zone %s; want eu-west-1, eu-west-1a", tn.Name, tn.Instance.Region, tn.Instance.AvailabilityZone)
		}
		if tn.IMDS != inherited {
			t.Errorf("%s: IMDS %+v, want %+v", tn.Name, tn.IMDS, inherited)
		}
		if tn.Instance.Type != "m5.large" {
			t.Errorf("%s: type %s, want m5.large", tn.Name, tn.Instance.Type)
		}
		if tn.Credentials.Profile != "dev" || tn.Credentials.Duration != 2*time.Hour || tn.Credentials.RefreshBefore != 10*time.Minute {
			t.Errorf("%s: credentials %+v, want profile dev for 2h, refreshed 10m ahead", tn.Name, tn.Credentials)
		}
		if tn.Role == nil || tn.Role.Name != "dev" {
			t.Errorf("%s: role %+v, want one named after the profile dev", tn.Name, tn.Role)
		}
	}
	if want := map[string]string{"Team": "core", "Env": "prod", "Name": "web"}; !reflect.DeepEqual(web.Instance.Tags, want) {
		t.Errorf("web tags %v, want %v (merged key by key, its own winning)", web.Instance.Tags, want)
	}
	if want := map[string]string{"Team": "core", "Env": "dev"}; !reflect.DeepEqual(worker.Instance.Tags, want) {
		t.Errorf("worker tags %v, want the defaults' %v untouched by web's", worker.Instance.Tags, want)
	}

	if want := (tenants.IMDSOptions{Enabled: false, TokensRequired: true, HopLimit: 1, Tags: false}); batch.IMDS != want {
		t.Errorf("batch IMDS %+v, want %+v (enabled: false overrides, tokens inherited)", batch.IMDS, want)
	}
	if batch.Instance.Region != "us-west-2" || batch.Instance.Type != "c7g.xlarge" {
		t.Errorf("batch: region %s, type %s; want its own us-west-2, c7g.xlarge", batch.Instance.Region, batch.Instance.Type)
	}
	if c := batch.Credentials; c.Profile != "dev" || c.RoleARN != "arn:aws:iam::111122223333:role/batch" || c.Duration != time.Hour || c.RefreshBefore != 10*time.Minute {
		t.Errorf("batch credentials %+v, want profile dev inherited, its own role and 1h", c)
	}
	if want := map[string]string{"team": "core"}; !reflect.DeepEqual(batch.Credentials.Tags, want) {
		t.Errorf("batch session tags %v, want %v", batch.Credentials.Tags, want)
	}
}

func TestParseBuiltInDefaults(t *testing.T) {
	cfg := parse(t, "c.yaml", tenantConfig(""))
	if want := (tenants.Server{Listen: []string{tenants.DefaultListen}, AdminListen: tenants.DefaultAdminListen}); !reflect.DeepEqual(cfg.Server, want) {
		t.Errorf("server %+v, want %+v", cfg.Server, want)
	}
	tn := cfg.Tenants[0]
	if want := (tenants.IMDSOptions{Enabled: true, HopLimit: 2, Tags: true}); tn.IMDS != want {
		t.Errorf("IMDS %+v, want %+v", tn.IMDS, want)
	}
	in := tn.Instance
	for _, c := range []struct{ what, got, want string }{
		{"type", in.Type, "t3.micro"},
		{"account", in.AccountID, "123456789012"},
		{"architecture", in.Architecture(), "x86_64"},
		{"life cycle", in.LifeCycle(), "on-demand"},
		{"security groups", strings.Join(in.SecurityGroups, ","), "default"},
	} {
		if c.got != c.want {
			t.Errorf("%s %q, want %q", c.what, c.got, c.want)
		}
	}
	if !in.PendingTime.Equal(launch) {
		t.Errorf("pending time %v, want %v", in.PendingTime, launch)
	}
	if in.PublicIP().IsValid() || in.PublicHostname != "" {
		t.Errorf("public address %v (%q), want none", in.PublicIP(), in.PublicHostname)
	}
	if tn.Role != nil || tn.UserData() != nil {
		t.Errorf("role %+v, user data %q; want neither", tn.Role, tn.UserData())
	}
}

func TestParseServer(t *testing.T) {
	cfg := parse(t, "c.yaml", tenantConfig(`server:
  listen: ["169.254.169.254:80", "[fd00:ec2::254]:80"]
  admin_listen: "[::1]:9180"
  trusted_proxies: [192.0.2.0/24, "::ffff:192.168.1.1"]
`))
	want := tenants.Server{
		Listen:         []string{"169.254.169.254:80", "[fd00:ec2::254]:80"},
		AdminListen:    "[::1]:9180",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("192.168.1.1/32")},
	}
	if !reflect.DeepEqual(cfg.Server, want) {
		t.Errorf("server %+v, want %+v", cfg.Server, want)
	}
}

func TestParseDerivedPlacement(t *testing.T) {
	tests := []struct {
		name     string
		config   string
		region   string
		zone     string
		zoneID   string
		hostname string // with %s for the private IP's dashed form
		public   string
		subnet   string
		vpc      string
		ip       string // "": derived, checked only against subnet
	}{
		{
			name:     "nothing said",
			config:   tenantConfig(""),
			region:   "us-east-1",
			zone:     "us-east-1a",
			zoneID:   "use1-az1",
			hostname: "ip-%s.ec2.internal",
			subnet:   "172.31.0.0/20",
			vpc:      "172.31.0.0/16",
		},
		{
			name:     "region from the zone",
			config:   tenantConfig("", "instance: {availability_zone: eu-west-1b}"),
			region:   "eu-west-1",
			zone:     "eu-west-1b",
			zoneID:   "euw1-az2",
			hostname: "ip-%s.eu-west-1.compute.internal",
			subnet:   "172.31.16.0/20",
			vpc:      "172.31.0.0/16",
		},
		{
			name:     "zone from the region",
			config:   tenantConfig("", "region: ap-southeast-2"),
			region:   "ap-southeast-2",
			zone:     "ap-southeast-2a",
			zoneID:   "apse2-az1",
			hostname: "ip-%s.ap-southeast-2.compute.internal",
			subnet:   "172.31.0.0/20",
			vpc:      "172.31.0.0/16",
		},
		{
			name:     "the zone decides over an inherited region",
			config:   tenantConfig("defaults: {region: eu-west-1}\n", "instance: {availability_zone: us-west-2c}"),
			region:   "us-west-2",
			zone:     "us-west-2c",
			zoneID:   "usw2-az3",
			hostname: "ip-%s.us-west-2.compute.internal",
			subnet:   "172.31.32.0/20",
			vpc:      "172.31.0.0/16",
		},
		{
			name:     "zone agreeing with its own region",
			config:   tenantConfig("", "region: eu-central-1", "instance: {availability_zone: eu-central-1c, availability_zone_id: euc1-az1}"),
			region:   "eu-central-1",
			zone:     "eu-central-1c",
			zoneID:   "euc1-az1",
			hostname: "ip-%s.eu-central-1.compute.internal",
			subnet:   "172.31.32.0/20",
			vpc:      "172.31.0.0/16",
		},
		{
			name:     "local zone",
			config:   tenantConfig("", "instance: {availability_zone: us-west-2-lax-1a}"),
			region:   "us-west-2",
			zone:     "us-west-2-lax-1a",
			zoneID:   "usw2-az1",
			hostname: "ip-%s.us-west-2.compute.internal",
			subnet:   "172.31.0.0/20",
			vpc:      "172.31.0.0/16",
		},
		{
			name:     "GovCloud",
			config:   tenantConfig("", "region: us-gov-west-1"),
			region:   "us-gov-west-1",
			zone:     "us-gov-west-1a",
			zoneID:   "usgw1-az1",
			hostname: "ip-%s.us-gov-west-1.compute.internal",
			subnet:   "172.31.0.0/20",
			vpc:      "172.31.0.0/16",
		},
		{
			name:     "private IP outside the default VPC",
			config:   tenantConfig("", "instance: {private_ip: 10.0.7.10}"),
			region:   "us-east-1",
			zone:     "us-east-1a",
			zoneID:   "use1-az1",
			hostname: "ip-%s.ec2.internal",
			subnet:   "10.0.7.0/24",
			vpc:      "10.0.0.0/16",
			ip:       "10.0.7.10",
		},
		{
			name:     "private IP in another zone's default subnet",
			config:   tenantConfig("", "instance: {private_ip: 172.31.200.5}"),
			region:   "us-east-1",
			zone:     "us-east-1a",
			zoneID:   "use1-az1",
			hostname: "ip-%s.ec2.internal",
			subnet:   "172.31.192.0/20",
			vpc:      "172.31.0.0/16",
			ip:       "172.31.200.5",
		},
		{
			name:     "subnet and VPC given",
			config:   tenantConfig("", "instance: {subnet_cidr: 192.168.4.0/22, vpc_cidr: 192.168.0.0/16}"),
			region:   "us-east-1",
			zone:     "us-east-1a",
			zoneID:   "use1-az1",
			hostname: "ip-%s.ec2.internal",
			subnet:   "192.168.4.0/22",
			vpc:      "192.168.0.0/16",
		},
		{
			name:     "public IP in us-east-1",
			config:   tenantConfig("", "instance: {public_ip: 3.80.1.2}"),
			region:   "us-east-1",
			zone:     "us-east-1a",
			zoneID:   "use1-az1",
			hostname: "ip-%s.ec2.internal",
			public:   "ec2-3-80-1-2.compute-1.amazonaws.com",
			subnet:   "172.31.0.0/20",
			vpc:      "172.31.0.0/16",
		},
		{
			name:     "public IP elsewhere",
			config:   tenantConfig("", "region: eu-central-1", "instance: {public_ip: 18.156.1.2}"),
			region:   "eu-central-1",
			zone:     "eu-central-1a",
			zoneID:   "euc1-az1",
			hostname: "ip-%s.eu-central-1.compute.internal",
			public:   "ec2-18-156-1-2.eu-central-1.compute.amazonaws.com",
			subnet:   "172.31.0.0/20",
			vpc:      "172.31.0.0/16",
		},
		{
			name:     "public IP in China",
			config:   tenantConfig("", "region: cn-north-1", "instance: {public_ip: 52.80.1.2}"),
			region:   "cn-north-1",
			zone:     "cn-north-1a",
			zoneID:   "cnn1-az1",
			hostname: "ip-%s.cn-north-1.compute.internal",
			public:   "ec2-52-80-1-2.cn-north-1.compute.amazonaws.com.cn",
			subnet:   "172.31.0.0/20",
			vpc:      "172.31.0.0/16",
		},
		{
			name:     "hostnames given",
			config:   tenantConfig("", "instance: {private_ip: 10.0.0.10, hostname: web.corp.internal, public_ip: 3.80.1.2, public_hostname: web.example.com}"),
			region:   "us-east-1",
			zone:     "us-east-1a",
			zoneID:   "use1-az1",
			hostname: "web.corp.internal",
			public:   "web.example.com",
			subnet:   "10.0.0.0/24",
			vpc:      "10.0.0.0/16",
			ip:       "10.0.0.10",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := parseOne(t, tt.config).Instance
			ifc := in.Primary()
			ip := in.PrivateIP()
			hostname := tt.hostname
			if strings.Contains(hostname, "%s") {
				hostname = fmt.Sprintf(hostname, strings.ReplaceAll(ip.String(), ".", "-"))
			}
			for _, c := range []struct{ what, got, want string }{
				{"region", in.Region, tt.region},
				{"zone", in.AvailabilityZone, tt.zone},
				{"zone id", in.AvailabilityZoneID, tt.zoneID},
				{"local hostname", in.LocalHostname, hostname},
				{"interface's local hostname", ifc.LocalHostname, hostname},
				{"public hostname", in.PublicHostname, tt.public},
				{"interface's public hostname", ifc.PublicHostname, tt.public},
				{"subnet", ifc.SubnetIPv4CIDR.String(), tt.subnet},
				{"VPC", fmt.Sprint(ifc.VPCIPv4CIDRs), "[" + tt.vpc + "]"},
			} {
				if c.got != c.want {
					t.Errorf("%s %q, want %q", c.what, c.got, c.want)
				}
			}
			if tt.ip != "" && ip.String() != tt.ip {
				t.Errorf("private IP %s, want %s", ip, tt.ip)
			}
			if !ifc.SubnetIPv4CIDR.Contains(ip) {
				t.Errorf("private IP %s outside subnet %s", ip, ifc.SubnetIPv4CIDR)
			}
			if pub := in.PublicIP(); pub.IsValid() && ifc.IPv4Associations[pub] != ip {
				t.Errorf("%s is associated with %s, want %s", pub, ifc.IPv4Associations[pub], ip)
			}
		})
	}
}

// twoTenants is a configuration whose tenants differ only by name.
func twoTenants(first, second string) string {
	return fmt.Sprintf(`tenants:
  - name: %s
    sources: [10.0.0.1]
  - name: %s
    sources: [10.0.0.2]
`, first, second)
}

func TestParseStableIdentity(t *testing.T) {
	a := parse(t, "c.yaml", twoTenants("web", "worker"))
	b := parse(t, "other.yaml", twoTenants("worker", "web"))
	web1, worker1 := a.Tenants[0], a.Tenants[1]
	worker2, web2 := b.Tenants[0], b.Tenants[1]

	identity := func(tn *tenants.Tenant) map[string]string {
		in := tn.Instance
		p := in.Primary()
		return map[string]string{
			"instance id":    in.ID,
			"reservation id": in.ReservationID,
			"MAC":            p.MAC,
			"interface id":   p.ID,
			"private IP":     in.PrivateIP().String(),
			"hostname":       in.LocalHostname,
		}
	}
	// The same name is the same instance, wherever the tenant sits in the file.
	for _, pair := range [][2]*tenants.Tenant{{web1, web2}, {worker1, worker2}} {
		if got, want := identity(pair[1]), identity(pair[0]); !reflect.DeepEqual(got, want) {
			t.Errorf("%s's identity changed between parses:\n got %v\nwant %v", pair[0].Name, got, want)
		}
	}
	// Different names are different instances.
	w, k := identity(web1), identity(worker1)
	for what := range w {
		if what == "private IP" || what == "hostname" {
			continue // two of 4091 hosts may coincide; ids may not
		}
		if w[what] == k[what] {
			t.Errorf("web and worker share the %s %s", what, w[what])
		}
	}
	// The network they share is the same network.
	if p, q := web1.Instance.Primary(), worker1.Instance.Primary(); p.VPCID != q.VPCID || p.SubnetID != q.SubnetID || !reflect.DeepEqual(p.SecurityGroupIDs, q.SecurityGroupIDs) {
		t.Errorf("web and worker in one zone: vpc %s/%s, subnet %s/%s, groups %v/%v; want the same", p.VPCID, q.VPCID, p.SubnetID, q.SubnetID, p.SecurityGroupIDs, q.SecurityGroupIDs)
	}
	// A second parse is the same configuration, down to every attribute.
	again := parse(t, "c.yaml", twoTenants("web", "worker"))
	if !reflect.DeepEqual(a, again) {
		t.Errorf("two parses of one file differ")
	}
}

func TestParseDerivedIDShapes(t *testing.T) {
	shapes := map[string]*regexp.Regexp{
		"instance id":          regexp.MustCompile(`^i-[0-9a-f]{17}$`),
		"reservation id":       regexp.MustCompile(`^r-[0-9a-f]{17}$`),
		"AMI id":               regexp.MustCompile(`^ami-[0-9a-f]{17}$`),
		"interface id":         regexp.MustCompile(`^eni-[0-9a-f]{17}$`),
		"VPC id":               regexp.MustCompile(`^vpc-[0-9a-f]{17}$`),
		"subnet id":            regexp.MustCompile(`^subnet-[0-9a-f]{17}$`),
		"security group id":    regexp.MustCompile(`^sg-[0-9a-f]{17}$`),
		"MAC":                  regexp.MustCompile(`^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$`),
		"instance profile id":  regexp.MustCompile(`^AIPA[A-Z2-7]{17}$`),
		"instance profile ARN": regexp.MustCompile(`^arn:aws:iam::123456789012:instance-profile/dev$`),
	}
	for _, name := range []string{"web", "worker", "a", "Z.9_x-y", strings.Repeat("n", 63)} {
		t.Run(name, func(t *testing.T) {
			tn := parseOne(t, fmt.Sprintf("tenants:\n  - name: %q\n    sources: [10.0.0.1]\n    credentials: {profile: dev}\n", name))
			in := tn.Instance
			p := in.Primary()
			got := map[string]string{
				"instance id":          in.ID,
				"reservation id":       in.ReservationID,
				"AMI id":               in.AMIID,
				"interface id":         p.ID,
				"VPC id":               p.VPCID,
				"subnet id":            p.SubnetID,
				"security group id":    strings.Join(p.SecurityGroupIDs, " "),
				"MAC":                  p.MAC,
				"instance profile id":  tn.Role.InstanceProfileID,
				"instance profile ARN": tn.Role.InstanceProfileARN,
			}
			for what, re := range shapes {
				if !re.MatchString(got[what]) {
					t.Errorf("%s %q does not match %s", what, got[what], re)
				}
			}
			hw, err := net.ParseMAC(p.MAC)
			if err != nil {
				t.Fatal(err)
			}
			if hw[0]&0x01 != 0 || hw[0]&0x02 == 0 {
				t.Errorf("MAC %s is not a locally administered unicast address", hw)
			}
			if p.OwnerID != in.AccountID {
				t.Errorf("interface owner %s, want the account %s", p.OwnerID, in.AccountID)
			}
		})
	}
}

func TestParsePrivateIPAvoidsReservedAddresses(t *testing.T) {
	tests := []struct{ name, defaults string }{
		{"default VPC's /20", ""},
		{"smallest subnet", "defaults:\n  instance: {subnet_cidr: 10.9.8.0/28, vpc_cidr: 10.0.0.0/8}\n"},
		{"a /24", "defaults:\n  instance: {subnet_cidr: 10.9.8.0/24, vpc_cidr: 10.0.0.0/8}\n"},
		{"a /16 that is its own VPC", "defaults:\n  instance: {subnet_cidr: 192.168.0.0/16}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString(tt.defaults)
			b.WriteString("tenants:\n")
			for i := range 300 {
				fmt.Fprintf(&b, "  - {name: t%d, sources: [\"10.1.%d.%d\"]}\n", i, i/256, i%256)
			}
			for _, tn := range parse(t, "c.yaml", b.String()).Tenants {
				p := tn.Instance.Primary()
				ip, pfx := tn.Instance.PrivateIP(), p.SubnetIPv4CIDR
				first := pfx.Addr()
				if !pfx.Contains(ip) {
					t.Fatalf("%s: %s is outside %s", tn.Name, ip, pfx)
				}
				reserved := []netip.Addr{first, first.Next(), first.Next().Next(), first.Next().Next().Next(), lastAddr(pfx)}
				for _, r := range reserved {
					if ip == r {
						t.Fatalf("%s: %s is one of AWS's reserved addresses of %s", tn.Name, ip, pfx)
					}
				}
			}
		})
	}
}

// lastAddr is a prefix's broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= 1<<host - 1
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		name        string
		lines       []string
		account     string
		role        *tenants.Role // InstanceProfileID is checked for shape elsewhere
		sessionName string        // "instance": the instance id
		duration    time.Duration
		refresh     time.Duration
	}{
		{
			name:        "no profile and no role",
			lines:       nil,
			account:     "123456789012",
			sessionName: "instance",
			duration:    time.Hour,
			refresh:     15 * time.Minute,
		},
		{
			name:        "profile names the role",
			lines:       []string{"credentials: {profile: dev-sso}"},
			account:     "123456789012",
			role:        &tenants.Role{Name: "dev-sso", InstanceProfileARN: "arn:aws:iam::123456789012:instance-profile/dev-sso", FromProfile: true},
			sessionName: "instance",
			duration:    time.Hour,
			refresh:     15 * time.Minute,
		},
		{
			name:        "role_arn's last segment names the role and gives the account",
			lines:       []string{"credentials: {profile: dev, role_arn: 'arn:aws:iam::111122223333:role/team/web-role'}"},
			account:     "111122223333",
			role:        &tenants.Role{Name: "web-role", ARN: "arn:aws:iam::111122223333:role/team/web-role", InstanceProfileARN: "arn:aws:iam::111122223333:instance-profile/web-role"},
			sessionName: "instance",
			duration:    time.Hour,
			refresh:     15 * time.Minute,
		},
		{
			name:        "role_name wins over role_arn",
			lines:       []string{"credentials: {role_arn: 'arn:aws:iam::111122223333:role/web', role_name: web-profile, session_name: imds-web}"},
			account:     "111122223333",
			role:        &tenants.Role{Name: "web-profile", ARN: "arn:aws:iam::111122223333:role/web", InstanceProfileARN: "arn:aws:iam::111122223333:instance-profile/web-profile"},
			sessionName: "imds-web",
			duration:    time.Hour,
			refresh:     15 * time.Minute,
		},
		{
			name:        "account_id wins over role_arn's",
			lines:       []string{"instance: {account_id: '444455556666'}", "credentials: {role_arn: 'arn:aws:iam::111122223333:role/web'}"},
			account:     "444455556666",
			role:        &tenants.Role{Name: "web", ARN: "arn:aws:iam::111122223333:role/web", InstanceProfileARN: "arn:aws:iam::444455556666:instance-profile/web"},
			sessionName: "instance",
			duration:    time.Hour,
			refresh:     15 * time.Minute,
		},
		{
			name:        "partition of the region",
			lines:       []string{"region: cn-north-1", "credentials: {role_arn: 'arn:aws-cn:iam::111122223333:role/web'}"},
			account:     "111122223333",
			role:        &tenants.Role{Name: "web", ARN: "arn:aws-cn:iam::111122223333:role/web", InstanceProfileARN: "arn:aws-cn:iam::111122223333:instance-profile/web"},
			sessionName: "instance",
			duration:    time.Hour,
			refresh:     15 * time.Minute,
		},
		{
			name:        "shortest duration refreshes 5m ahead, as IMDS publishes",
			lines:       []string{"credentials: {profile: dev, duration: 15m}"},
			account:     "123456789012",
			role:        &tenants.Role{Name: "dev", InstanceProfileARN: "arn:aws:iam::123456789012:instance-profile/dev", FromProfile: true},
			sessionName: "instance",
			duration:    15 * time.Minute,
			refresh:     5 * time.Minute,
		},
		{
			name:        "a 30m duration refreshes a third ahead",
			lines:       []string{"credentials: {profile: dev, duration: 30m}"},
			account:     "123456789012",
			role:        &tenants.Role{Name: "dev", InstanceProfileARN: "arn:aws:iam::123456789012:instance-profile/dev", FromProfile: true},
			sessionName: "instance",
			duration:    30 * time.Minute,
			refresh:     10 * time.Minute,
		},
		{
			name:        "longest duration",
			lines:       []string{"credentials: {profile: dev, duration: 12h, refresh_before: 1h}"},
			account:     "123456789012",
			role:        &tenants.Role{Name: "dev", InstanceProfileARN: "arn:aws:iam::123456789012:instance-profile/dev", FromProfile: true},
			sessionName: "instance",
			duration:    12 * time.Hour,
			refresh:     time.Hour,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := parseOne(t, tenantConfig("", tt.lines...))
			if tn.Instance.AccountID != tt.account {
				t.Errorf("account %s, want %s", tn.Instance.AccountID, tt.account)
			}
			role := tn.Role
			if role != nil {
				r := *role
				r.InstanceProfileID = ""
				role = &r
			}
			if !reflect.DeepEqual(role, tt.role) {
				t.Errorf("role %+v, want %+v", role, tt.role)
			}
			want := tt.sessionName
			if want == "instance" {
				want = tn.Instance.ID
			}
			c := tn.Credentials
			if c.SessionName != want || c.Duration != tt.duration || c.RefreshBefore != tt.refresh {
				t.Errorf("session %s for %s refreshed %s ahead; want %s for %s refreshed %s ahead", c.SessionName, c.Duration, c.RefreshBefore, want, tt.duration, tt.refresh)
			}
			if tt.role != nil && c.RoleARN != tt.role.ARN {
				t.Errorf("spec's role ARN %q, want %q", c.RoleARN, tt.role.ARN)
			}
		})
	}
}

func TestParseArchitecture(t *testing.T) {
	tests := []struct {
		name, lines, want string
	}{
		{"default type", "", "x86_64"},
		{"t4g", "instance: {instance_type: t4g.nano}", "arm64"},
		{"m7g", "instance: {instance_type: m7g.large}", "arm64"},
		{"c7gn", "instance: {instance_type: c7gn.xlarge}", "arm64"},
		{"a1", "instance: {instance_type: a1.medium}", "arm64"},
		{"m5", "instance: {instance_type: m5.large}", "x86_64"},
		{"g5 is a GPU, not a Graviton", "instance: {instance_type: g5.xlarge}", "x86_64"},
		{"given", "instance: {instance_type: mac2.metal, architecture: arm64_mac}", "arm64_mac"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseOne(t, tenantConfig("", tt.lines)).Instance.Architecture(); got != tt.want {
				t.Errorf("architecture %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseSources(t *testing.T) {
	tests := []struct {
		name   string
		source string
		want   string
	}{
		{"IPv4 host", "10.0.0.1", "10.0.0.1/32"},
		{"IPv4 block", "172.30.0.0/16", "172.30.0.0/16"},
		{"IPv6 host", "fd00:30::10", "fd00:30::10/128"},
		{"IPv6 block", "fd00:30::/64", "fd00:30::/64"},
		{"IPv4-mapped host", "::ffff:10.0.0.1", "10.0.0.1/32"},
		{"IPv4-mapped block", "::ffff:10.0.0.0/120", "10.0.0.0/24"},
		{"everything", "0.0.0.0/0", "0.0.0.0/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := parseOne(t, fmt.Sprintf("tenants:\n  - name: web\n    sources: [%q]\n", tt.source))
			if got := fmt.Sprint(tn.Sources); got != "["+tt.want+"]" {
				t.Errorf("sources %s, want [%s]", got, tt.want)
			}
		})
	}
}

func TestParseSourceErrors(t *testing.T) {
	tests := []struct {
		name, source, want string
	}{
		{"zone", "fe80::1%eth0", `"fe80::1%eth0": zones are not allowed in sources`},
		{"mapped block too wide", "::ffff:0.0.0.0/95", `"::ffff:0.0.0.0/95": an IPv4-mapped block needs at least /96`},
		{"mapped block with host bits", "::ffff:10.0.0.1/120", `"::ffff:10.0.0.1/120" has host bits set; did you mean 10.0.0.0/24?`},
		{"hostname", "localhost", `"localhost" is not an IP address or CIDR block`},
		{"empty", "", `"" is not an IP address or CIDR block`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tenants.ParseSource(tt.source)
			if err == nil || err.Error() != tt.want {
				t.Errorf("ParseSource(%q) = %v, want %s", tt.source, err, tt.want)
			}
		})
	}
}

func TestParseUserData(t *testing.T) {
	dir := t.TempDir()
	script := []byte("#!/bin/sh\necho hello\n")
	if err := os.WriteFile(filepath.Join(dir, "web.sh"), script, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "scripts"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scripts", "common.sh"), []byte("common"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		preamble string
		lines    []string
		want     []byte // nil: no user data
	}{
		{"none", "", nil, nil},
		{"inline", "", []string{`user_data: "#cloud-config\n"`}, []byte("#cloud-config\n")},
		{"inline and empty", "", []string{`user_data: ""`}, []byte{}},
		{"file beside the config", "", []string{"user_data_file: web.sh"}, script},
		{"file in a subdirectory", "", []string{"user_data_file: scripts/common.sh"}, []byte("common")},
		{"absolute file", "", []string{"user_data_file: " + filepath.Join(dir, "web.sh")}, script},
		{"inherited file", "defaults: {user_data_file: scripts/common.sh}\n", nil, []byte("common")},
		{"own inline data over an inherited file", "defaults: {user_data_file: scripts/common.sh}\n", []string{"user_data: mine"}, []byte("mine")},
		{"own file over inherited inline data", "defaults: {user_data: everyone}\n", []string{"user_data_file: web.sh"}, script},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, filepath.Join(dir, "config.yaml"), tenantConfig(tt.preamble, tt.lines...))
			got := cfg.Tenants[0].UserData()
			if (got == nil) != (tt.want == nil) || string(got) != string(tt.want) {
				t.Errorf("user data %q (nil: %t), want %q (nil: %t)", got, got == nil, tt.want, tt.want == nil)
			}
		})
	}
}

// TestParseGolden pins every attribute derived for a few tenants: the body a
// handler renders is only as right as this.
func TestParseGolden(t *testing.T) {
	in := filepath.Join("testdata", "tenants.yaml")
	cfg, err := tenants.Load(in, launch)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "tenants.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("Load(%s) differs from %s; if the change is intended, run go test ./tenants -run TestParseGolden -update and review the diff.\ngot:\n%s", in, golden, got)
	}
}

func TestParseMFADuration(t *testing.T) {
	tests := []struct {
		name, value string
		want        time.Duration
		err         string
	}{
		{name: "unset is the default", want: 0},
		{name: "a day and a half", value: "36h", want: 36 * time.Hour},
		{name: "too long", value: "48h", err: "c.yaml:2: server.mfa_duration: 48h0m0s: STS issues MFA sessions for 15m to 36h"},
		{name: "too short", value: "10m", err: "c.yaml:2: server.mfa_duration: 10m0s: STS issues MFA sessions for 15m to 36h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server := "server:\n  listen: [\"127.0.0.1:8080\"]\n"
			if tc.value != "" {
				server = "server:\n  mfa_duration: " + tc.value + "\n"
			}
			if tc.err != "" {
				if got := parseErrors(t, "c.yaml", tenantConfig(server)); len(got) != 1 || got[0] != tc.err {
					t.Errorf("errors %q, want %q", got, tc.err)
				}
				return
			}
			if got := parse(t, "c.yaml", tenantConfig(server)).Server.MFADuration; got != tc.want {
				t.Errorf("MFADuration = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		in, want string // want "" for an error
	}{
		{"127.0.0.1:8080", "127.0.0.1:8080"},
		{"[::1]:8080", "[::1]:8080"},
		{"169.254.169.254:80", "169.254.169.254:80"},
		{":8080", "[::]:8080"},
		{":0", "[::]:0"},
		{":http", ""},
		{":65536", ""},
		{"localhost:8080", ""},
		{"8080", ""},
		{"", ""},
	}
	for _, tt := range tests {
		ap, err := tenants.ParseListen(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("ParseListen(%q) = %v, want an error", tt.in, ap)
		case tt.want != "" && (err != nil || ap.String() != tt.want):
			t.Errorf("ParseListen(%q) = %v, %v; want %s", tt.in, ap, err, tt.want)
		}
	}
}
