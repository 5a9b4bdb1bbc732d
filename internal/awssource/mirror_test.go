package awssource_test

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// fakeEC2 answers the Describe calls a mirror makes from what the test set,
// and records every call.
type fakeEC2 struct {
	reservations []ec2types.Reservation
	err          map[string]error // by action
	calls        map[string]int
	subnetIDs    [][]string
	vpcIDs       [][]string
	instanceIn   []*ec2.DescribeInstancesInput
	keysIn       []*ec2.DescribeKeyPairsInput
	attributeIn  []*ec2.DescribeInstanceAttributeInput
	userData     map[string]string // instance id -> base64, as EC2 answers it
	statuses     []ec2types.InstanceStatus
	statusIn     []*ec2.DescribeInstanceStatusInput
}

func newFakeEC2(res ...ec2types.Reservation) *fakeEC2 {
	return &fakeEC2{reservations: res, err: map[string]error{}, calls: map[string]int{}}
}

func (f *fakeEC2) call(action string) error {
	f.calls[action]++
	return f.err[action]
}

func (f *fakeEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.instanceIn = append(f.instanceIn, in)
	if err := f.call("DescribeInstances"); err != nil {
		return nil, err
	}
	return &ec2.DescribeInstancesOutput{Reservations: f.reservations}, nil
}

func (f *fakeEC2) DescribeSubnets(_ context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	f.subnetIDs = append(f.subnetIDs, in.SubnetIds)
	if err := f.call("DescribeSubnets"); err != nil {
		return nil, err
	}
	return &ec2.DescribeSubnetsOutput{Subnets: []ec2types.Subnet{
		{SubnetId: aws.String("subnet-0aaa0000000000001"), CidrBlock: aws.String("10.20.1.0/24"),
			Ipv6CidrBlockAssociationSet: []ec2types.SubnetIpv6CidrBlockAssociation{{Ipv6CidrBlock: aws.String("2600:1f18:1:100::/64"),
				Ipv6CidrBlockState: &ec2types.SubnetCidrBlockState{State: ec2types.SubnetCidrBlockStateCodeAssociated}}}},
		{SubnetId: aws.String("subnet-0bbb0000000000002"), CidrBlock: aws.String("10.20.2.0/24")},
	}}, nil
}

func (f *fakeEC2) DescribeVpcs(_ context.Context, in *ec2.DescribeVpcsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	f.vpcIDs = append(f.vpcIDs, in.VpcIds)
	if err := f.call("DescribeVpcs"); err != nil {
		return nil, err
	}
	return &ec2.DescribeVpcsOutput{Vpcs: []ec2types.Vpc{{VpcId: aws.String("vpc-0ccc0000000000001"), CidrBlock: aws.String("10.20.0.0/16"),
		CidrBlockAssociationSet: []ec2types.VpcCidrBlockAssociation{
			{CidrBlock: aws.String("10.20.0.0/16"), CidrBlockState: &ec2types.VpcCidrBlockState{State: ec2types.VpcCidrBlockStateCodeAssociated}},
			{CidrBlock: aws.String("100.64.0.0/16"), CidrBlockState: &ec2types.VpcCidrBlockState{State: ec2types.VpcCidrBlockStateCodeAssociated}},
			{CidrBlock: aws.String("192.168.0.0/16"), CidrBlockState: &ec2types.VpcCidrBlockState{State: ec2types.VpcCidrBlockStateCodeDisassociated}},
		},
		Ipv6CidrBlockAssociationSet: []ec2types.VpcIpv6CidrBlockAssociation{{Ipv6CidrBlock: aws.String("2600:1f18:1::/56")}},
	}}}, nil
}

func (f *fakeEC2) DescribeKeyPairs(_ context.Context, in *ec2.DescribeKeyPairsInput, _ ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error) {
	f.keysIn = append(f.keysIn, in)
	if err := f.call("DescribeKeyPairs"); err != nil {
		return nil, err
	}
	return &ec2.DescribeKeyPairsOutput{KeyPairs: []ec2types.KeyPairInfo{{KeyName: aws.String("deploy"), PublicKey: aws.String("ssh-ed25519 AAAAC3Nz deploy\n")}}}, nil
}

