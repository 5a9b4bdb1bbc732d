package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/cache"
	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// stubEC2 knows one instance; any other id is InvalidInstanceID.NotFound.
type stubEC2 struct{}

func (s *stubEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if len(in.InstanceIds) != 1 || in.InstanceIds[0] != "i-0123456789abcdef0" {
		return nil, &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound", Message: "no such instance"}
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{ReservationId: aws.String("r-0123456789abcdef0"),
		OwnerId: aws.String("111122223333"), Instances: []ec2types.Instance{{InstanceId: aws.String("i-0123456789abcdef0"),
			InstanceType: ec2types.InstanceTypeT3Small, Placement: &ec2types.Placement{AvailabilityZone: aws.String("eu-west-1b"), AvailabilityZoneId: aws.String("euw1-az2")}}}}}}, nil
}

func (s *stubEC2) DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return &ec2.DescribeSubnetsOutput{}, nil
}

func (s *stubEC2) DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	return &ec2.DescribeVpcsOutput{}, nil
}

func (s *stubEC2) DescribeKeyPairs(context.Context, *ec2.DescribeKeyPairsInput, ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error) {
	return &ec2.DescribeKeyPairsOutput{}, nil
}

func (s *stubEC2) DescribeAvailabilityZones(context.Context, *ec2.DescribeAvailabilityZonesInput, ...func(*ec2.Options)) (*ec2.DescribeAvailabilityZonesOutput, error) {
	return &ec2.DescribeAvailabilityZonesOutput{}, nil
}

// TestStatusOfStores: what /readyz and /status report of a tenant comes
// from the stores' entries (handlers.problems reads these states): mirrors
// through the real awssource.Mirror, credentials through the real
// awssource.ProfileCredentials, both over stubbed AWS APIs.
func TestStatusOfStores(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, err := tenants.Parse("c.yaml", []byte(`tenants:
  - name: good
    sources: [10.0.0.1]
    credentials: {profile: dev, role_name: web}
    instance:
      mirror: {instance_id: i-0123456789abcdef0, region: eu-west-1, refresh: 1h}
      instance_type: t3.large
  - name: wrong
    sources: [10.0.0.2]
    credentials: {profile: missing, role_name: web}
    instance:
      mirror: {instance_id: i-0fedcba9876543210, region: eu-west-1, refresh: 1h}
  - name: static
    sources: [10.0.0.3]
`), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		api := &stubEC2{}
		ec2s := func(_ context.Context, profile, region string) (*awssource.EC2, error) {
			return &awssource.EC2{Region: region, Instances: api, Networks: api, KeysZones: api}, nil
		}
		profiles := func(_ context.Context, profile string) (*awssource.Profile, error) {
			if profile != "dev" {
				return nil, errors.New("no such profile")
			}
			return &awssource.Profile{Name: profile, Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "ASIASTATUSTEST0001", SecretAccessKey: "secret", SessionToken: "token",
					CanExpire: true, Expires: time.Now().Add(time.Hour), AccountID: "111122223333"}, nil
			})}, nil
		}
		m := newMirrors(t.Context(), ec2s, zerolog.Nop(), cache.Options{})
		m.Load(cfg, func(string, *tenants.Tenant) bool { return true })
		creds := newCredentialCache(t.Context(), profiles, nil, zerolog.Nop(), handlers.NewMetrics(), cache.Options{})
		creds.Load(cfg)
		synctest.Wait()
		states := tenantStates{creds: creds, mirror: m.State}
		good, wrong, static := states.TenantState(cfg.Tenants[0]), states.TenantState(cfg.Tenants[1]), states.TenantState(cfg.Tenants[2])

		if st := good.Mirror; st == nil || !st.Mirrored || st.Instance != "i-0123456789abcdef0" || st.Refreshed.IsZero() || st.LastError != "" {
			t.Errorf("good mirror state %+v", st)
		}
		if st := wrong.Mirror; st == nil || st.Mirrored ||
			!strings.HasPrefix(st.LastError, "InstanceNotFound: instance i-0fedcba9876543210 does not exist in eu-west-1") {
			t.Errorf("wrong mirror state %+v", st)
		}
		if st := good.Credentials; st == nil || !st.Valid || st.KeyID != "**************0001" || st.Fetches != 1 || st.LastError != "" {
			t.Errorf("good credential state %+v", st)
		}
		if st := wrong.Credentials; st == nil || st.Valid || !strings.HasPrefix(st.LastError, `ProfileNotFound: AWS profile "missing" cannot be loaded`) ||
			strings.Contains(st.LastError, "no such profile") {
			t.Errorf("wrong credential state %+v: want the summary, never the cause", st)
		}
		if static.Mirror != nil || static.Credentials != nil {
			t.Errorf("a static tenant without a role has states %+v", static)
		}
		if c, err := creds.Credentials(context.Background(), cfg.Tenants[2]); err == nil || c != nil {
			t.Errorf("a tenant without a role got credentials: %v", err)
		}
	})
}
