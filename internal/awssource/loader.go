package awssource

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Loader loads profiles afresh at every refresh, as ProfileLoader and
// EC2Loader ask, but calls STS and EC2 over one connection pool:
// config.LoadDefaultConfig would otherwise give each load a transport of
// its own, whose idle connections outlive it (a long-running proxy
// gathered thousands of sockets to STS). Everything about a profile —
// static keys, source_profile chains, credential_process, SSO sessions,
// endpoint settings, a CA bundle — is still read anew, so that edits and a
// new `aws sso login` apply without a restart.
type Loader struct {
	Profiles // which profile "default" means
	http     *awshttp.BuildableClient

	mu      sync.Mutex
	bundled []bundled // one per distinct custom CA bundle
}

// bundled is a copy of the loader's client that trusts a custom CA bundle.
type bundled struct {
	roots  *x509.CertPool
	client *awshttp.BuildableClient
}

// NewLoader returns a loader with a connection pool of its own, choosing
// profiles as ps says.
func NewLoader(ps Profiles) *Loader {
	// A read timeout of our own also keeps every service client made from
	// a loaded config from copying the client (and so starting a pool of
	// its own) to set the SDK's default one. Fetches are bounded by their
	// context anyway (cache.Options.FetchTimeout).
	return &Loader{Profiles: ps, http: awshttp.NewBuildableClient().WithReadTimeout(readTimeout)}
}

// readTimeout is how long a connection to AWS may stay silent mid-call.
const readTimeout = 30 * time.Second

// Profile is the ProfileLoader of production. The credential_process
// helpers the SDK would run with the proxy's own stderr run with theirs
// captured (process.go).
func (l *Loader) Profile(ctx context.Context, profile string) (*Profile, error) {
	var helpers processHelpers
	var more []func(*config.LoadOptions) error
	sc, scErr := sharedConfigProfile(ctx, profile)
	if scErr == nil {
		if root, roles := mfaChain(&sc); root != nil && !l.defaultChain(profile) {
			// The SDK refuses such a profile without a terminal to ask.
			return l.mfaProfile(ctx, profile, root, roles)
		}
		helpers = helpersOf(&sc)
		more = append(more, config.WithAssumeRoleCredentialOptions(helpers.signAssumeRole))
	}
	cfg, err := l.config(ctx, profile, more...)
	if err != nil {
		return nil, err
	}
	helpers.replaceOwn(&cfg)
	p := &Profile{Name: profile, Credentials: cfg.Credentials, STS: sts.NewFromConfig(cfg), DefaultChain: l.defaultChain(profile)}
	if scErr == nil {
		p.SSOSession = sc.SSOSessionName
		p.SSO = sc.SSOSessionName != "" || sc.SSOStartURL != "" || sc.SSORoleName != ""
	}
	return p, nil
}

// EC2 is the EC2Loader of production, with the same choice of profile as
// Profile (Profiles.DefaultChain). The endpoint is the SDK's own choice
// (AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL, a profile's endpoint_url);
// region "" is the profile's region, else us-east-1.
func (l *Loader) EC2(ctx context.Context, profile, region string) (*EC2, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := l.config(ctx, profile, opts...)
	if err != nil {
		return nil, err
	}
	c := ec2.NewFromConfig(cfg)
	return &EC2{Region: cfg.Region, Instances: c, Networks: c, KeysZones: c, Attributes: c, Status: c}, nil
}

// config loads a profile for clients that use the loader's pool.
func (l *Loader) config(ctx context.Context, profile string, more ...func(*config.LoadOptions) error) (aws.Config, error) {
	opts := append(l.sdkOptions(profile), config.WithHTTPClient(l.http))
	cfg, err := config.LoadDefaultConfig(ctx, append(opts, more...)...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load profile %q: %w", profileName(profile), err)
	}
	if cfg.HTTPClient != l.http {
		cfg.HTTPClient = l.bundledLike(cfg.HTTPClient)
	}
	return cfg, nil
}

// bundledLike returns the loader's client trusting what c trusts. The SDK
// copies the client it is given, pool and all, to add a custom CA bundle
// (ca_bundle, AWS_CA_BUNDLE) at every load: the loader keeps one copy per
// distinct bundle instead, so that the STS and EC2 clients it makes reuse
// connections. (The SDK's own calls during a load — SSO, a source_profile
// role — still go through that load's copy, once per refresh.)
func (l *Loader) bundledLike(c aws.HTTPClient) aws.HTTPClient {
	b, ok := c.(*awshttp.BuildableClient)
	if !ok {
		return c
	}
	var roots *x509.CertPool
	// GetTransport copies the transport, not the cert pool it points to.
	if tls := b.GetTransport().TLSClientConfig; tls != nil {
		roots = tls.RootCAs
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, kept := range l.bundled {
		if kept.roots.Equal(roots) {
			return kept.client
		}
	}
	l.bundled = append(l.bundled, bundled{roots: roots, client: b})
	return b
}