func (f *fakeEC2) DescribeInstanceAttribute(_ context.Context, in *ec2.DescribeInstanceAttributeInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error) {
	f.attributeIn = append(f.attributeIn, in)
	if err := f.call("DescribeInstanceAttribute"); err != nil {
		return nil, err
	}
	out := &ec2.DescribeInstanceAttributeOutput{InstanceId: in.InstanceId}
	if v, ok := f.userData[aws.ToString(in.InstanceId)]; ok {
		out.UserData = &ec2types.AttributeValue{Value: aws.String(v)}
	}
	return out, nil
}

func (f *fakeEC2) DescribeInstanceStatus(_ context.Context, in *ec2.DescribeInstanceStatusInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
	f.statusIn = append(f.statusIn, in)
	if err := f.call("DescribeInstanceStatus"); err != nil {
		return nil, err
	}
	return &ec2.DescribeInstanceStatusOutput{InstanceStatuses: f.statuses}, nil
}

func (f *fakeEC2) DescribeAvailabilityZones(_ context.Context, in *ec2.DescribeAvailabilityZonesInput, _ ...func(*ec2.Options)) (*ec2.DescribeAvailabilityZonesOutput, error) {
	if err := f.call("DescribeAvailabilityZones"); err != nil {
		return nil, err
	}
	return &ec2.DescribeAvailabilityZonesOutput{AvailabilityZones: []ec2types.AvailabilityZone{{ZoneName: aws.String(in.ZoneNames[0]), ZoneId: aws.String("euw1-az3")}}}, nil
}

var launched = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

