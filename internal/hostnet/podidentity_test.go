package hostnet

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestPlanPodIdentity(t *testing.T) {
	create := []string{
		"ip link add imds-pi-test0 type dummy",
		"ip link set dev imds-pi-test0 alias imds-proxy",
		"ip link set dev imds-pi-test0 up",
	}
	cases := []struct {
		name string
		opts Options
		want []string
	}{
		{
			name: "address mode adds both Pod Identity addresses",
			opts: Options{Mode: Address, Interface: "imds-pi-test0", PodIdentity: true},
			want: append(create,
				"ip addr add 169.254.169.254/32 dev imds-pi-test0 metric 3778",
				"ip addr add fd00:ec2::254/128 dev imds-pi-test0 metric 3778",
				"ip addr add 169.254.170.23/32 dev imds-pi-test0 metric 3778",
				"ip addr add fd00:ec2::23/128 dev imds-pi-test0 metric 3778",
			),
		},
		{
			name: "IPv4 only, with ECS: 169.254.170.23 once",
			opts: Options{Mode: Address, Interface: "imds-pi-test0", IPv4Only: true, ECS: true, PodIdentity: true},
			want: append(create,
				"ip addr add 169.254.169.254/32 dev imds-pi-test0 metric 3778",
				"ip addr add 169.254.170.2/32 dev imds-pi-test0 metric 3778",
				"ip addr add 169.254.170.23/32 dev imds-pi-test0 metric 3778",
			),
		},
		{
			name: "dnat mode: each address to the listener of its version; 169.254.170.23 no longer to ECS",
			opts: Options{Mode: DNAT, Bridges: []string{"cni0"}, CIDRs: prefixes("10.244.0.0/16", "fd00:244::/56"),
				To: targets("10.244.0.1:8080", "[fd00:244::1]:8080"), ECSTo: netip.MustParseAddrPort("10.244.0.1:8082"),
				PodIdentityTo: targets("10.244.0.1:8083", "[fd00:244::1]:8083")},
			want: []string{
				"iptables -w -t nat -I PREROUTING -i cni0 -d 169.254.169.254/32 " + dnatTail + "10.244.0.1:8080",
				"iptables -w -t nat -I PREROUTING -s 10.244.0.0/16 -d 169.254.169.254/32 " + dnatTail + "10.244.0.1:8080",
				"ip6tables -w -t nat -I PREROUTING -i cni0 -d fd00:ec2::254/128 " + dnatTail + "[fd00:244::1]:8080",
				"ip6tables -w -t nat -I PREROUTING -s fd00:244::/56 -d fd00:ec2::254/128 " + dnatTail + "[fd00:244::1]:8080",
				"iptables -w -t nat -I PREROUTING -i cni0 -d 169.254.170.2/32 " + dnatTail + "10.244.0.1:8082",
				"iptables -w -t nat -I PREROUTING -s 10.244.0.0/16 -d 169.254.170.2/32 " + dnatTail + "10.244.0.1:8082",
				"iptables -w -t nat -I PREROUTING -i cni0 -d 169.254.170.23/32 " + dnatTail + "10.244.0.1:8083",
				"iptables -w -t nat -I PREROUTING -s 10.244.0.0/16 -d 169.254.170.23/32 " + dnatTail + "10.244.0.1:8083",
				"ip6tables -w -t nat -I PREROUTING -i cni0 -d fd00:ec2::23/128 " + dnatTail + "[fd00:244::1]:8083",
				"ip6tables -w -t nat -I PREROUTING -s fd00:244::/56 -d fd00:ec2::23/128 " + dnatTail + "[fd00:244::1]:8083",
			},
		},
		{
			name: "dnat mode, this host's processes, IPv4 only",
			opts: Options{Mode: DNAT, Host: true, To: targets("127.0.0.1:8080"), PodIdentityTo: targets("127.0.0.1:8083")},
			want: []string{
				"iptables -w -t nat -I OUTPUT -d 169.254.169.254/32 " + dnatTail + "127.0.0.1:8080",
				"iptables -w -t nat -I OUTPUT -d 169.254.170.23/32 " + dnatTail + "127.0.0.1:8083",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkPlan(t, tc.opts, tc.want) })
	}
}

func TestPodIdentityToValidated(t *testing.T) {
	for _, tc := range []struct {
		to   []netip.AddrPort
		want string
	}{
		{targets("10.244.0.1:8083", "10.244.0.2:8083"), "at most one address per IP version"},
		{targets("10.244.0.1:0"), "port 0"},
		{targets("127.0.0.1:8083"), "cannot be redirected to loopback"},
	} {
		o := Options{Mode: DNAT, Bridges: []string{"cni0"}, To: targets("10.244.0.1:8080"), PodIdentityTo: tc.to}
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--pod-identity-to") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--pod-identity-to %v: %v, want an error naming --pod-identity-to: %s", tc.to, err, tc.want)
		}
	}
}

// TestRemoveTakesPodIdentityAddresses: --remove takes the addresses
// --pod-identity added, IPv6 included, from an interface it did not create.
func TestRemoveTakesPodIdentityAddresses(t *testing.T) {
	f := &fakeHost{outputs: map[string]string{
		"iptables -w -t nat -S": "-P PREROUTING ACCEPT\n",
		"ip -d -j addr show": `[{"ifname":"lo","addr_info":[
  {"family":"inet","local":"169.254.170.23","prefixlen":32,"metric":3778},
  {"family":"inet6","local":"fd00:ec2::23","prefixlen":128,"metric":3778},
  {"family":"inet6","local":"fd00:ec2::23","prefixlen":128,"metric":256}]}]`,
	}}
	var out bytes.Buffer
	if err := Remove(f, &out); err != nil {
		t.Fatal(err)
	}
	want := "ip addr del 169.254.170.23/32 dev lo\nip addr del fd00:ec2::23/128 dev lo"
	if got := strings.Join(f.ran, "\n"); got != want {
		t.Errorf("removal ran:\n%s\nwant:\n%s", got, want)
	}
}
