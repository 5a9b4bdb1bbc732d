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
	Name        string
	Credentials aws.CredentialsProvider
	STS         STSClient
	SSOSession  string // sso_session of the profile, if any
	SSO         bool   // credentials come from IAM Identity Center
}

// ProfileLoader loads a named profile afresh. It is called on every refresh,
// so edits to ~/.aws and a new `aws sso login` are seen without a restart.
type ProfileLoader func(ctx context.Context, profile string) (*Profile, error)

// sdkOptions are the aws-sdk-go-v2/config options for a profile. The
// "default" profile is loaded without naming it, so the SDK's standard
// chain (environment credentials first) applies, as for the AWS CLI.
func sdkOptions(profile string) []func(*config.LoadOptions) error {
	opts := []func(*config.LoadOptions) error{
		config.WithDefaultRegion(defaultRegion),
		// Never fall back to instance metadata: on this host, that may be
		// imds-proxy itself.
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
	}
	if profile != "" && profile != "default" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	return opts
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