// liveInstance is what DescribeInstances says of a busy instance: spot, in
// a partition placement group, two interfaces listed out of order, a
// secondary address with its own public one, IPv6, a marketplace code.
func liveInstance() ec2types.Reservation {
	assoc := func(ip, dns string) *ec2types.InstanceNetworkInterfaceAssociation {
		return &ec2types.InstanceNetworkInterfaceAssociation{PublicIp: aws.String(ip), PublicDnsName: aws.String(dns)}
	}
	web := ec2types.GroupIdentifier{GroupName: aws.String("web"), GroupId: aws.String("sg-0ddd0000000000001")}
	ssh := ec2types.GroupIdentifier{GroupName: aws.String("ssh"), GroupId: aws.String("sg-0ddd0000000000002")}
	return ec2types.Reservation{
		ReservationId: aws.String("r-0eee0000000000001"),
		OwnerId:       aws.String("111122223333"),
		Instances: []ec2types.Instance{{
			InstanceId:        aws.String("i-0123456789abcdef0"),
			InstanceType:      ec2types.InstanceTypeM7gLarge,
			ImageId:           aws.String("ami-0fff0000000000001"),
			KernelId:          aws.String("aki-12345678"),
			RamdiskId:         aws.String("ari-12345678"),
			AmiLaunchIndex:    aws.Int32(2),
			Architecture:      ec2types.ArchitectureValuesArm64,
			InstanceLifecycle: ec2types.InstanceLifecycleTypeSpot,
			LaunchTime:        aws.Time(launched),
			Monitoring:        &ec2types.Monitoring{State: ec2types.MonitoringStateEnabled},
			Placement: &ec2types.Placement{AvailabilityZone: aws.String("eu-west-1b"), GroupName: aws.String("spread-web"),
				PartitionNumber: aws.Int32(3), HostId: aws.String("h-0123456789abcdef0")},
			PrivateDnsName: aws.String("ip-10-20-1-10.eu-west-1.compute.internal"),
			PublicDnsName:  aws.String("ec2-54-1-2-3.eu-west-1.compute.amazonaws.com"),
			KeyName:        aws.String("deploy"),
			ProductCodes: []ec2types.ProductCode{{ProductCodeId: aws.String("abcdefghijklmnopqrstuvwxy"), ProductCodeType: ec2types.ProductCodeValuesMarketplace},
				{ProductCodeId: aws.String("devpay0000"), ProductCodeType: ec2types.ProductCodeValuesDevpay}},
			SecurityGroups: []ec2types.GroupIdentifier{web, ssh},
			RootDeviceName: aws.String("/dev/xvda"),
			BlockDeviceMappings: []ec2types.InstanceBlockDeviceMapping{
				{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsInstanceBlockDevice{}},
				{DeviceName: aws.String("/dev/sdf"), Ebs: &ec2types.EbsInstanceBlockDevice{}},
			},
			Tags:               []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("web-1")}, {Key: aws.String("team"), Value: aws.String("core")}},
			IamInstanceProfile: &ec2types.IamInstanceProfile{Arn: aws.String("arn:aws:iam::111122223333:instance-profile/web"), Id: aws.String("AIPAEXAMPLEID000001")},
			State:              &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning},
			MetadataOptions: &ec2types.InstanceMetadataOptionsResponse{HttpTokens: ec2types.HttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(3),
				HttpEndpoint: ec2types.InstanceMetadataEndpointStateEnabled, InstanceMetadataTags: ec2types.InstanceMetadataTagsStateEnabled},
			NetworkInterfaces: []ec2types.InstanceNetworkInterface{
				{
					Attachment:         &ec2types.InstanceNetworkInterfaceAttachment{DeviceIndex: aws.Int32(1), NetworkCardIndex: aws.Int32(0)},
					NetworkInterfaceId: aws.String("eni-0bbb0000000000002"), MacAddress: aws.String("0A:00:00:00:00:02"),
					OwnerId: aws.String("111122223333"), SubnetId: aws.String("subnet-0bbb0000000000002"), VpcId: aws.String("vpc-0ccc0000000000001"),
					PrivateDnsName: aws.String("ip-10-20-2-20.eu-west-1.compute.internal"), Groups: []ec2types.GroupIdentifier{ssh},
					PrivateIpAddresses: []ec2types.InstancePrivateIpAddress{{PrivateIpAddress: aws.String("10.20.2.20"), Primary: aws.Bool(true)}},
				},
				{
					Attachment:         &ec2types.InstanceNetworkInterfaceAttachment{DeviceIndex: aws.Int32(0), NetworkCardIndex: aws.Int32(0)},
					NetworkInterfaceId: aws.String("eni-0aaa0000000000001"), MacAddress: aws.String("0a:00:00:00:00:01"),
					OwnerId: aws.String("111122223333"), SubnetId: aws.String("subnet-0aaa0000000000001"), VpcId: aws.String("vpc-0ccc0000000000001"),
					PrivateDnsName: aws.String("ip-10-20-1-10.eu-west-1.compute.internal"), Groups: []ec2types.GroupIdentifier{web, ssh},
					Association: assoc("54.1.2.3", "ec2-54-1-2-3.eu-west-1.compute.amazonaws.com"),
					PrivateIpAddresses: []ec2types.InstancePrivateIpAddress{
						{PrivateIpAddress: aws.String("10.20.1.11"), Association: assoc("54.1.2.4", "")},
						{PrivateIpAddress: aws.String("10.20.1.10"), Primary: aws.Bool(true), Association: assoc("54.1.2.3", "ec2-54-1-2-3.eu-west-1.compute.amazonaws.com")},
					},
					Ipv6Addresses: []ec2types.InstanceIpv6Address{{Ipv6Address: aws.String("2600:1f18:1:100::10")}},
				},
			},
		}},
	}
}

