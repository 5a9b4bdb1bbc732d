package awssource

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// NetworkDescriber is the part of the EC2 API that gives a mirror its
// subnets' and VPCs' CIDR blocks, which DescribeInstances lacks. The method
// signatures are the SDK's, so *ec2.Client satisfies it.
type NetworkDescriber interface {
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
}

// KeyZoneDescriber gives a mirror the key pair's public key and the
// availability zone's id.
type KeyZoneDescriber interface {
	DescribeKeyPairs(context.Context, *ec2.DescribeKeyPairsInput, ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error)
	DescribeAvailabilityZones(context.Context, *ec2.DescribeAvailabilityZonesInput, ...func(*ec2.Options)) (*ec2.DescribeAvailabilityZonesOutput, error)
}

// AttributeDescriber gives a mirror the instance's user data, which
// DescribeInstances does not return.
type AttributeDescriber interface {
	DescribeInstanceAttribute(context.Context, *ec2.DescribeInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
}

// StatusDescriber gives a mirror the instance's scheduled events, which
// DescribeInstances does not return.
type StatusDescriber interface {
	DescribeInstanceStatus(context.Context, *ec2.DescribeInstanceStatusInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
}

// EC2 is the EC2 API of one profile in one region, as a mirror uses it.
type EC2 struct {
	Region    string // the region the clients call, as the SDK resolved it
	Instances ec2.DescribeInstancesAPIClient
	Networks  NetworkDescriber
	KeysZones KeyZoneDescriber
	// Attributes fetches user data. If nil, the copy has none.
	Attributes AttributeDescriber
	// Status fetches the scheduled events. If nil, the copy has none.
	Status StatusDescriber
}

// EC2Loader returns the EC2 API for a profile and region ("": the
// profile's). It is called at every refresh, so that an edited profile or a
// new `aws sso login` applies without a restart.
type EC2Loader func(ctx context.Context, profile, region string) (*EC2, error)

// networkStaleAfter is how long subnets' and VPCs' CIDR blocks are reused
// before they are described again: they change (a block associated), but
// rarely. Key pairs and zone ids never change and are described once.
const networkStaleAfter = time.Hour

// Mirror copies one live instance. Each Retrieve makes one
// DescribeInstances call, one DescribeInstanceAttribute for the user data
// (which can change while the instance is stopped) unless the tenant has
// its own, one DescribeInstanceStatus for the scheduled events, and, only
// for what it has not seen yet (or for networks, not within
// networkStaleAfter), one batched call each of DescribeSubnets,
// DescribeVpcs, DescribeKeyPairs and DescribeAvailabilityZones. Retrieve
// is not meant to be called concurrently: a cache entry's refresher calls
// it.
type Mirror struct {
	Spec *tenants.MirrorSpec
	Load EC2Loader
	Now  func() time.Time // if nil, time.Now

	mu         sync.Mutex
	subnets    map[string]subnetBlocks
	vpcs       map[string]vpcBlocks
	networksAt time.Time
	publicKeys map[string]string       // key name -> OpenSSH public key
	zoneIDs    map[string]string       // zone name -> zone id
	userData   *[]byte                 // the last user data fetched; nil: never fetched
	events     []tenants.InstanceEvent // the last scheduled events fetched,
	eventsOf   string                  // for this instance (filters may match another)
}

type subnetBlocks struct {
	ipv4 netip.Prefix
	ipv6 []netip.Prefix
}

type vpcBlocks struct {
	ipv4 []netip.Prefix // the primary block first
	ipv6 []netip.Prefix
}

// Retrieve copies the instance (tenants.InstanceSource). Failures are
// *tenants.UpstreamError.
func (s *Mirror) Retrieve(ctx context.Context) (*tenants.Mirrored, error) {
	api, err := s.Load(ctx, s.Spec.Profile, s.Spec.Region)
	if err != nil {
		return nil, &tenants.UpstreamError{Code: "ProfileNotFound", Err: err,
			Message: fmt.Sprintf("AWS profile %q cannot be loaded to mirror %s; check ~/.aws/config and instance.mirror.profile", s.profile(), s.Spec.Target())}
	}
	inst, res, err := s.describe(ctx, api)
	if err != nil {
		return nil, err
	}
	m := mapInstance(inst, res, api.Region)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addNetworks(ctx, api, m)
	s.addPublicKey(ctx, api, m)
	s.addZoneID(ctx, api, m)
	s.addUserData(ctx, api, m)
	s.addEvents(ctx, api, m)
	return m, nil
}

func (s *Mirror) profile() string { return profileName(s.Spec.Profile) }

// describe finds the one instance of the spec.
func (s *Mirror) describe(ctx context.Context, api *EC2) (ec2types.Instance, ec2types.Reservation, error) {
	in := &ec2.DescribeInstancesInput{}
	if s.Spec.InstanceID != "" {
		in.InstanceIds = []string{s.Spec.InstanceID}
	}
	for _, f := range s.Spec.Filters {
		in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String(f.Name), Values: f.Values})
	}
	type match struct {
		inst ec2types.Instance
		res  ec2types.Reservation
	}
	var found []match
	pages := ec2.NewDescribeInstancesPaginator(api.Instances, in)
	for pages.HasMorePages() && len(found) <= 10 {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return ec2types.Instance{}, ec2types.Reservation{}, s.explain("DescribeInstances", api.Region, err)
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				found = append(found, match{i, r})
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0].inst, found[0].res, nil
	case 0:
		return ec2types.Instance{}, ec2types.Reservation{}, &tenants.UpstreamError{Code: "InstanceNotFound",
			Message: fmt.Sprintf("no instance is %s in %s (as profile %q sees it): check instance.mirror and its region", s.target(), api.Region, s.profile())}
	}
	ids := make([]string, len(found))
	for i, f := range found {
		ids[i] = aws.ToString(f.inst.InstanceId) + " (" + stateOf(f.inst) + ")"
	}
	return ec2types.Instance{}, ec2types.Reservation{}, &tenants.UpstreamError{Code: "SeveralInstances",
		Message: fmt.Sprintf("%d instances match instance.mirror.filters in %s: %s; add filters (such as instance-state-name=running or a tag) so that exactly one matches",
			len(found), api.Region, strings.Join(ids, ", "))}
}

