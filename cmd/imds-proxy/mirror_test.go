//go:build e2e

package main

// End-to-end mirror tests against moto: instances launched in moto with
// tags, security groups, a key pair, an instance profile, two network
// interfaces and metadata options are mirrored by id and by tag filter, and
// every mirrored path is compared with what `aws ec2 describe-instances`
// (and the describe calls for subnets, VPCs, key pairs and zones) says.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// mirrorUserData is web-1's user data: binary, no final newline, so that
// any re-encoding or added byte shows.
const mirrorUserData = "#!/bin/sh\necho web-1 \xff\xfe\x00 caf\xe9\r\nexit 0"

const (
	mirrorRegion = "eu-west-1"
	mirrorKeyID  = "AKIAMIRRORTESTKEY001"
	mirrorSecret = "mirror-test-secret/0123456789abcdefghijkl"
)

// mirrorGate sits between the proxy and moto: open, it forwards; closed, it
// answers every call 503, as an unreachable or failing endpoint would.
type mirrorGate struct {
	url    string
	closed atomic.Bool
	calls  atomic.Int64
}

func newMirrorGate(t *testing.T, target string) *mirrorGate {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &mirrorGate{}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host // as signed
	}}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.calls.Add(1)
		if g.closed.Load() {
			http.Error(w, "moto is down", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	g.url = "http://" + l.Addr().String()
	return g
}

// mirrorWorld is what the test launched in moto.
type mirrorWorld struct {
	ec2      *ec2.Client
	web      string // i-... mirrored by id: everything set
	other    string // i-... mirrored by its tag Name=web-2
	profile  string // instance profile ARN
	keyName  string
	moto     string
	endpoint string // what the proxy is given: the gate
}

// mirrorSecurityGroup creates a group, or finds it when the SDK's retry of
// a create that moto was slow to answer finds it made already.
func mirrorSecurityGroup(ctx context.Context, c *ec2.Client, name, vpcID string) (*ec2.CreateSecurityGroupOutput, error) {
	out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(name), VpcId: &vpcID})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "InvalidGroup.Duplicate" {
		return out, err
	}
	found, derr := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("group-name"), Values: []string{name}}, {Name: aws.String("vpc-id"), Values: []string{vpcID}}}})
	if derr != nil || len(found.SecurityGroups) != 1 {
		return nil, err
	}
	return &ec2.CreateSecurityGroupOutput{GroupId: found.SecurityGroups[0].GroupId}, nil
}

func mirrorEC2(endpoint string) *ec2.Client {
	return ec2.New(ec2.Options{Region: mirrorRegion, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(mirrorKeyID, mirrorSecret, "")})
}

// mirrorIAM creates an instance profile with a signed IAM query call: the
// SDK's IAM client is not a dependency of this module.
func mirrorIAM(ctx context.Context, t *testing.T, endpoint, name string) string {
	t.Helper()
	form := url.Values{"Action": {"CreateInstanceProfile"}, "Version": {"2010-05-08"}, "InstanceProfileName": {name}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256Hex(form)
	creds := aws.Credentials{AccessKeyID: mirrorKeyID, SecretAccessKey: mirrorSecret}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, sum, "iam", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`<Arn>([^<]+)</Arn>`).FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("CreateInstanceProfile: %s %s", resp.Status, body)
	}
	return string(m[1])
}