func mirrorOf(f *fakeEC2, spec *tenants.MirrorSpec) *awssource.Mirror {
	return &awssource.Mirror{Spec: spec, Load: func(_ context.Context, profile, region string) (*awssource.EC2, error) {
		return &awssource.EC2{Region: cmp.Or(region, "us-east-1"), Instances: f, Networks: f, KeysZones: f, Attributes: f, Status: f}, nil
	}}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestMirrorMapsEverything(t *testing.T) {
	f := newFakeEC2(liveInstance())
	src := mirrorOf(f, &tenants.MirrorSpec{InstanceID: "i-0123456789abcdef0", Region: "eu-west-1", Profile: "prod-ro", Refresh: time.Minute})
	m, err := src.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := tenants.Instance{
		ID: "i-0123456789abcdef0", Type: "m7g.large", AMIID: "ami-0fff0000000000001",
		ReservationID: "r-0eee0000000000001", AccountID: "111122223333",
		PendingTime: launched, SecurityGroups: []string{"web", "ssh"},
		Region: "eu-west-1", AvailabilityZone: "eu-west-1b", AvailabilityZoneID: "euw1-az3",
		LocalHostname:  "ip-10-20-1-10.eu-west-1.compute.internal",
		PublicHostname: "ec2-54-1-2-3.eu-west-1.compute.amazonaws.com",
		Extras: &tenants.InstanceExtras{
			KernelID: "aki-12345678", RamdiskID: "ari-12345678", LaunchIndex: 2, Architecture: "arm64", LifeCycle: "spot",
			ProductCodes: []string{"abcdefghijklmnopqrstuvwxy"}, Monitoring: true,
			PlacementGroup: "spread-web", PartitionNumber: 3, HostID: "h-0123456789abcdef0",
			KeyName: "deploy", PublicKey: "ssh-ed25519 AAAAC3Nz deploy",
		},
		BlockDevices: map[string]string{"ami": "/dev/xvda", "root": "/dev/xvda", "ebs1": "/dev/sdf"},
		Tags:         map[string]string{"Name": "web-1", "team": "core"},
		Interfaces: []tenants.Interface{
			{
				MAC: "0a:00:00:00:00:01", ID: "eni-0aaa0000000000001", DeviceNumber: 0, OwnerID: "111122223333",
				LocalHostname: "ip-10-20-1-10.eu-west-1.compute.internal", PublicHostname: "ec2-54-1-2-3.eu-west-1.compute.amazonaws.com",
				LocalIPv4s: addrs("10.20.1.10", "10.20.1.11"), PublicIPv4s: addrs("54.1.2.3", "54.1.2.4"), IPv6s: addrs("2600:1f18:1:100::10"),
				SecurityGroups: []string{"web", "ssh"}, SecurityGroupIDs: []string{"sg-0ddd0000000000001", "sg-0ddd0000000000002"},
				SubnetID: "subnet-0aaa0000000000001", SubnetIPv4CIDR: netip.MustParsePrefix("10.20.1.0/24"), SubnetIPv6CIDRs: prefixes("2600:1f18:1:100::/64"),
				VPCID: "vpc-0ccc0000000000001", VPCIPv4CIDRs: prefixes("10.20.0.0/16", "100.64.0.0/16"), VPCIPv6CIDRs: prefixes("2600:1f18:1::/56"),
				IPv4Associations: map[netip.Addr]netip.Addr{netip.MustParseAddr("54.1.2.3"): netip.MustParseAddr("10.20.1.10"),
					netip.MustParseAddr("54.1.2.4"): netip.MustParseAddr("10.20.1.11")},
			},
			{
				MAC: "0a:00:00:00:00:02", ID: "eni-0bbb0000000000002", DeviceNumber: 1, OwnerID: "111122223333",
				LocalHostname: "ip-10-20-2-20.eu-west-1.compute.internal", LocalIPv4s: addrs("10.20.2.20"),
				SecurityGroups: []string{"ssh"}, SecurityGroupIDs: []string{"sg-0ddd0000000000002"},
				SubnetID: "subnet-0bbb0000000000002", SubnetIPv4CIDR: netip.MustParsePrefix("10.20.2.0/24"),
				VPCID: "vpc-0ccc0000000000001", VPCIPv4CIDRs: prefixes("10.20.0.0/16", "100.64.0.0/16"), VPCIPv6CIDRs: prefixes("2600:1f18:1::/56"),
			},
		},
	}
	if !reflect.DeepEqual(m.Instance, want) {
		t.Errorf("mirrored instance:\n got %+v\nwant %+v", m.Instance, want)
	}
	if wantIMDS := (tenants.IMDSOptions{Enabled: true, TokensRequired: true, HopLimit: 3, Tags: true}); m.IMDS != wantIMDS {
		t.Errorf("IMDS options %+v, want %+v", m.IMDS, wantIMDS)
	}
	if m.InstanceProfileARN != "arn:aws:iam::111122223333:instance-profile/web" || m.InstanceProfileID != "AIPAEXAMPLEID000001" || m.State != "running" {
		t.Errorf("profile %q %q, state %q", m.InstanceProfileARN, m.InstanceProfileID, m.State)
	}
	if len(m.Warnings) > 0 {
		t.Errorf("warnings: %q", m.Warnings)
	}
	// Batched: one call for both subnets, one for the VPC, the public key
	// asked for explicitly.
	if got := f.subnetIDs; len(got) != 1 || !reflect.DeepEqual(got[0], []string{"subnet-0aaa0000000000001", "subnet-0bbb0000000000002"}) {
		t.Errorf("DescribeSubnets calls: %q, want one with both subnets", got)
	}
	if got := f.vpcIDs; len(got) != 1 || !reflect.DeepEqual(got[0], []string{"vpc-0ccc0000000000001"}) {
		t.Errorf("DescribeVpcs calls: %q, want one", got)
	}
	if len(f.keysIn) != 1 || !aws.ToBool(f.keysIn[0].IncludePublicKey) {
		t.Errorf("DescribeKeyPairs calls %d, IncludePublicKey must be set", len(f.keysIn))
	}
	if got := f.instanceIn[0].InstanceIds; !reflect.DeepEqual(got, []string{"i-0123456789abcdef0"}) {
		t.Errorf("DescribeInstances asked for %q", got)
	}

	// The next refresh describes only the instance: the rest is reused.
	m2, err := src.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m2.Instance, want) {
		t.Errorf("second copy differs:\n got %+v\nwant %+v", m2.Instance, want)
	}
	// User data is fetched at every refresh: it changes while the instance
	// is stopped.
	wantCalls := map[string]int{"DescribeInstances": 2, "DescribeSubnets": 1, "DescribeVpcs": 1, "DescribeKeyPairs": 1,
		"DescribeAvailabilityZones": 1, "DescribeInstanceAttribute": 2, "DescribeInstanceStatus": 2}
	if !reflect.DeepEqual(f.calls, wantCalls) {
		t.Errorf("calls after two refreshes %v, want %v", f.calls, wantCalls)
	}
}

