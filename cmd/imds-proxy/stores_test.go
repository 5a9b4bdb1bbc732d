package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/cache"
	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// stubEC2 knows one instance; any other id is InvalidInstanceID.NotFound.
type stubEC2 struct {
	mu    sync.Mutex
	calls int
}

func (s *stubEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
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

// published records what the mirrors publish, by tenant.
type published struct {
	mu sync.Mutex
	by map[string][]*tenants.Tenant
}

func (p *published) publish(name string, t *tenants.Tenant) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.by[name] = append(p.by[name], t)
	return true
}

func (p *published) last(name string) (*tenants.Tenant, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.by[name]); n > 0 {
		return p.by[name][n-1], n
	}
	return nil, 0
}

func TestMirrorsPublishAndReadiness(t *testing.T) {
	cfg, err := tenants.Parse("c.yaml", []byte(`tenants:
  - name: good
    sources: [10.0.0.1]
    instance:
      mirror: {instance_id: i-0123456789abcdef0, region: eu-west-1, refresh: 1h}
      instance_type: t3.large
  - name: wrong
    sources: [10.0.0.2]
    instance:
      mirror: {instance_id: i-0fedcba9876543210, region: eu-west-1, refresh: 1h}
  - name: static
    sources: [10.0.0.3]
`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api := &stubEC2{}
	load := func(_ context.Context, profile, region string) (*awssource.EC2, error) {
		return &awssource.EC2{Region: region, Instances: api, Networks: api, KeysZones: api}, nil
	}
	var logs strings.Builder
	var logMu sync.Mutex
	log := zerolog.New(zerolog.SyncWriter(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	})))
	m := newMirrors(ctx, load, log, cache.Options{})
	pub := &published{by: map[string][]*tenants.Tenant{}}
	m.Load(cfg, pub.publish)

	deadline := time.Now().Add(5 * time.Second)
	for {
		good, wrong := m.State(cfg.Tenants[0]), m.State(cfg.Tenants[1])
		if good.Mirrored && wrong.LastError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no outcome within 5s: good %+v, wrong %+v", good, wrong)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m.State(cfg.Tenants[2]) != nil {
		t.Error("a static tenant has a mirror state")
	}
	got, _ := pub.last("good")
	if got == nil || got.Instance.ID != "i-0123456789abcdef0" || got.Instance.Type != "t3.large" || got.Instance.AvailabilityZoneID != "euw1-az2" {
		t.Fatalf("published %+v", got)
	}
	if _, n := pub.last("wrong"); n != 0 {
		t.Errorf("a failed mirror published %d times", n)
	}
	st := m.State(cfg.Tenants[0])
	if st.Instance != "i-0123456789abcdef0" || st.Refreshed.IsZero() || st.LastError != "" {
		t.Errorf("good state %+v", st)
	}
	// What /readyz reports for a tenant comes from State (handlers.problems).
	if wrong := m.State(cfg.Tenants[1]); wrong == nil || wrong.Mirrored ||
		!strings.Contains(wrong.LastError, "InstanceNotFound: instance i-0fedcba9876543210 does not exist in eu-west-1") {
		t.Errorf("wrong state = %+v", wrong)
	}
	logMu.Lock()
	if !strings.Contains(logs.String(), `"tenant":"wrong"`) || !strings.Contains(logs.String(), "the tenant is not ready") {
		t.Errorf("log does not explain the wrong mirror:\n%s", logs.String())
	}
	logMu.Unlock()

	// A reload that changes only the static values republishes the copy
	// at once, without asking EC2 again.
	api.mu.Lock()
	calls := api.calls
	api.mu.Unlock()
	cfg2, err := tenants.Parse("c.yaml", []byte(`tenants:
  - name: good
    sources: [10.0.0.1]
    instance:
      mirror: {instance_id: i-0123456789abcdef0, region: eu-west-1, refresh: 1h}
      instance_type: m5.xlarge
`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m.Load(cfg2, pub.publish)
	if got, _ := pub.last("good"); got.Instance.Type != "m5.xlarge" || got.Instance.ID != "i-0123456789abcdef0" {
		t.Errorf("after the reload published %+v", got.Instance)
	}
	api.mu.Lock()
	if api.calls != calls {
		t.Errorf("the reload called DescribeInstances again (%d calls, was %d)", api.calls, calls)
	}
	api.mu.Unlock()
	if m.State(cfg.Tenants[1]) != nil {
		t.Error("the removed tenant still has a mirror")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