func (s *Mirror) target() string {
	if s.Spec.InstanceID != "" {
		return "instance " + s.Spec.InstanceID
	}
	return strings.TrimPrefix(s.Spec.Target(), "the instance ")
}

// explain turns an EC2 failure into what the operator must do about it.
func (s *Mirror) explain(action, region string, err error) error {
	var api smithy.APIError
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) && resp.HTTPStatusCode() >= 500 {
		return &tenants.UpstreamError{Code: "EC2Unavailable", Err: err,
			Message: fmt.Sprintf("ec2:%s in %s answered %d: EC2 (or the endpoint AWS_ENDPOINT_URL_EC2 names) is failing; retrying", action, region, resp.HTTPStatusCode())}
	}
	if !errors.As(err, &api) {
		if noCredentials(err) {
			return &tenants.UpstreamError{Code: "NoCredentials", Err: err,
				Message: fmt.Sprintf("profile %q has no credentials to call ec2:%s: set instance.mirror.profile to a profile that may, or run `aws configure sso`", s.profile(), action)}
		}
		return &tenants.UpstreamError{Code: "EC2Unavailable", Err: err,
			Message: fmt.Sprintf("ec2:%s in %s for profile %q failed; check the network and the EC2 endpoint (AWS_ENDPOINT_URL_EC2)", action, region, s.profile())}
	}
	code := api.ErrorCode()
	switch {
	case code == "UnauthorizedOperation" || code == "AccessDenied" || code == "AccessDeniedException" || code == "UnauthorizedAccess":
		return &tenants.UpstreamError{Code: code, Err: err,
			Message: fmt.Sprintf("profile %q may not call ec2:%s in %s: allow it in the profile's policy (mirroring needs ec2:DescribeInstances, ec2:DescribeSubnets, ec2:DescribeVpcs, ec2:DescribeKeyPairs, ec2:DescribeAvailabilityZones, ec2:DescribeInstanceAttribute and ec2:DescribeInstanceStatus)", s.profile(), action, region)}
	case strings.HasPrefix(code, "InvalidInstanceID"):
		return &tenants.UpstreamError{Code: "InstanceNotFound", Err: err,
			Message: fmt.Sprintf("instance %s does not exist in %s (as profile %q sees it): check instance.mirror.instance_id and instance.mirror.region", s.Spec.InstanceID, region, s.profile())}
	case code == "AuthFailure" || code == "InvalidClientTokenId" || code == "ExpiredToken" || code == "RequestExpired" ||
		code == "SignatureDoesNotMatch" || code == "UnrecognizedClientException":
		return &tenants.UpstreamError{Code: "InvalidCredentials", Err: err,
			Message: fmt.Sprintf("EC2 rejects the credentials of profile %q (%s); renew them (for SSO: aws sso login --profile %s)", s.profile(), code, s.profile())}
	case code == "InvalidParameterValue" || code == "InvalidFilter":
		return &tenants.UpstreamError{Code: code, Err: err,
			Message: fmt.Sprintf("EC2 rejects the mirror's request (%s): check instance.mirror.filters: %s", code, awsSaid(api))}
	}
	return &tenants.UpstreamError{Code: code, Err: err,
		Message: fmt.Sprintf("EC2 refused ec2:%s in %s for profile %q: %s", action, region, s.profile(), awsSaid(api))}
}