func TestMirrorDefaultsOfAnInstanceThatSaysLittle(t *testing.T) {
	r := ec2types.Reservation{ReservationId: aws.String("r-0eee0000000000001"), OwnerId: aws.String("111122223333"),
		Instances: []ec2types.Instance{{InstanceId: aws.String("i-0123456789abcdef0"), InstanceType: ec2types.InstanceTypeT3Micro,
			MetadataOptions: &ec2types.InstanceMetadataOptionsResponse{HttpEndpoint: ec2types.InstanceMetadataEndpointStateDisabled}}}}
	f := newFakeEC2(r)
	m, err := mirrorOf(f, &tenants.MirrorSpec{InstanceID: "i-0123456789abcdef0", Region: "ap-south-1"}).Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if m.Instance.LifeCycle() != "on-demand" || m.Instance.Region != "ap-south-1" || m.Instance.KeyName() != "" || m.Instance.Interfaces != nil {
		t.Errorf("instance %+v", m.Instance)
	}
	if want := (tenants.IMDSOptions{Enabled: false, HopLimit: 1}); m.IMDS != want {
		t.Errorf("IMDS %+v, want %+v (HttpEndpoint=disabled, EC2's hop limit 1, no tags)", m.IMDS, want)
	}
	if f.calls["DescribeSubnets"]+f.calls["DescribeVpcs"]+f.calls["DescribeKeyPairs"]+f.calls["DescribeAvailabilityZones"] != 0 {
		t.Errorf("extra calls for values the instance does not have: %v", f.calls)
	}
}

func apiError(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg}
}

