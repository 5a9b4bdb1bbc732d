package hostnet

import (
	"strings"
	"testing"
)

// ipAddrJSON is `ip -d -j addr show` trimmed to what setup reads.
const ipAddrJSON = `[
 {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"addr_info":[
  {"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo"},
  {"family":"inet","local":"169.254.169.254","prefixlen":32,"scope":"global","label":"lo"},
  {"family":"inet6","local":"fd00:ec2::254","prefixlen":128,"metric":3778,"scope":"global"}]},
 {"ifindex":5,"ifname":"imds0","flags":["BROADCAST","NOARP","UP","LOWER_UP"],"ifalias":"imds-proxy","addr_info":[
  {"family":"inet","local":"169.254.169.254","prefixlen":32,"metric":3778,"scope":"global","label":"imds0"}]},
 {"ifindex":6,"ifname":"br0","flags":["BROADCAST","MULTICAST","UP"],"ifalias":"someone else's","addr_info":[
  {"family":"inet","local":"169.254.169.254","prefixlen":32,"metric":1,"scope":"global","label":"br0"},
  {"family":"inet","local":"198.18.0.1","prefixlen":24,"metric":3778,"scope":"global","label":"br0"}]},
 {"ifindex":7,"ifname":"down0","flags":["BROADCAST","NOARP"],"ifalias":"imds-proxy","addr_info":[]}
]`

func joinCommands(cs []Command) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, "\n")
}

func TestPlanAddress(t *testing.T) {
	links, err := parseIPAddr([]byte(ipAddrJSON))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name          string
		opts          Options
		todo, present []string
	}{
		{
			name: "absent interface is created and tagged",
			opts: Options{Interface: "imds1"},
			todo: []string{
				"ip link add imds1 type dummy",
				"ip link set dev imds1 alias imds-proxy",
				"ip link set dev imds1 up",
				"ip addr add 169.254.169.254/32 dev imds1 metric 3778",
				"ip addr add fd00:ec2::254/128 dev imds1 metric 3778",
			},
		},
		{
			name:    "ours, with the IPv4 address",
			opts:    Options{Interface: "imds0"},
			todo:    []string{"ip addr add fd00:ec2::254/128 dev imds0 metric 3778"},
			present: []string{"ip addr add 169.254.169.254/32 dev imds0 metric 3778"},
		},
		{
			name:    "IPv4 only, on the default interface",
			opts:    Options{IPv4Only: true},
			present: []string{"ip addr add 169.254.169.254/32 dev imds0 metric 3778"},
		},
		{
			name: "existing interface: used as it is, addresses already there",
			opts: Options{Interface: "lo"},
			present: []string{
				"ip addr add 169.254.169.254/32 dev lo metric 3778",
				"ip addr add fd00:ec2::254/128 dev lo metric 3778",
			},
		},
		{
			name: "ours but down is brought up",
			opts: Options{Interface: "down0", IPv4Only: true},
			todo: []string{
				"ip link set dev down0 up",
				"ip addr add 169.254.169.254/32 dev down0 metric 3778",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Mode = Address
			todo, present := addressPlan(tc.opts.withDefaults(), links)
			if got, want := joinCommands(todo), strings.Join(tc.todo, "\n"); got != want {
				t.Errorf("todo:\n%s\nwant:\n%s", got, want)
			}
			if got, want := joinCommands(present), strings.Join(tc.present, "\n"); got != want {
				t.Errorf("present:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestPlanAddressOnThisHost: Plan creates an interface only where the host
// has none of that name.
func TestPlanAddressOnThisHost(t *testing.T) {
	if !interfaceExists("lo") {
		t.Skip("this host has no interface lo")
	}
	want := "ip addr add 169.254.169.254/32 dev lo metric 3778"
	if got := joinCommands(Plan(Options{Mode: Address, Interface: "lo", IPv4Only: true})); got != want {
		t.Errorf("Plan on lo:\n%s\nwant:\n%s", got, want)
	}
	if got := Plan(Options{Mode: Address, Interface: "imds-none0"}); len(got) != 5 || got[0].String() != "ip link add imds-none0 type dummy" {
		t.Errorf("Plan on an absent interface:\n%s", joinCommands(got))
	}
}

func TestPlanRemoveAddresses(t *testing.T) {
	links, err := parseIPAddr([]byte(ipAddrJSON))
	if err != nil {
		t.Fatal(err)
	}
	// lo's IPv4 alias has no mark (someone else's, e.g. `make run-linux`),
	// br0's marked address is not an IMDS address: both stay.
	want := strings.Join([]string{
		"ip addr del fd00:ec2::254/128 dev lo",
		"ip link del dev imds0",
		"ip link del dev down0",
	}, "\n")
	if got := joinCommands(addressRemoval(links)); got != want {
		t.Errorf("removal:\n%s\nwant:\n%s", got, want)
	}
}