func mirrorLaunch(t *testing.T, motoURL, endpoint string) *mirrorWorld {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mirrorEC2(motoURL)
	w := &mirrorWorld{ec2: c, keyName: "deploy", moto: motoURL, endpoint: endpoint}
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16")})
	must(err, "CreateVpc")
	vpcID := aws.ToString(vpc.Vpc.VpcId)
	_, err = c.AssociateVpcCidrBlock(ctx, &ec2.AssociateVpcCidrBlockInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.21.0.0/16")})
	must(err, "AssociateVpcCidrBlock")
	sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: &vpcID, CidrBlock: aws.String("10.20.1.0/24"), AvailabilityZone: aws.String("eu-west-1b")})
	must(err, "CreateSubnet")
	sn2, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: &vpcID, CidrBlock: aws.String("10.20.2.0/24"), AvailabilityZone: aws.String("eu-west-1b")})
	must(err, "CreateSubnet")
	web, err := mirrorSecurityGroup(ctx, c, "web", vpcID)
	must(err, "CreateSecurityGroup")
	ssh, err := mirrorSecurityGroup(ctx, c, "ssh", vpcID)
	must(err, "CreateSecurityGroup")
	_, err = c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String(w.keyName)})
	must(err, "CreateKeyPair")
	w.profile = mirrorIAM(ctx, t, motoURL, "web-profile")
	eni, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: sn2.Subnet.SubnetId, Groups: []string{aws.ToString(ssh.GroupId)}})
	must(err, "CreateNetworkInterface")
	images, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	must(err, "DescribeImages")
	if len(images.Images) == 0 {
		t.Fatal("moto has no images")
	}
	ami := images.Images[0].ImageId

	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: ami, InstanceType: ec2types.InstanceTypeT3Small, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		KeyName:            aws.String(w.keyName),
		UserData:           aws.String(base64.StdEncoding.EncodeToString([]byte(mirrorUserData))),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String("web-profile")},
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{
			{DeviceIndex: aws.Int32(0), SubnetId: sn.Subnet.SubnetId, Groups: []string{aws.ToString(web.GroupId), aws.ToString(ssh.GroupId)},
				AssociatePublicIpAddress: aws.Bool(true)},
			{DeviceIndex: aws.Int32(1), NetworkInterfaceId: eni.NetworkInterface.NetworkInterfaceId},
		},
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired,
			HttpPutResponseHopLimit: aws.Int32(3), InstanceMetadataTags: ec2types.InstanceMetadataTagsStateEnabled},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
			Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("web-1")}, {Key: aws.String("team"), Value: aws.String("core")}}}},
	})
	must(err, "RunInstances web-1")
	w.web = aws.ToString(run.Instances[0].InstanceId)
	other, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: ami, InstanceType: ec2types.InstanceTypeM5Large, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: sn2.Subnet.SubnetId,
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
			Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("web-2")}}}},
	})
	must(err, "RunInstances web-2")
	w.other = aws.ToString(other.Instances[0].InstanceId)
	return w
}

// mirrorClient reads IMDS from one source address the way SDKs do: IMDSv2,
// a token fetched once.
type mirrorClient struct {
	t     *testing.T
	c     *http.Client
	addr  string
	token string
}

func newMirrorClient(t *testing.T, addr, src string) *mirrorClient {
	return &mirrorClient{t: t, c: httpClientFrom(t, src, &tokenRecorder{}), addr: addr}
}