func TestMirrorErrorsSayWhatToDo(t *testing.T) {
	two := liveInstance()
	second := two.Instances[0]
	second.InstanceId = aws.String("i-0fedcba9876543210")
	second.State = &ec2types.InstanceState{Name: ec2types.InstanceStateNameStopped}
	two.Instances = append(two.Instances, second)
	byTag := &tenants.MirrorSpec{Filters: []tenants.Filter{{Name: "tag:Name", Values: []string{"web-1"}}}, Region: "eu-west-1", Profile: "prod-ro"}
	byID := &tenants.MirrorSpec{InstanceID: "i-0123456789abcdef0", Region: "eu-west-1", Profile: "prod-ro"}
	tests := []struct {
		name     string
		spec     *tenants.MirrorSpec
		fake     *fakeEC2
		loadErr  error
		code     string
		contains []string
	}{
		{"denied", byID, withErr(newFakeEC2(liveInstance()), "DescribeInstances", apiError("UnauthorizedOperation", "You are not authorized")),
			nil, "UnauthorizedOperation", []string{`profile "prod-ro"`, "ec2:DescribeInstances", "eu-west-1"}},
		{"wrong id", byID, withErr(newFakeEC2(), "DescribeInstances", apiError("InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist")),
			nil, "InstanceNotFound", []string{"i-0123456789abcdef0", "eu-west-1", "instance.mirror.instance_id"}},
		{"no match", byTag, newFakeEC2(), nil, "InstanceNotFound", []string{"tag:Name=web-1", "eu-west-1"}},
		{"several matches", byTag, newFakeEC2(two), nil, "SeveralInstances",
			[]string{"2 instances", "i-0123456789abcdef0 (running)", "i-0fedcba9876543210 (stopped)", "instance-state-name=running"}},
		{"expired credentials", byID, withErr(newFakeEC2(), "DescribeInstances", apiError("ExpiredToken", "expired")),
			nil, "InvalidCredentials", []string{"aws sso login --profile prod-ro"}},
		{"no profile", byID, newFakeEC2(), errors.New("failed to get shared config profile, prod-ro"), "ProfileNotFound", []string{`"prod-ro"`}},
		{"refusal naming the caller", byID, withErr(newFakeEC2(), "DescribeInstances", apiError("OptInRequired",
			"arn:aws:sts::444455556666:assumed-role/Admin/alice@example.com with AKIAIOSFODNN7EXAMPLE is not subscribed")),
			nil, "OptInRequired", []string{"assumed-role/***", "MPLE"}},
		{"bad filter quoting the caller", byTag, withErr(newFakeEC2(), "DescribeInstances", apiError("InvalidParameterValue",
			"User: arn:aws:iam::444455556666:user/dev sent a bad value")),
			nil, "InvalidParameterValue", []string{"user/***"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := mirrorOf(tt.fake, tt.spec)
			if tt.loadErr != nil {
				src.Load = func(context.Context, string, string) (*awssource.EC2, error) { return nil, tt.loadErr }
			}
			_, err := src.Retrieve(context.Background())
			var me *tenants.UpstreamError
			if !errors.As(err, &me) {
				t.Fatalf("error %v, want a *MirrorError", err)
			}
			if me.Code != tt.code {
				t.Errorf("code %q, want %q", me.Code, tt.code)
			}
			for _, s := range tt.contains {
				if !strings.Contains(me.Message, s) {
					t.Errorf("message %q does not say %q", me.Message, s)
				}
			}
			// The message reaches /status, /readyz and the log as it is.
			for _, leak := range []string{"user/dev", "alice@example.com", "AKIAIOSFODNN7EXAMPLE"} {
				if strings.Contains(me.Message, leak) {
					t.Errorf("message %q leaks %q", me.Message, leak)
				}
			}
		})
	}
}

func withErr(f *fakeEC2, action string, err error) *fakeEC2 {
	f.err[action] = err
	return f
}

func TestMirrorWithoutOptionalPermissions(t *testing.T) {
	f := newFakeEC2(liveInstance())
	for _, a := range []string{"DescribeSubnets", "DescribeVpcs", "DescribeKeyPairs", "DescribeAvailabilityZones", "DescribeInstanceAttribute", "DescribeInstanceStatus"} {
		f.err[a] = apiError("UnauthorizedOperation", "denied")
	}
	m, err := mirrorOf(f, &tenants.MirrorSpec{InstanceID: "i-0123456789abcdef0", Region: "eu-west-1"}).Retrieve(context.Background())
	if err != nil {
		t.Fatalf("a mirror without the optional permissions failed: %v", err)
	}
	p := m.Instance.Primary()
	if m.Instance.PublicKey() != "" || m.Instance.AvailabilityZoneID != "" || p.SubnetIPv4CIDR.IsValid() || p.VPCIPv4CIDRs != nil {
		t.Errorf("values without permission: key %q, zone id %q, subnet %v, vpc %v", m.Instance.PublicKey(), m.Instance.AvailabilityZoneID, p.SubnetIPv4CIDR, p.VPCIPv4CIDRs)
	}
	if p.ID != "eni-0aaa0000000000001" || m.Instance.ID != "i-0123456789abcdef0" {
		t.Errorf("what DescribeInstances gave is missing: %+v", m.Instance)
	}
	all := strings.Join(m.Warnings, "\n")
	if m.UserData != nil {
		t.Errorf("user data %q without permission", m.UserData)
	}
	if m.Events != nil {
		t.Errorf("events %+v without permission", m.Events)
	}
	for _, a := range []string{"ec2:DescribeSubnets", "ec2:DescribeVpcs", "ec2:DescribeKeyPairs", "ec2:DescribeAvailabilityZones", "ec2:DescribeInstanceAttribute", "ec2:DescribeInstanceStatus"} {
		if !strings.Contains(all, a) {
			t.Errorf("warnings do not name %s:\n%s", a, all)
		}
	}
}