func (s *Mirror) warn(m *tenants.Mirrored, action string, region string, err error, unknown string) {
	m.Warnings = append(m.Warnings, fmt.Sprintf("%s unknown (404): %v", unknown, s.explain(action, region, err)))
}

// addNetworks fills the interfaces' subnet and VPC CIDR blocks, describing
// the subnets and VPCs in one call each when they are new or stale.
func (s *Mirror) addNetworks(ctx context.Context, api *EC2, m *tenants.Mirrored) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	var subnetIDs, vpcIDs []string
	for _, ifc := range m.Instance.Interfaces {
		if ifc.SubnetID != "" && !slices.Contains(subnetIDs, ifc.SubnetID) {
			subnetIDs = append(subnetIDs, ifc.SubnetID)
		}
		if ifc.VPCID != "" && !slices.Contains(vpcIDs, ifc.VPCID) {
			vpcIDs = append(vpcIDs, ifc.VPCID)
		}
	}
	stale := now().Sub(s.networksAt) > networkStaleAfter
	if missing(s.subnets, subnetIDs) || (stale && len(subnetIDs) > 0) {
		if out, err := api.Networks.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: subnetIDs}); err != nil {
			s.warn(m, "DescribeSubnets", api.Region, err, "subnet CIDR blocks")
		} else {
			s.subnets = subnetsOf(out.Subnets)
			s.networksAt = now()
		}
	}
	if missing(s.vpcs, vpcIDs) || (stale && len(vpcIDs) > 0) {
		if out, err := api.Networks.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: vpcIDs}); err != nil {
			s.warn(m, "DescribeVpcs", api.Region, err, "VPC CIDR blocks")
		} else {
			s.vpcs = vpcsOf(out.Vpcs)
		}
	}
	for i := range m.Instance.Interfaces {
		ifc := &m.Instance.Interfaces[i]
		if sb, ok := s.subnets[ifc.SubnetID]; ok {
			ifc.SubnetIPv4CIDR, ifc.SubnetIPv6CIDRs = sb.ipv4, sb.ipv6
		}
		if v, ok := s.vpcs[ifc.VPCID]; ok {
			ifc.VPCIPv4CIDRs, ifc.VPCIPv6CIDRs = v.ipv4, v.ipv6
		}
	}
}

func missing[V any](have map[string]V, ids []string) bool {
	for _, id := range ids {
		if _, ok := have[id]; !ok {
			return true
		}
	}
	return false
}

