package awssource

import (
	"cmp"
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// defaultRegion is where STS is called when neither the profile nor the
// environment names a region.
const defaultRegion = "us-east-1"

// STSClient is the part of the STS API a credential source uses; the
// method signatures are the SDK's, so *sts.Client satisfies it.
type STSClient interface {
	AssumeRole(context.Context, *sts.AssumeRoleInput, ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
	GetSessionToken(context.Context, *sts.GetSessionTokenInput, ...func(*sts.Options)) (*sts.GetSessionTokenOutput, error)
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Profile is a loaded AWS profile: its credentials, an STS client signing
// with them, and what the shared config says about it.
type Profile struct {
	Name         string
	Credentials  aws.CredentialsProvider
	STS          STSClient
	SSOSession   string // sso_session of the profile, if any
	SSO          bool   // credentials come from IAM Identity Center
	DefaultChain bool   // loaded through the SDK's default chain (Profiles.DefaultChain)
	// MFA, if not nil, says the profile's credentials come from an MFA
	// session (mfa_serial on the profile or its source_profile chain);
	// Credentials and STS are then the long-term keys that session is
	// asked for with.
	MFA *MFA
}

// ProfileLoader loads a named profile afresh. It is called on every refresh,
// so edits to ~/.aws and a new `aws sso login` are seen without a restart.
type ProfileLoader func(ctx context.Context, profile string) (*Profile, error)

// Profiles loads AWS profiles with aws-sdk-go-v2/config: everything about a
// profile — static keys, source_profile chains, credential_process, SSO
// sessions, endpoint settings — is the SDK's business, read afresh at every
// call so that edits and new SSO logins apply without a restart.
type Profiles struct {
	// DefaultChain loads the profile "default" (or "") without naming it,
	// so that the SDK's default chain applies as for the AWS CLI:
	// AWS_ACCESS_KEY_ID… in the environment first, then AWS_PROFILE's
	// profile, then the profile default. Seed mode (no --config) sets it:
	// its one tenant is the host's own AWS identity, and --profile
	// (AWS_PROFILE) already names any other profile.
	//
	// If false (a configuration file), every profile is named to the SDK,
	// "default" and "" included, so a tenant gets exactly the profile it
	// names: an explicitly chosen profile is the one thing the SDK ranks
	// above environment credentials, and the daemon's AWS_PROFILE or
	// AWS_ACCESS_KEY_ID must not choose whose credentials every tenant
	// that says "default" is served.
	DefaultChain bool
}

// sdkOptions are the aws-sdk-go-v2/config options for a profile.
func (ps Profiles) sdkOptions(profile string) []func(*config.LoadOptions) error {
	opts := []func(*config.LoadOptions) error{
		config.WithDefaultRegion(defaultRegion),
		// Never fall back to instance metadata: on this host, that may be
		// imds-proxy itself.
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
	}
	if !ps.defaultChain(profile) {
		opts = append(opts, config.WithSharedConfigProfile(profileName(profile)))
	}
	return opts
}

func (ps Profiles) defaultChain(profile string) bool {
	return ps.DefaultChain && profileName(profile) == "default"
}

// sharedConfigProfile reads a profile from the files LoadDefaultConfig
// reads: config.LoadSharedConfigProfile on its own ignores AWS_CONFIG_FILE
// and AWS_SHARED_CREDENTIALS_FILE, which would leave an SSO profile
// unrecognised (no `aws sso login` advice) and roles unnamed.
func sharedConfigProfile(ctx context.Context, profile string) (config.SharedConfig, error) {
	env, err := config.NewEnvConfig()
	if err != nil {
		return config.SharedConfig{}, err
	}
	return config.LoadSharedConfigProfile(ctx, profileName(profile), func(o *config.LoadSharedConfigOptions) {
		if env.SharedConfigFile != "" {
			o.ConfigFiles = []string{env.SharedConfigFile}
		}
		if env.SharedCredentialsFile != "" {
			o.CredentialsFiles = []string{env.SharedCredentialsFile}
		}
	})
}

func profileName(p string) string { return cmp.Or(p, "default") }

// NameRoles names the roles of tenants that gave neither role_name nor
// role_arn after the role their profile itself uses (its role_arn, or its
// SSO permission set), as an instance profile is named after its role. A
// profile that cannot be read leaves the name as it is: serving reports
// the profile's problem when it fetches.
func NameRoles(ctx context.Context, cfg *tenants.Config) {
	names := map[string]string{} // by profile: each file read once, however many tenants
	for _, t := range cfg.Tenants {
		if t.Role == nil || !t.Role.FromProfile {
			continue
		}
		name, ok := names[t.Credentials.Profile]
		if !ok {
			name = profileRoleName(ctx, t.Credentials.Profile)
			names[t.Credentials.Profile] = name
		}
		if name != "" {
			t.Role.Rename(name)
		}
	}
}

// profileRoleName is the role a profile itself uses, "" when none or when
// the profile cannot be read.
func profileRoleName(ctx context.Context, profile string) string {
	sc, err := sharedConfigProfile(ctx, profile)
	switch {
	case err != nil:
		return ""
	case sc.RoleARN != "":
		if a, err := arn.Parse(sc.RoleARN); err == nil {
			return a.Resource[strings.LastIndexByte(a.Resource, '/')+1:]
		}
	case sc.SSORoleName != "":
		return sc.SSORoleName
	}
	return ""
}