func TestWithMirrorStaticValuesWin(t *testing.T) {
	tn := mirroredTenant(t)
	f := newFakeEC2(liveInstance())
	copied, err := mirrorOf(f, tn.Mirror).Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := copied.Instance.Interfaces[0].LocalIPv4s[0]
	served := tn.WithMirror(copied)
	in := served.Instance
	if in.Type != "t3.large" {
		t.Errorf("type %q: the tenant's instance_type must win", in.Type)
	}
	if in.ID != "i-0123456789abcdef0" || in.AMIID != "ami-0fff0000000000001" || in.AvailabilityZone != "eu-west-1b" {
		t.Errorf("mirrored values lost: %+v", in)
	}
	if want := map[string]string{"Name": "web-local", "team": "core"}; !reflect.DeepEqual(in.Tags, want) {
		t.Errorf("tags %v, want %v: merged key by key, defaults' Owner not applied", in.Tags, want)
	}
	p := in.Primary()
	if !slices.Equal(p.LocalIPv4s, addrs("10.20.1.99", "10.20.1.11")) || !slices.Equal(p.PublicIPv4s, addrs("3.3.3.3", "54.1.2.4")) {
		t.Errorf("addresses %v %v", p.LocalIPv4s, p.PublicIPv4s)
	}
	wantAssoc := map[netip.Addr]netip.Addr{netip.MustParseAddr("3.3.3.3"): netip.MustParseAddr("10.20.1.99"),
		netip.MustParseAddr("54.1.2.4"): netip.MustParseAddr("10.20.1.11")}
	if !reflect.DeepEqual(p.IPv4Associations, wantAssoc) {
		t.Errorf("associations %v, want %v", p.IPv4Associations, wantAssoc)
	}
	if !slices.Equal(in.SecurityGroups, []string{"local"}) || !slices.Equal(p.SecurityGroups, []string{"local"}) ||
		!slices.Equal(p.SecurityGroupIDs, []string{"sg-0ddd0000000000001", "sg-0ddd0000000000002"}) {
		t.Errorf("groups %v %v %v", in.SecurityGroups, p.SecurityGroups, p.SecurityGroupIDs)
	}
	if p.MAC != "0a:00:00:00:00:01" || p.SubnetID != "subnet-0aaa0000000000001" {
		t.Errorf("primary interface lost its mirrored values: %+v", p)
	}
	// IMDS: the instance's options, except the tenant's own hop_limit;
	// defaults' tokens: optional does not undo HttpTokens=required.
	if want := (tenants.IMDSOptions{Enabled: true, TokensRequired: true, HopLimit: 5, Tags: true}); served.IMDS != want {
		t.Errorf("IMDS %+v, want %+v", served.IMDS, want)
	}
	if r := served.Role; r == nil || r.Name != "web-dev" || r.InstanceProfileARN != "arn:aws:iam::111122223333:instance-profile/web" ||
		r.InstanceProfileID != "AIPAEXAMPLEID000001" || r.InstanceProfileARNIn("999999999999") != r.InstanceProfileARN {
		t.Errorf("role %+v: the tenant's name, the instance's profile, never re-homed", r)
	}
	if tn.Role.Mirrored || tn.Instance.ID != "" {
		t.Error("WithMirror changed the configured tenant")
	}
	if copied.Instance.Interfaces[0].LocalIPv4s[0] != before || copied.Instance.Tags["Name"] != "web-1" {
		t.Error("WithMirror wrote into the cached copy")
	}
}