func subnetsOf(subnets []ec2types.Subnet) map[string]subnetBlocks {
	out := make(map[string]subnetBlocks, len(subnets))
	for _, sn := range subnets {
		var b subnetBlocks
		b.ipv4, _ = netip.ParsePrefix(aws.ToString(sn.CidrBlock))
		for _, a := range sn.Ipv6CidrBlockAssociationSet {
			if a.Ipv6CidrBlockState != nil && a.Ipv6CidrBlockState.State != ec2types.SubnetCidrBlockStateCodeAssociated {
				continue
			}
			if p, err := netip.ParsePrefix(aws.ToString(a.Ipv6CidrBlock)); err == nil {
				b.ipv6 = append(b.ipv6, p)
			}
		}
		out[aws.ToString(sn.SubnetId)] = b
	}
	return out
}

func vpcsOf(vpcs []ec2types.Vpc) map[string]vpcBlocks {
	out := make(map[string]vpcBlocks, len(vpcs))
	for _, v := range vpcs {
		var b vpcBlocks
		primary := aws.ToString(v.CidrBlock)
		if p, err := netip.ParsePrefix(primary); err == nil {
			b.ipv4 = append(b.ipv4, p)
		}
		for _, a := range v.CidrBlockAssociationSet {
			if a.CidrBlockState != nil && a.CidrBlockState.State != ec2types.VpcCidrBlockStateCodeAssociated {
				continue
			}
			if p, err := netip.ParsePrefix(aws.ToString(a.CidrBlock)); err == nil && aws.ToString(a.CidrBlock) != primary {
				b.ipv4 = append(b.ipv4, p)
			}
		}
		for _, a := range v.Ipv6CidrBlockAssociationSet {
			if a.Ipv6CidrBlockState != nil && a.Ipv6CidrBlockState.State != ec2types.VpcCidrBlockStateCodeAssociated {
				continue
			}
			if p, err := netip.ParsePrefix(aws.ToString(a.Ipv6CidrBlock)); err == nil {
				b.ipv6 = append(b.ipv6, p)
			}
		}
		out[aws.ToString(v.VpcId)] = b
	}
	return out
}

// addPublicKey fills the key pair's public key, which only DescribeKeyPairs
// with IncludePublicKey gives (and only when permitted).
func (s *Mirror) addPublicKey(ctx context.Context, api *EC2, m *tenants.Mirrored) {
	name := m.Instance.KeyName()
	if name == "" {
		return
	}
	if k, ok := s.publicKeys[name]; ok {
		m.Instance.Writable().PublicKey = k
		return
	}
	out, err := api.KeysZones.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{name}, IncludePublicKey: aws.Bool(true)})
	if err != nil {
		s.warn(m, "DescribeKeyPairs", api.Region, err, "public-keys/0/openssh-key")
		return
	}
	for _, kp := range out.KeyPairs {
		if aws.ToString(kp.KeyName) == name && aws.ToString(kp.PublicKey) != "" {
			if s.publicKeys == nil {
				s.publicKeys = map[string]string{}
			}
			s.publicKeys[name] = strings.TrimSpace(aws.ToString(kp.PublicKey))
			m.Instance.Writable().PublicKey = s.publicKeys[name]
		}
	}
}

// addZoneID fills the availability zone id when the instance's placement
// lacks it.
func (s *Mirror) addZoneID(ctx context.Context, api *EC2, m *tenants.Mirrored) {
	in := &m.Instance
	if in.AvailabilityZone == "" || in.AvailabilityZoneID != "" {
		return
	}
	if id, ok := s.zoneIDs[in.AvailabilityZone]; ok {
		in.AvailabilityZoneID = id
		return
	}
	out, err := api.KeysZones.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{in.AvailabilityZone}})
	if err != nil {
		s.warn(m, "DescribeAvailabilityZones", api.Region, err, "placement/availability-zone-id")
		return
	}
	for _, z := range out.AvailabilityZones {
		if aws.ToString(z.ZoneName) == in.AvailabilityZone && aws.ToString(z.ZoneId) != "" {
			if s.zoneIDs == nil {
				s.zoneIDs = map[string]string{}
			}
			s.zoneIDs[in.AvailabilityZone] = aws.ToString(z.ZoneId)
			in.AvailabilityZoneID = s.zoneIDs[in.AvailabilityZone]
		}
	}
}