func (mc *mirrorClient) get(path string) (int, string) {
	mc.t.Helper()
	if mc.token == "" {
		req, _ := http.NewRequest(http.MethodPut, "http://"+mc.addr+"/latest/api/token", nil)
		req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "600")
		resp, err := mc.c.Do(req)
		if err != nil {
			mc.t.Fatalf("PUT token: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			mc.t.Fatalf("PUT token: %d %s", resp.StatusCode, b)
		}
		mc.token = string(b)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+mc.addr+"/latest/"+path, nil)
	req.Header.Set("X-aws-ec2-metadata-token", mc.token)
	resp, err := mc.c.Do(req)
	if err != nil {
		mc.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls path until it answers want (200), or fails after within.
func (mc *mirrorClient) waitFor(path, want string, within time.Duration) {
	mc.t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := mc.get(path)
		if code == http.StatusOK && body == want {
			return
		}
		if time.Now().After(deadline) {
			mc.t.Fatalf("%s answered %d %q, not %q, within %s", path, code, body, want, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStatus polls path until it answers the status.
func (mc *mirrorClient) waitStatus(path string, status int, within time.Duration) {
	mc.t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := mc.get(path)
		if code == status {
			return
		}
		if time.Now().After(deadline) {
			mc.t.Fatalf("%s answered %d %q, not %d, within %s", path, code, body, status, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const (
	mirrorSrcByID  = "127.0.0.2"
	mirrorSrcByTag = "127.0.0.3"
	mirrorSrcWrong = "127.0.0.4"
	mirrorWrongID  = "i-0deadbeef00000000"
)

func mirrorStartProxy(t *testing.T, w *mirrorWorld) (*e2eProcess, string) {
	t.Helper()
	config := fmt.Sprintf(`server:
  listen: ["%s:0"]
  admin_listen: "127.0.0.1:0"
tenants:
  - name: by-id
    sources: [%q, "127.0.0.1"]
    credentials: {profile: default, role_name: web}
    instance:
      mirror: {instance_id: %s, region: %s, refresh: 1s}
  - name: by-tag
    sources: [%q]
    instance:
      mirror: {filters: ["tag:Name=web-2", "instance-state-name=running,pending"], region: %s, refresh: 1s}
      instance_type: t3.large
  - name: wrong
    sources: [%q]
    instance:
      mirror: {instance_id: %s, region: %s, refresh: 1s}
      instance_type: t3.micro
`, mirrorSrcByID, mirrorSrcByID, w.web, mirrorRegion, mirrorSrcByTag, mirrorRegion, mirrorSrcWrong, mirrorWrongID, mirrorRegion)
	path := filepath.Join(t.TempDir(), "imds-proxy.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	// With a configuration file the profile default is the profile
	// default, not the environment's keys: the keys live in it.
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[default]\naws_access_key_id = "+mirrorKeyID+"\naws_secret_access_key = "+mirrorSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := e2eEnv(t, "AWS_SHARED_CREDENTIALS_FILE="+creds,
		"AWS_ENDPOINT_URL="+w.endpoint, "AWS_ENDPOINT_URL_STS="+w.endpoint)
	p := e2eStart(t, env, "--config", path)
	return p, p.imdsAddr
}

// mirrorSetup starts moto behind a gate, launches the instances and starts
// the proxy, and waits until both mirrors have a copy.
func mirrorSetup(t *testing.T) (*mirrorWorld, *mirrorGate, *e2eProcess, string) {
	t.Helper()
	m := motoStart(t)
	gate := newMirrorGate(t, m.url)
	w := mirrorLaunch(t, m.url, gate.url)
	p, addr := mirrorStartProxy(t, w)
	newMirrorClient(t, addr, mirrorSrcByID).waitFor("meta-data/instance-id", w.web, 10*time.Second)
	newMirrorClient(t, addr, mirrorSrcByTag).waitFor("meta-data/instance-id", w.other, 10*time.Second)
	return w, gate, p, addr
}

func TestMirrorMotoClients(t *testing.T) {
	w, _, p, addr := mirrorSetup(t)
	mirrorClients(t, w, addr)
	p.stop(t)
}

func TestMirrorMoto(t *testing.T) {
	w, gate, p, addr := mirrorSetup(t)
	byID := newMirrorClient(t, addr, mirrorSrcByID)
	byTag := newMirrorClient(t, addr, mirrorSrcByTag)
	wrong := newMirrorClient(t, addr, mirrorSrcWrong)

	t.Run("every path as describe-instances says", func(t *testing.T) { mirrorCompare(t, w, byID) })
	t.Run("user data as launched", func(t *testing.T) {
		if code, body := byID.get("user-data"); code != http.StatusOK || body != mirrorUserData {
			t.Errorf("user-data = %d %q, want the bytes web-1 was launched with, %q", code, body, mirrorUserData)
		}
		if code, body := byTag.get("user-data"); code != http.StatusNotFound {
			t.Errorf("user-data of an instance launched without = %d %q, want 404", code, body)
		}
	})
	t.Run("by tag, with a static override", func(t *testing.T) {
		for path, want := range map[string]string{
			"meta-data/instance-type":    "t3.large", // the tenant's own value wins
			"meta-data/placement/region": mirrorRegion,
		} {
			if code, body := byTag.get(path); code != http.StatusOK || body != want {
				t.Errorf("%s = %d %q, want %q", path, code, body, want)
			}
		}
		// HttpTokens optional there: IMDSv1 works, and tags are not exposed.
		if code, _ := curlFrom(t, mirrorSrcByTag, "http://"+addr+"/latest/meta-data/instance-id"); code != http.StatusOK {
			t.Errorf("IMDSv1 on an instance with optional tokens: %d", code)
		}
		if code, _ := byTag.get("meta-data/tags/instance/Name"); code != http.StatusNotFound {
			t.Errorf("tags of an instance without InstanceMetadataTags: %d, want 404", code)
		}
	})
	t.Run("metadata options", func(t *testing.T) {
		code, _ := curlFrom(t, mirrorSrcByID, "http://"+addr+"/latest/meta-data/instance-id")
		if code != http.StatusUnauthorized {
			t.Errorf("IMDSv1 on an instance with HttpTokens=required: %d, want 401", code)
		}
	})
	t.Run("wrong id is not ready and invents nothing", func(t *testing.T) {
		for path, want := range map[string]int{
			"meta-data/instance-id": 404, "meta-data/ami-id": 404, "meta-data/mac": 404, "dynamic/instance-identity/document": 404,
			"dynamic/instance-identity/signature": 404, "dynamic/instance-identity/pkcs7": 404, "meta-data/placement/availability-zone": 404,
			"meta-data/instance-type": 200,
		} {
			if code, body := wrong.get(path); code != want {
				t.Errorf("%s = %d %q, want %d", path, code, body, want)
			}
		}
		if _, body := wrong.get("meta-data/instance-type"); body != "t3.micro" {
			t.Errorf("static instance_type %q", body)
		}
		motoWaitLog(t, p, regexp.MustCompile(`"tenant":"wrong".*instance `+mirrorWrongID+` does not exist in eu-west-1`), 1, 10*time.Second)
		code, body := mirrorAdmin(t, p, "/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, `"tenant": "wrong"`) || !strings.Contains(body, mirrorWrongID+" does not exist") ||
			strings.Contains(body, `"tenant": "by-id"`) {
			t.Errorf("/readyz = %d %s; want 503 naming only the wrong tenant and why", code, body)
		}
	})
	t.Run("changes in moto appear after refresh", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := w.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{w.web}, Tags: []ec2types.Tag{{Key: aws.String("stage"), Value: aws.String("blue")}}})
		if err != nil {
			t.Fatal(err)
		}
		byID.waitFor("meta-data/tags/instance/stage", "blue", 10*time.Second)
		if _, err := w.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{w.web}}); err != nil {
			t.Fatal(err)
		}
		byID.waitStatus("meta-data/public-ipv4", http.StatusNotFound, 10*time.Second) // a stopped instance has none
		motoWaitLog(t, p, regexp.MustCompile(`"tenant":"by-id".*"state":"stopped"`), 1, 5*time.Second)
	})
	t.Run("moto down: the last good copy stays", func(t *testing.T) {
		gate.closed.Store(true)
		defer gate.closed.Store(false)
		motoWaitLog(t, p, regexp.MustCompile(`"tenant":"by-id".*"serving":"the last good copy"`), 1, 15*time.Second)
		byID.waitFor("meta-data/instance-id", w.web, time.Second)
		byID.waitFor("meta-data/tags/instance/stage", "blue", time.Second)
		if code, body := mirrorAdmin(t, p, "/readyz"); strings.Contains(body, `"tenant": "by-id"`) {
			t.Errorf("/readyz = %d %s: a tenant mirrored once stays ready", code, body)
		}
	})
	p.stop(t)
}

func mirrorAdmin(t *testing.T, p *e2eProcess, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.adminAddr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mirrorAWS runs /usr/bin/aws (v2) against moto and decodes its JSON.
func mirrorAWS(t *testing.T, w *mirrorWorld, out any, args ...string) {
	t.Helper()
	cli := "/usr/bin/aws"
	_, err := os.Stat(cli)
	need(t, "the AWS CLI v2 at "+cli, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, append([]string{"--endpoint-url", w.moto, "--region", mirrorRegion, "--output", "json"}, args...)...)
	cmd.Env = e2eEnv(t, "AWS_ACCESS_KEY_ID="+mirrorKeyID, "AWS_SECRET_ACCESS_KEY="+mirrorSecret)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
	}
}

// mirrorCompare reads every mirrored path and compares it with what the
// AWS CLI describes for the same instance. An empty expectation is a 404.
func mirrorCompare(t *testing.T, w *mirrorWorld, mc *mirrorClient) {
	var di ec2.DescribeInstancesOutput
	mirrorAWS(t, w, &di, "ec2", "describe-instances", "--instance-ids", w.web)
	if len(di.Reservations) != 1 || len(di.Reservations[0].Instances) != 1 {
		t.Fatalf("describe-instances: %+v", di)
	}
	res, in := di.Reservations[0], di.Reservations[0].Instances[0]
	// What describe-instances lacks, from the SDK (each CLI run costs a
	// second or two).
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	subnets, err := w.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil {
		t.Fatal(err)
	}
	vpcs, err := w.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := w.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{w.keyName}, IncludePublicKey: aws.Bool(true)})
	if err != nil || len(keys.KeyPairs) != 1 {
		t.Fatalf("DescribeKeyPairs: %v", err)
	}
	zones, err := w.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{aws.ToString(in.Placement.AvailabilityZone)}})
	if err != nil || len(zones.AvailabilityZones) != 1 {
		t.Fatalf("DescribeAvailabilityZones: %v", err)
	}

	primary := in.NetworkInterfaces[0]
	for _, ni := range in.NetworkInterfaces {
		if aws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
			primary = ni
		}
	}
	groups := names(in.SecurityGroups)
	if len(groups) == 0 { // moto lists them only on the interface
		groups = names(primary.Groups)
	}
	publicIP := aws.ToString(in.PublicIpAddress)
	want := map[string]string{
		"meta-data/instance-id":                    aws.ToString(in.InstanceId),
		"meta-data/instance-type":                  string(in.InstanceType),
		"meta-data/ami-id":                         aws.ToString(in.ImageId),
		"meta-data/ami-launch-index":               strconv.Itoa(int(aws.ToInt32(in.AmiLaunchIndex))),
		"meta-data/kernel-id":                      aws.ToString(in.KernelId),
		"meta-data/ramdisk-id":                     aws.ToString(in.RamdiskId),
		"meta-data/reservation-id":                 aws.ToString(res.ReservationId),
		"meta-data/instance-life-cycle":            cmp.Or(string(in.InstanceLifecycle), "on-demand"),
		"meta-data/hostname":                       aws.ToString(in.PrivateDnsName),
		"meta-data/local-hostname":                 aws.ToString(in.PrivateDnsName),
		"meta-data/local-ipv4":                     aws.ToString(in.PrivateIpAddress),
		"meta-data/public-ipv4":                    publicIP,
		"meta-data/public-hostname":                aws.ToString(in.PublicDnsName),
		"meta-data/mac":                            aws.ToString(primary.MacAddress),
		"meta-data/security-groups":                strings.Join(groups, "\n"),
		"meta-data/placement/availability-zone":    aws.ToString(in.Placement.AvailabilityZone),
		"meta-data/placement/availability-zone-id": aws.ToString(zones.AvailabilityZones[0].ZoneId),
		"meta-data/placement/region":               mirrorRegion,
		"meta-data/placement/group-name":           aws.ToString(in.Placement.GroupName),
		"meta-data/placement/host-id":              aws.ToString(in.Placement.HostId),
		"meta-data/block-device-mapping/root":      aws.ToString(in.RootDeviceName),
		"meta-data/block-device-mapping/ami":       aws.ToString(in.RootDeviceName),
		"meta-data/public-keys/":                   "0=" + aws.ToString(in.KeyName),
		"meta-data/public-keys/0/openssh-key":      strings.TrimSpace(aws.ToString(keys.KeyPairs[0].PublicKey)) + "\n",
		"meta-data/services/partition":             "aws",
		"meta-data/iam/security-credentials/":      "web",
		"dynamic/fws/instance-monitoring":          map[bool]string{true: "enabled", false: "disabled"}[in.Monitoring.State == ec2types.MonitoringStateEnabled],
	}
	var tagKeys []string
	for _, tag := range in.Tags {
		want["meta-data/tags/instance/"+aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		tagKeys = append(tagKeys, aws.ToString(tag.Key))
	}
	want["meta-data/tags/instance/"] = strings.Join(sortedCopy(tagKeys), "\n")
	var macs []string
	for _, ni := range in.NetworkInterfaces {
		mac := aws.ToString(ni.MacAddress)
		macs = append(macs, mac+"/")
		base := "meta-data/network/interfaces/macs/" + mac + "/"
		var private, public []string
		for _, pa := range ni.PrivateIpAddresses {
			private = append(private, aws.ToString(pa.PrivateIpAddress))
			if pa.Association != nil && aws.ToString(pa.Association.PublicIp) != "" {
				public = append(public, aws.ToString(pa.Association.PublicIp))
				want[base+"ipv4-associations/"+aws.ToString(pa.Association.PublicIp)] = aws.ToString(pa.PrivateIpAddress)
			}
		}
		subnet, vpc := findSubnet(subnets, aws.ToString(ni.SubnetId)), findVPC(vpcs, aws.ToString(ni.VpcId))
		var vpcBlocks []string
		for _, b := range vpc.CidrBlockAssociationSet {
			vpcBlocks = append(vpcBlocks, aws.ToString(b.CidrBlock))
		}
		publicHost := ""
		if ni.Association != nil {
			publicHost = aws.ToString(ni.Association.PublicDnsName)
		}
		for k, v := range map[string]string{
			"device-number":          strconv.Itoa(int(aws.ToInt32(ni.Attachment.DeviceIndex))),
			"network-card-index":     strconv.Itoa(int(aws.ToInt32(ni.Attachment.NetworkCardIndex))),
			"interface-id":           aws.ToString(ni.NetworkInterfaceId),
			"mac":                    mac,
			"owner-id":               aws.ToString(ni.OwnerId),
			"local-hostname":         aws.ToString(ni.PrivateDnsName),
			"public-hostname":        publicHost,
			"local-ipv4s":            strings.Join(private, "\n"),
			"public-ipv4s":           strings.Join(public, "\n"),
			"security-groups":        strings.Join(names(ni.Groups), "\n"),
			"security-group-ids":     strings.Join(ids(ni.Groups), "\n"),
			"subnet-id":              aws.ToString(ni.SubnetId),
			"subnet-ipv4-cidr-block": aws.ToString(subnet.CidrBlock),
			"vpc-id":                 aws.ToString(ni.VpcId),
			"vpc-ipv4-cidr-block":    aws.ToString(vpc.CidrBlock),
			"vpc-ipv4-cidr-blocks":   strings.Join(vpcBlocks, "\n"),
		} {
			want[base+k] = v
		}
	}
	want["meta-data/network/interfaces/macs/"] = strings.Join(sortedCopy(macs), "\n")

	for path, v := range want {
		t.Run(path, func(t *testing.T) {
			code, body := mc.get(path)
			switch {
			case v == "" && code != http.StatusNotFound:
				t.Errorf("%d %q; describe-instances has no value: want 404", code, body)
			case v != "" && (code != http.StatusOK || body != v):
				t.Errorf("%d %q; want %q", code, body, v)
			}
		})
	}

	t.Run("dynamic/instance-identity/document", func(t *testing.T) {
		_, body := mc.get("dynamic/instance-identity/document")
		var doc map[string]any
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("%v in %q", err, body)
		}
		wantDoc := map[string]any{
			"accountId": aws.ToString(res.OwnerId), "architecture": string(in.Architecture), "availabilityZone": aws.ToString(in.Placement.AvailabilityZone),
			"imageId": aws.ToString(in.ImageId), "instanceId": w.web, "instanceType": string(in.InstanceType),
			"pendingTime": aws.ToTime(in.LaunchTime).UTC().Format("2006-01-02T15:04:05Z"), "privateIp": aws.ToString(in.PrivateIpAddress),
			"region": mirrorRegion, "version": "2017-09-30",
		}
		for k, v := range wantDoc {
			if doc[k] != v {
				t.Errorf("document %s = %v, want %v", k, doc[k], v)
			}
		}
	})
	t.Run("meta-data/iam/info", func(t *testing.T) {
		var info struct{ Code, InstanceProfileArn, InstanceProfileId string }
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, body := mc.get("meta-data/iam/info")
			if err := json.Unmarshal([]byte(body), &info); err != nil {
				t.Fatalf("%v in %q", err, body)
			}
			if info.Code == "Success" || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if info.Code != "Success" || info.InstanceProfileArn != aws.ToString(in.IamInstanceProfile.Arn) || info.InstanceProfileId != aws.ToString(in.IamInstanceProfile.Id) {
			t.Errorf("iam/info %+v, want the instance's profile %s %s", info, aws.ToString(in.IamInstanceProfile.Arn), aws.ToString(in.IamInstanceProfile.Id))
		}
	})
}