// mirroredTenant is the tenant of tenants/testdata/mirrored.yaml, which
// has defaults that must not reach the mirror and a few static overrides.
func mirroredTenant(t *testing.T) *tenants.Tenant {
	t.Helper()
	cfg, err := tenants.Load("../../tenants/testdata/mirrored.yaml", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Tenants[0]
}

// TestMirrorUserData: the instance's user data, fetched with
// DescribeInstanceAttribute and decoded, byte for byte; kept when a later
// fetch fails; not fetched for a tenant with its own.
func TestMirrorUserData(t *testing.T) {
	const raw = "#!/bin/sh\necho \xff\x00 binary\r\n"
	f := newFakeEC2(liveInstance())
	f.userData = map[string]string{"i-0123456789abcdef0": base64.StdEncoding.EncodeToString([]byte(raw))}
	src := mirrorOf(f, &tenants.MirrorSpec{InstanceID: "i-0123456789abcdef0", Region: "eu-west-1"})
	m, err := src.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(m.UserData) != raw {
		t.Errorf("user data %q, want %q", m.UserData, raw)
	}
	if in := f.attributeIn[0]; aws.ToString(in.InstanceId) != "i-0123456789abcdef0" || in.Attribute != ec2types.InstanceAttributeNameUserData {
		t.Errorf("DescribeInstanceAttribute asked %q of %s", in.Attribute, aws.ToString(in.InstanceId))
	}

	// A failed fetch keeps the last copy, with a warning.
	f.err["DescribeInstanceAttribute"] = apiError("RequestLimitExceeded", "slow down")
	m, err = src.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(m.UserData) != raw || !strings.Contains(strings.Join(m.Warnings, "\n"), "ec2:DescribeInstanceAttribute") {
		t.Errorf("after a failed fetch: user data %q, warnings %q", m.UserData, m.Warnings)
	}

	// Removed from the instance: none.
	delete(f.err, "DescribeInstanceAttribute")
	delete(f.userData, "i-0123456789abcdef0")
	if m, _ = src.Retrieve(context.Background()); m.UserData != nil {
		t.Errorf("user data %q after it was removed", m.UserData)
	}

	// A tenant with its own user data does not fetch the instance's.
	f2 := newFakeEC2(liveInstance())
	if _, err := mirrorOf(f2, &tenants.MirrorSpec{InstanceID: "i-0123456789abcdef0", OwnUserData: true}).Retrieve(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f2.calls["DescribeInstanceAttribute"] != 0 {
		t.Errorf("user data fetched for a tenant with its own")
	}
}

// TestWithMirrorUserData: the tenant's own user data wins, an empty one
// included; otherwise the instance's is served, and defaults' never.
func TestWithMirrorUserData(t *testing.T) {
	copied := &tenants.Mirrored{Instance: tenants.Instance{ID: "i-0123456789abcdef0"}, UserData: []byte("#!/bin/sh\necho instance\n")}
	tests := []struct {
		name, config, want string
		own                bool // the mirror need not fetch the instance's
	}{
		{"the instance's", "", "#!/bin/sh\necho instance\n", false},
		{"defaults' do not reach a mirror", "defaults:\n  user_data: from-defaults\n", "#!/bin/sh\necho instance\n", false},
		{"the tenant's own", "    user_data: own\n", "own", true},
		{"the tenant's own, empty: none", "    user_data: \"\"\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := "tenants:\n  - name: web\n    sources: [10.0.0.1]\n    instance: {mirror: {instance_id: i-0123456789abcdef0, region: eu-west-1}}\n"
			if strings.HasPrefix(tt.config, "defaults") {
				config = tt.config + config
			} else {
				config += tt.config
			}
			cfg, err := tenants.Parse("c.yaml", []byte(config), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			tn := cfg.Tenants[0]
			if got := tn.WithMirror(copied).UserData(); string(got) != tt.want {
				t.Errorf("user data %q, want %q", got, tt.want)
			}
			if tn.Mirror.OwnUserData != tt.own {
				t.Errorf("OwnUserData %v, want %v", tn.Mirror.OwnUserData, tt.own)
			}
		})
	}
}
