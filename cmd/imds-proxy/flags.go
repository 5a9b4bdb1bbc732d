package main

import (
	"errors"
	"flag"
	"io"
	"net"
	"strings"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// options are the command line after flags and environment are applied.
type options struct {
	config          string
	listen          []string
	adminListen     string
	containerListen string
	ecsListen       string
	podIdentity     []string // --pod-identity-listen
	logFormat       string
	logLevel        string
	version         bool
	seed            seedFlags
	seedSet         []string // seed flags given on the command line
	sourcesGiven    bool
	appPortFlag     bool     // --app-port typed, not only APP_PORT in the environment
	dockerHost      string   // DOCKER_HOST: the engine of tenants that name containers
	nodeName        string   // NODE_NAME: the node whose pods Kubernetes mode follows, unless kubernetes.node_name
	ignoredEnv      []string // with --config: AWS variables that choose nothing (ignoredAWSEnvironment)
	notifySocket    string   // NOTIFY_SOCKET: where systemd hears readiness (notifier)
	memoryLimit     memoryLimit
	goMemLimit      bool // GOMEMLIMIT is set: auto leaves it to the runtime
}

// seedFlags are aws-mock-metadata's flags, which describe one tenant when
// no --config is given.
type seedFlags struct {
	availabilityZone, instanceID, instanceType, hostname, privateIP string
	vpcID, macAddress, amiID, roleName, roleARN, appPort, profile   string
	containerTokenFile                                              string
	mockInstanceProfile, mockSpotTermination                        bool
	sources                                                         []string
}

// seedDefaults: the single tenant serves loopback clients only, with the
// default profile's credentials, on the seed's port 8080.
const (
	defaultAppPort = "8080"
	defaultProfile = "default"
)

var defaultSources = []string{"127.0.0.0/8", "::1/128"}

// listFlag is a repeatable flag that also accepts comma-separated values.
type listFlag struct{ vals *[]string }

func (l listFlag) String() string {
	if l.vals == nil {
		return ""
	}
	return strings.Join(*l.vals, ",")
}

func (l listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l.vals = append(*l.vals, s)
		}
	}
	return nil
}

// seedEnv maps each seed flag to the environment variable that sets it when
// the flag is absent: flags beat environment beats defaults.
var seedEnv = map[string]string{
	"availability-zone": "AVAILABILITY_ZONE",
	"instance-id":       "INSTANCE_ID",
	"instance-type":     "INSTANCE_TYPE",
	"hostname":          "HOSTNAME",
	"private-ip":        "PRIVATE_IP",
	"vpc-id":            "VPC_ID",
	"mac-address":       "MAC_ADDRESS",
	"ami-id":            "AMI_ID",
	"role-name":         "ROLE_NAME",
	"role-arn":          "ROLE_ARN",
	"app-port":          "APP_PORT",
	"profile":           "AWS_PROFILE",
}

// serverEnv maps the server's flags to the environment variables that set
// them when the flag is absent (IMDS_PROXY_*): a service unit or a
// container sets these rather than a command line.
type envFlag struct{ env, flag string }

func serverEnv() []envFlag {
	return []envFlag{
		{"IMDS_PROXY_CONFIG", "config"},
		{"IMDS_PROXY_LISTEN", "listen"},
		{"IMDS_PROXY_ADMIN_LISTEN", "admin-listen"},
		{"IMDS_PROXY_LOG_LEVEL", "log-level"},
		{"IMDS_PROXY_LOG_FORMAT", "log-format"},
		{"IMDS_PROXY_MEMORY_LIMIT", "memory-limit"},
	}
}