// mirrorClients: the AWS CLI v2, boto3 and aws-sdk-go-v2 read the mirrored
// identity. Clients that cannot choose their source address connect from
// 127.0.0.1 (Linux's source for all of 127.0.0.0/8, whatever address the
// proxy listens on), which the by-id tenant lists too.
func mirrorClients(t *testing.T, w *mirrorWorld, addr string) {
	endpoint := "http://" + addr + "/"
	clientEnv := func(t *testing.T) []string {
		home := t.TempDir()
		return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "AWS_CONFIG_FILE=" + filepath.Join(home, "none"),
			"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"), "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + endpoint}
	}
	t.Run("aws configure list", func(t *testing.T) {
		_, err := os.Stat("/usr/bin/aws")
		need(t, "the AWS CLI v2 at /usr/bin/aws", err)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/usr/bin/aws", "configure", "list")
		cmd.Env = clientEnv(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws configure list: %v\n%s", err, out)
		}
		if !regexp.MustCompile(`(?m)^\s*region\s+` + mirrorRegion + `\s+imds\s*$`).Match(out) {
			t.Errorf("aws configure list does not show the mirrored region from imds:\n%s", out)
		}
	})
	t.Run("boto3", func(t *testing.T) {
		py := boto3Python(t)
		script := `import json, sys
from botocore.utils import IMDSFetcher, InstanceMetadataRegionFetcher
class Identity(IMDSFetcher):
    def document(self):
        token = self._fetch_metadata_token()
        return self._get_request(url_path="latest/dynamic/instance-identity/document", retry_func=self._default_retry, token=token).text
cfg = {"ec2_metadata_service_endpoint": sys.argv[1]}
print(json.dumps({"region": InstanceMetadataRegionFetcher(config=cfg).retrieve_region(), "document": json.loads(Identity(config=cfg).document())}))
`
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, py, "-c", script, endpoint)
		cmd.Env = clientEnv(t)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("boto3: %v\n%s", err, out)
		}
		var got struct {
			Region   string
			Document struct{ InstanceID, Region, AccountID string } `json:"document"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
		if got.Region != mirrorRegion || got.Document.InstanceID != w.web || got.Document.Region != mirrorRegion || got.Document.AccountID == "" {
			t.Errorf("boto3 read %+v; want region %s and instance %s", got, mirrorRegion, w.web)
		}
	})
	t.Run("aws-sdk-go-v2 imds", func(t *testing.T) {
		c := imds.New(imds.Options{Endpoint: endpoint, ClientEnableState: imds.ClientEnabled})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		doc, err := c.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
		if err != nil {
			t.Fatal(err)
		}
		if doc.InstanceID != w.web || doc.Region != mirrorRegion || doc.InstanceType != "t3.small" || doc.AvailabilityZone != "eu-west-1b" {
			t.Errorf("identity document %+v", doc.InstanceIdentityDocument)
		}
		region, err := c.GetRegion(ctx, &imds.GetRegionInput{})
		if err != nil || region.Region != mirrorRegion {
			t.Errorf("GetRegion = %+v, %v", region, err)
		}
	})
}

func names(gs []ec2types.GroupIdentifier) []string {
	var out []string
	for _, g := range gs {
		out = append(out, aws.ToString(g.GroupName))
	}
	return out
}

func ids(gs []ec2types.GroupIdentifier) []string {
	var out []string
	for _, g := range gs {
		out = append(out, aws.ToString(g.GroupId))
	}
	return out
}

func findSubnet(out *ec2.DescribeSubnetsOutput, id string) ec2types.Subnet {
	for _, s := range out.Subnets {
		if aws.ToString(s.SubnetId) == id {
			return s
		}
	}
	return ec2types.Subnet{}
}

func findVPC(out *ec2.DescribeVpcsOutput, id string) ec2types.Vpc {
	for _, v := range out.Vpcs {
		if aws.ToString(v.VpcId) == id {
			return v
		}
	}
	return ec2types.Vpc{}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
