package hostnet

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPlanECS(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want []string
	}{
		{
			name: "address mode adds the container endpoints' addresses",
			opts: Options{Mode: Address, Interface: "imds-ecs-test0", IPv4Only: true, ECS: true},
			want: []string{
				"ip link add imds-ecs-test0 type dummy",
				"ip link set dev imds-ecs-test0 alias imds-proxy",
				"ip link set dev imds-ecs-test0 up",
				"ip addr add 169.254.169.254/32 dev imds-ecs-test0 metric 3778",
				"ip addr add 169.254.170.2/32 dev imds-ecs-test0 metric 3778",
				"ip addr add 169.254.170.23/32 dev imds-ecs-test0 metric 3778",
			},
		},
		{
			name: "dnat mode redirects them to the ecs listener, IPv4 blocks only",
			opts: Options{Mode: DNAT, Bridges: []string{"docker0"}, CIDRs: prefixes("172.30.0.0/16", "fd00:30::/64"), Host: true,
				To: targets("172.17.0.1:8080", "[fd00:30::1]:8080"), ECSTo: netip.MustParseAddrPort("172.17.0.1:8082")},
			want: []string{
				"iptables -w -t nat -I PREROUTING -i docker0 -d 169.254.169.254/32 " + dnatTail + "172.17.0.1:8080",
				"iptables -w -t nat -I PREROUTING -s 172.30.0.0/16 -d 169.254.169.254/32 " + dnatTail + "172.17.0.1:8080",
				"iptables -w -t nat -I OUTPUT -d 169.254.169.254/32 " + dnatTail + "172.17.0.1:8080",
				"ip6tables -w -t nat -I PREROUTING -i docker0 -d fd00:ec2::254/128 " + dnatTail + "[fd00:30::1]:8080",
				"ip6tables -w -t nat -I PREROUTING -s fd00:30::/64 -d fd00:ec2::254/128 " + dnatTail + "[fd00:30::1]:8080",
				"ip6tables -w -t nat -I OUTPUT -d fd00:ec2::254/128 " + dnatTail + "[fd00:30::1]:8080",
				"iptables -w -t nat -I PREROUTING -i docker0 -d 169.254.170.2/32 " + dnatTail + "172.17.0.1:8082",
				"iptables -w -t nat -I PREROUTING -s 172.30.0.0/16 -d 169.254.170.2/32 " + dnatTail + "172.17.0.1:8082",
				"iptables -w -t nat -I OUTPUT -d 169.254.170.2/32 " + dnatTail + "172.17.0.1:8082",
				"iptables -w -t nat -I PREROUTING -i docker0 -d 169.254.170.23/32 " + dnatTail + "172.17.0.1:8082",
				"iptables -w -t nat -I PREROUTING -s 172.30.0.0/16 -d 169.254.170.23/32 " + dnatTail + "172.17.0.1:8082",
				"iptables -w -t nat -I OUTPUT -d 169.254.170.23/32 " + dnatTail + "172.17.0.1:8082",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkPlan(t, tc.opts, tc.want) })
	}
}

func TestECSToValidated(t *testing.T) {
	for _, to := range []string{"[fd00::1]:8082", "172.17.0.1:0", "127.0.0.1:8082"} {
		o := Options{Mode: DNAT, Bridges: []string{"docker0"}, To: targets("172.17.0.1:8080"), ECSTo: netip.MustParseAddrPort(to)}
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--ecs-to") {
			t.Errorf("--ecs-to %s: %v, want an error naming --ecs-to", to, err)
		}
	}
}

func TestRemoveTakesECSAddresses(t *testing.T) {
	links, err := parseIPAddr([]byte(`[{"ifname":"lo","addr_info":[
  {"family":"inet","local":"169.254.170.2","prefixlen":32,"metric":3778},
  {"family":"inet","local":"169.254.170.23","prefixlen":32,"metric":3778},
  {"family":"inet","local":"169.254.170.2","prefixlen":32,"metric":5}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := "ip addr del 169.254.170.2/32 dev lo\nip addr del 169.254.170.23/32 dev lo"
	if got := joinCommands(addressRemoval(links)); got != want {
		t.Errorf("removal:\n%s\nwant:\n%s", got, want)
	}
}