// serveFlagSet defines the flags of serving into o: the one definition the
// parser, the usage, the completions and the manual page read.
func serveFlagSet(o *options, verbose, noRedirects *bool) *flag.FlagSet {
	fs := flag.NewFlagSet("imds-proxy", flag.ContinueOnError)
	fs.StringVar(&o.config, "config", "", "YAML configuration `file` (tenants, server); without it the seed flags describe one tenant")
	fs.Var(listFlag{&o.listen}, "listen", "IMDS listen `address` (repeatable; default 127.0.0.1:<app-port>, or server.listen; :8080 for every address)")
	fs.StringVar(&o.adminListen, "admin-listen", "", "admin listener `address` for /healthz (default server.admin_listen, 127.0.0.1:9180; \"off\" disables it)")
	fs.StringVar(&o.containerListen, "container-listen", "", "container credentials endpoint `address` (default server.container_listen; none unless set)")
	fs.StringVar(&o.ecsListen, "ecs-listen", "", "ECS-style credentials endpoint `address`, chosen by source (default server.ecs_listen; none unless set; 169.254.170.2:80 for AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)")
	fs.Var(listFlag{&o.podIdentity}, "pod-identity-listen", "EKS Pod Identity endpoint `address`, chosen by the pod's service account token (repeatable; default server.pod_identity_listen; none unless set; 169.254.170.23:80 and [fd00:ec2::23]:80 for AWS_CONTAINER_CREDENTIALS_FULL_URI)")
	fs.StringVar(&o.logFormat, "log-format", "", "log `format`: json or console (default: console on a terminal, else json)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	o.memoryLimit = memoryLimit{auto: true}
	fs.Var(&o.memoryLimit, "memory-limit", "soft memory `limit` of the Go runtime: auto (the larger of 64MiB and 6KiB a tenant, less 16MiB for the binary's mapped code; GOMEMLIMIT if set), off, or a size such as 256MiB")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVar(verbose, "verbose", false, "same as --log-level debug")
	fs.BoolVar(noRedirects, "no-scheme-host-redirects", false, "accepted for aws-mock-metadata compatibility; this proxy never redirects, so it changes nothing")

	s := &o.seed
	fs.StringVar(&s.availabilityZone, "availability-zone", "", "availability `zone`; the region follows from it (env AVAILABILITY_ZONE)")
	fs.StringVar(&s.instanceID, "instance-id", "", "instance `id` (env INSTANCE_ID; default derived from the tenant name)")
	fs.StringVar(&s.instanceType, "instance-type", "", "instance `type` (env INSTANCE_TYPE; default t3.micro)")
	fs.StringVar(&s.hostname, "hostname", "", "local-hostname and hostname: a DNS `name` (env HOSTNAME; default ip-<private-ip>.<region's domain>)")
	fs.StringVar(&s.privateIP, "private-ip", "", "local-ipv4 `address` (env PRIVATE_IP)")
	fs.StringVar(&s.vpcID, "vpc-id", "", "VPC `id` (env VPC_ID)")
	fs.StringVar(&s.macAddress, "mac-address", "", "`MAC` of the primary interface (env MAC_ADDRESS)")
	fs.StringVar(&s.amiID, "ami-id", "", "AMI `id` (env AMI_ID)")
	fs.StringVar(&s.roleName, "role-name", "", "role `name` under iam/security-credentials/ (env ROLE_NAME)")
	fs.StringVar(&s.roleARN, "role-arn", "", "`role` to assume with the profile's credentials (env ROLE_ARN)")
	fs.StringVar(&s.appPort, "app-port", "", "`port` of the default listen address (env APP_PORT; default 8080)")
	fs.StringVar(&s.profile, "profile", "", "AWS `profile` whose credentials are vended (env AWS_PROFILE; default \"default\")")
	fs.StringVar(&s.containerTokenFile, "container-token-file", "", "`file` holding the token that authorises the tenant on the container credentials endpoint")
	fs.BoolVar(&s.mockInstanceProfile, "mock-instance-profile", false, "vend made-up credentials: no AWS account, no network (credentials.mock)")
	fs.BoolVar(&s.mockSpotTermination, "mock-spot-termination", false, "announce a spot interruption (terminate) 2m after start, at 4m (events)")
	fs.Var(listFlag{&s.sources}, "source", "source `address or CIDR` the tenant is served to (repeatable; default 127.0.0.0/8 and ::1)")
	return fs
}

func parseFlags(args []string, getenv func(string) string, stdout io.Writer) (*options, error) {
	o := &options{dockerHost: getenv("DOCKER_HOST"), nodeName: getenv("NODE_NAME"), notifySocket: getenv("NOTIFY_SOCKET"), goMemLimit: getenv("GOMEMLIMIT") != ""}
	var verbose, noRedirects bool
	fs := serveFlagSet(o, &verbose, &noRedirects)
	fs.Usage = func() { mainUsage(fs.Output(), fs) }
	if err := parseArgs(fs, args, stdout); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		if strings.HasPrefix(fs.Arg(0), "-") {
			return nil, usagef("unexpected argument %q after the flags (see imds-proxy --help)", fs.Arg(0))
		}
		return nil, usagef("unknown command %q (imds-proxy --help lists the commands)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, e := range serverEnv() {
		if v := getenv(e.env); v != "" && !set[e.flag] {
			if err := fs.Set(e.flag, v); err != nil {
				return nil, usagef("%s=%q: %v", e.env, v, err)
			}
		}
	}
	if verbose && !set["log-level"] {
		o.logLevel = "debug"
	}
	fs.Visit(func(f *flag.Flag) {
		if seedFlag(f.Name) && f.Name != "verbose" && f.Name != "no-scheme-host-redirects" {
			o.seedSet = append(o.seedSet, "--"+f.Name)
		}
	})
	if o.config != "" {
		o.ignoredEnv = ignoredAWSEnvironment(getenv)
	}
	o.sourcesGiven = set["source"]
	o.appPortFlag = set["app-port"]
	if o.config == "" {
		for name, env := range seedEnv {
			v := getenv(env)
			if name == "hostname" && !strings.Contains(v, ".") {
				// Shells and Docker export HOSTNAME as a bare host or
				// container name; only a DNS name is meant for us.
				continue
			}
			if !set[name] && v != "" {
				if err := fs.Set(name, getenv(env)); err != nil {
					return nil, usagef("%s=%q: %v", env, v, err)
				}
			}
		}
	}
	return o, nil
}

// seedFile builds the one-tenant configuration the seed's flags describe.
func (o *options) seedFile() (*tenants.File, error) {
	s := o.seed
	port := s.appPort
	if port == "" {
		port = defaultAppPort
	}
	if len(o.listen) > 0 && o.appPortFlag {
		return nil, errors.New("--app-port and --listen both choose where to listen: give one")
	}
	// --listen, --admin-listen and --container-listen are laid over this
	// by applyFlagOverrides, in seed mode as with --config.
	listen := []string{net.JoinHostPort("127.0.0.1", port)}
	sources := s.sources
	if len(sources) == 0 {
		sources = defaultSources
	}
	profile := s.profile
	if profile == "" && !s.mockInstanceProfile {
		profile = defaultProfile
	}
	return &tenants.File{
		Server: tenants.ServerConfig{Listen: listen},
		Tenants: []tenants.TenantConfig{{
			Name:                 "default",
			Events:               seedEvents(s.mockSpotTermination),
			Sources:              sources,
			ContainerCredentials: tenants.ContainerCredentialsConfig{TokenFile: s.containerTokenFile},
			Credentials: tenants.CredentialsConfig{
				Profile:  profile,
				RoleARN:  s.roleARN,
				RoleName: s.roleName,
				Mock:     s.mockInstanceProfile,
			},
			Instance: tenants.InstanceConfig{
				InstanceID:       s.instanceID,
				InstanceType:     s.instanceType,
				AvailabilityZone: s.availabilityZone,
				Hostname:         s.hostname,
				PrivateIP:        s.privateIP,
				VPCID:            s.vpcID,
				MACAddress:       s.macAddress,
				AMIID:            s.amiID,
			},
		}},
	}, nil
}

// seedKeyFlags names, for an error in a seed-built configuration, the flag
// the user actually typed.
var seedKeyFlags = map[string]string{
	"instance_id":         "--instance-id",
	"instance_type":       "--instance-type",
	"availability_zone":   "--availability-zone",
	"hostname":            "--hostname",
	"private_ip":          "--private-ip",
	"vpc_id":              "--vpc-id",
	"mac_address":         "--mac-address",
	"ami_id":              "--ami-id",
	"role_name":           "--role-name",
	"role_arn":            "--role-arn",
	"profile":             "--profile",
	"sources":             "--source",
	"listen":              "--listen",
	"admin_listen":        "--admin-listen",
	"container_listen":    "--container-listen",
	"ecs_listen":          "--ecs-listen",
	"pod_identity_listen": "--pod-identity-listen",
	"session_name":        "--instance-id",
	"token_file":          "--container-token-file",
	"token":               "--container-token-file",
	"mock":                "--mock-instance-profile",
}

// flagErrors rewrites configuration errors in terms of flags.
func flagErrors(errs tenants.Errors) error {
	return errors.New(strings.Join(flagMessages(errs), "\n"))
}

// flagMessages says each problem of a seed-built configuration in terms of
// the flag the user typed.
func flagMessages(errs tenants.Errors) []string {
	lines := make([]string, 0, len(errs))
	for _, e := range errs {
		name := e.Key()
		for i := len(e.Path) - 1; i >= 0; i-- {
			if k, ok := e.Path[i].(string); ok {
				if f, ok := seedKeyFlags[k]; ok {
					name = f
				}
				break
			}
		}
		lines = append(lines, name+": "+e.Msg)
	}
	return lines
}