// addUserData fills the instance's user data, which only
// DescribeInstanceAttribute gives, base64-encoded. When the call fails, the
// last user data fetched stays (a refresh that fails must not make
// user-data flap to 404); never fetched, it answers 404.
func (s *Mirror) addUserData(ctx context.Context, api *EC2, m *tenants.Mirrored) {
	if s.Spec.OwnUserData || api.Attributes == nil || m.Instance.ID == "" {
		return
	}
	out, err := api.Attributes.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(m.Instance.ID), Attribute: ec2types.InstanceAttributeNameUserData})
	var data []byte
	switch {
	case err != nil:
		s.warn(m, "DescribeInstanceAttribute", api.Region, err, "user-data")
		if s.userData != nil {
			m.UserData = *s.userData
		}
		return
	case out.UserData != nil && aws.ToString(out.UserData.Value) != "":
		data, err = base64.StdEncoding.DecodeString(aws.ToString(out.UserData.Value))
		if err != nil {
			m.Warnings = append(m.Warnings, fmt.Sprintf("user-data unknown (404): ec2:DescribeInstanceAttribute in %s answered user data that is not base64: %v", api.Region, err))
			return
		}
	}
	s.userData = &data
	m.UserData = data
}

// addEvents fills the instance's scheduled events, which only
// DescribeInstanceStatus gives (IncludeAllInstances: a stopped instance has
// events too). When the call fails, the last events fetched stay, as user
// data does: a refresh that fails must not make a notice vanish.
func (s *Mirror) addEvents(ctx context.Context, api *EC2, m *tenants.Mirrored) {
	if api.Status == nil || m.Instance.ID == "" {
		return
	}
	out, err := api.Status.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{
		InstanceIds: []string{m.Instance.ID}, IncludeAllInstances: aws.Bool(true)})
	if err != nil {
		m.Warnings = append(m.Warnings, fmt.Sprintf("scheduled events unknown (events/maintenance/ serves the last known, else []): %v",
			s.explain("DescribeInstanceStatus", api.Region, err)))
		if s.eventsOf == m.Instance.ID {
			m.Events = s.events
		}
		return
	}
	var events []tenants.InstanceEvent
	for _, st := range out.InstanceStatuses {
		if aws.ToString(st.InstanceId) != m.Instance.ID {
			continue
		}
		for _, e := range st.Events {
			events = append(events, instanceEvent(e))
		}
	}
	slices.SortStableFunc(events, func(a, b tenants.InstanceEvent) int { return a.NotBefore.Compare(b.NotBefore) })
	s.events, s.eventsOf = events, m.Instance.ID
	m.Events = events
}

// instanceEvent is an InstanceStatusEvent as IMDS shows it: EC2 marks a
// past event only by its description's prefix, which becomes its state.
func instanceEvent(e ec2types.InstanceStatusEvent) tenants.InstanceEvent {
	out := tenants.InstanceEvent{
		ID:                aws.ToString(e.InstanceEventId),
		Code:              string(e.Code),
		NotBefore:         aws.ToTime(e.NotBefore).UTC(),
		NotAfter:          aws.ToTime(e.NotAfter).UTC(),
		NotBeforeDeadline: aws.ToTime(e.NotBeforeDeadline).UTC(),
		State:             tenants.EventActive,
	}
	d := aws.ToString(e.Description)
	if rest, ok := strings.CutPrefix(d, "[Completed]"); ok {
		d, out.State = rest, tenants.EventCompleted
	} else if rest, ok := strings.CutPrefix(d, "[Canceled]"); ok {
		d, out.State = rest, tenants.EventCanceled
	}
	out.Description = strings.TrimSpace(d)
	return out
}

func stateOf(i ec2types.Instance) string {
	if i.State != nil {
		return string(i.State.Name)
	}
	return ""
}

// mapInstance turns DescribeInstances' view of an instance into the
// catalogue's; region is the API's, used when the placement has no zone.
func mapInstance(i ec2types.Instance, r ec2types.Reservation, region string) *tenants.Mirrored {
	x := &tenants.InstanceExtras{
		KernelID:     aws.ToString(i.KernelId),
		RamdiskID:    aws.ToString(i.RamdiskId),
		LaunchIndex:  int(aws.ToInt32(i.AmiLaunchIndex)),
		Architecture: string(i.Architecture),
		LifeCycle:    cmp.Or(string(i.InstanceLifecycle), "on-demand"),
		Monitoring:   i.Monitoring != nil && i.Monitoring.State == ec2types.MonitoringStateEnabled,
		KeyName:      aws.ToString(i.KeyName),
	}
	in := tenants.Instance{
		ID:             aws.ToString(i.InstanceId),
		Type:           string(i.InstanceType),
		AMIID:          aws.ToString(i.ImageId),
		ReservationID:  aws.ToString(r.ReservationId),
		AccountID:      aws.ToString(r.OwnerId),
		PendingTime:    aws.ToTime(i.LaunchTime).UTC(),
		Region:         region,
		LocalHostname:  aws.ToString(i.PrivateDnsName),
		PublicHostname: aws.ToString(i.PublicDnsName),
		Extras:         x, // never empty: the life cycle is always set
	}
	if p := i.Placement; p != nil {
		in.AvailabilityZone = aws.ToString(p.AvailabilityZone)
		in.AvailabilityZoneID = aws.ToString(p.AvailabilityZoneId)
		x.PlacementGroup = aws.ToString(p.GroupName)
		x.PartitionNumber = int(aws.ToInt32(p.PartitionNumber))
		x.HostID = aws.ToString(p.HostId)
		if zr := tenants.RegionOfZone(in.AvailabilityZone); zr != "" {
			in.Region = zr
		}
	}
	for _, pc := range i.ProductCodes {
		// IMDS lists marketplace codes; devpay is retired.
		if pc.ProductCodeType != ec2types.ProductCodeValuesDevpay {
			x.ProductCodes = append(x.ProductCodes, aws.ToString(pc.ProductCodeId))
		}
	}
	for _, g := range i.SecurityGroups {
		in.SecurityGroups = append(in.SecurityGroups, aws.ToString(g.GroupName))
	}
	in.BlockDevices = blockDevices(i)
	if len(i.Tags) > 0 {
		in.Tags = make(map[string]string, len(i.Tags))
		for _, t := range i.Tags {
			in.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	nis := slices.Clone(i.NetworkInterfaces)
	slices.SortStableFunc(nis, func(a, b ec2types.InstanceNetworkInterface) int {
		ca, da := attachment(a)
		cb, db := attachment(b)
		if ca != cb {
			return cmp.Compare(ca, cb)
		}
		return cmp.Compare(da, db)
	})
	for _, ni := range nis {
		in.Interfaces = append(in.Interfaces, mapInterface(ni))
	}
	if len(in.SecurityGroups) == 0 && len(in.Interfaces) > 0 {
		// The instance's groups are its primary interface's (EC2 lists
		// them on the instance too; some fakes do not).
		in.SecurityGroups = in.Interfaces[0].SecurityGroups
	}
	if in.LocalHostname == "" && len(in.Interfaces) > 0 {
		in.LocalHostname = in.Interfaces[0].LocalHostname
	}

	m := &tenants.Mirrored{Instance: in, IMDS: metadataOptions(i.MetadataOptions), State: stateOf(i)}
	if p := i.IamInstanceProfile; p != nil {
		m.InstanceProfileARN, m.InstanceProfileID = aws.ToString(p.Arn), aws.ToString(p.Id)
	}
	return m
}

// attachment is an interface's network card and device index.
func attachment(ni ec2types.InstanceNetworkInterface) (card, device int32) {
	if a := ni.Attachment; a != nil {
		return aws.ToInt32(a.NetworkCardIndex), aws.ToInt32(a.DeviceIndex)
	}
	return 0, 0
}

// blockDevices is IMDS's block-device-mapping: ami and root name the root
// device, ebsN the other EBS volumes in mapping order.
func blockDevices(i ec2types.Instance) map[string]string {
	root := aws.ToString(i.RootDeviceName)
	out := map[string]string{}
	if root != "" {
		out["ami"], out["root"] = root, root
	}
	n := 0
	for _, b := range i.BlockDeviceMappings {
		dev := aws.ToString(b.DeviceName)
		if dev == "" || dev == root || b.Ebs == nil {
			continue
		}
		n++
		out[fmt.Sprintf("ebs%d", n)] = dev
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func mapInterface(ni ec2types.InstanceNetworkInterface) tenants.Interface {
	card, device := attachment(ni)
	ifc := tenants.Interface{
		MAC:              strings.ToLower(aws.ToString(ni.MacAddress)),
		ID:               aws.ToString(ni.NetworkInterfaceId),
		DeviceNumber:     device,
		NetworkCardIndex: card,
		OwnerID:          aws.ToString(ni.OwnerId),
		LocalHostname:    aws.ToString(ni.PrivateDnsName),
		SubnetID:         aws.ToString(ni.SubnetId),
		VPCID:            aws.ToString(ni.VpcId),
	}
	if a := ni.Association; a != nil {
		ifc.PublicHostname = aws.ToString(a.PublicDnsName)
	}
	for _, g := range ni.Groups {
		ifc.SecurityGroups = append(ifc.SecurityGroups, aws.ToString(g.GroupName))
		ifc.SecurityGroupIDs = append(ifc.SecurityGroupIDs, aws.ToString(g.GroupId))
	}
	addrs := slices.Clone(ni.PrivateIpAddresses)
	if len(addrs) == 0 && ni.PrivateIpAddress != nil {
		addrs = []ec2types.InstancePrivateIpAddress{{PrivateIpAddress: ni.PrivateIpAddress, Primary: aws.Bool(true), Association: ni.Association}}
	}
	// The primary address first, as IMDS lists it.
	slices.SortStableFunc(addrs, func(a, b ec2types.InstancePrivateIpAddress) int {
		pa, pb := aws.ToBool(a.Primary), aws.ToBool(b.Primary)
		switch {
		case pa == pb:
			return 0
		case pa:
			return -1
		}
		return 1
	})
	for _, pa := range addrs {
		private, err := netip.ParseAddr(aws.ToString(pa.PrivateIpAddress))
		if err != nil {
			continue
		}
		ifc.LocalIPv4s = append(ifc.LocalIPv4s, private)
		if pa.Association == nil {
			continue
		}
		if public, err := netip.ParseAddr(aws.ToString(pa.Association.PublicIp)); err == nil {
			ifc.PublicIPv4s = append(ifc.PublicIPv4s, public)
			if ifc.IPv4Associations == nil {
				ifc.IPv4Associations = map[netip.Addr]netip.Addr{}
			}
			ifc.IPv4Associations[public] = private
		}
	}
	for _, a := range ni.Ipv6Addresses {
		if v6, err := netip.ParseAddr(aws.ToString(a.Ipv6Address)); err == nil {
			ifc.IPv6s = append(ifc.IPv6s, v6)
		}
	}
	return ifc
}

// metadataOptions is the tenant's IMDS behaviour from the instance's: EC2's
// defaults (enabled, tokens optional, hop limit 1, no tags) where unsaid.
func metadataOptions(mo *ec2types.InstanceMetadataOptionsResponse) tenants.IMDSOptions {
	o := tenants.IMDSOptions{Enabled: true, HopLimit: 1}
	if mo == nil {
		return o
	}
	o.Enabled = mo.HttpEndpoint != ec2types.InstanceMetadataEndpointStateDisabled
	o.TokensRequired = mo.HttpTokens == ec2types.HttpTokensStateRequired
	if h := aws.ToInt32(mo.HttpPutResponseHopLimit); h >= 1 && h <= 64 {
		o.HopLimit = int(h)
	}
	o.Tags = mo.InstanceMetadataTags == ec2types.InstanceMetadataTagsStateEnabled
	return o
}
