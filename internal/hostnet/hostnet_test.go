package hostnet

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// fakeHost answers queries from a table and records what runs. Only ip and
// iptables are installed.
type fakeHost struct {
	outputs map[string]string // command line -> stdout; absent: exit 1
	ran     []string
	failRun string // a command line whose run fails
}

func (f *fakeHost) Output(c Command) ([]byte, error) {
	if c[0] != "ip" && c[0] != "iptables" {
		return nil, &exec.Error{Name: c[0], Err: exec.ErrNotFound}
	}
	out, ok := f.outputs[c.String()]
	if !ok {
		return nil, errors.New("exit status 1")
	}
	return []byte(out), nil
}

func (f *fakeHost) Run(c Command) error {
	f.ran = append(f.ran, c.String())
	if c.String() == f.failRun {
		return errors.New("exit status 2")
	}
	return nil
}

func TestSetupApplyIsIdempotent(t *testing.T) {
	o := Options{Mode: DNAT, Bridges: []string{"docker0", "br-+"}, To: targets("172.17.0.1:8080")}
	present := dnatRules(o)[0].command("-C").String()
	f := &fakeHost{outputs: map[string]string{present: ""}}
	var out bytes.Buffer
	if err := Apply(o, f, &out); err != nil {
		t.Fatal(err)
	}
	want := "iptables -w -t nat -I PREROUTING -i br-+ -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m comment --comment imds-proxy -j DNAT --to-destination 172.17.0.1:8080"
	if strings.Join(f.ran, "\n") != want {
		t.Errorf("ran:\n%s\nwant only:\n%s", strings.Join(f.ran, "\n"), want)
	}
	if !strings.Contains(out.String(), "# in effect: iptables -w -t nat -I PREROUTING -i docker0") || !strings.Contains(out.String(), want+"\n") {
		t.Errorf("output does not show what was skipped and what ran:\n%s", out.String())
	}
}

func TestSetupApplyAddresses(t *testing.T) {
	f := &fakeHost{outputs: map[string]string{"ip -d -j addr show": ipAddrJSON}}
	var out bytes.Buffer
	if err := Apply(Options{Mode: Address}, f, &out); err != nil {
		t.Fatal(err)
	}
	want := "ip addr add fd00:ec2::254/128 dev imds0 metric 3778"
	if strings.Join(f.ran, "\n") != want {
		t.Errorf("ran:\n%s\nwant only:\n%s", strings.Join(f.ran, "\n"), want)
	}
	if !strings.Contains(out.String(), "# in effect: ip addr add 169.254.169.254/32 dev imds0 metric 3778\n"+want+"\n") {
		t.Errorf("output does not show what was in effect, then what ran:\n%s", out.String())
	}

	f = &fakeHost{outputs: map[string]string{"ip -d -j addr show": "[]"}, failRun: "ip link add imds0 type dummy"}
	if err := Apply(Options{Mode: Address}, f, &out); err == nil || !strings.Contains(err.Error(), "--interface lo") {
		t.Errorf("a kernel without dummy interfaces: %v, want the way out", err)
	}
	if err := Apply(Options{Mode: DockerDesktop}, f, &out); err == nil {
		t.Error("Apply in docker-desktop mode succeeded")
	}
}

func TestSetupRemove(t *testing.T) {
	f := &fakeHost{outputs: map[string]string{
		"iptables -w -t nat -S": iptablesS,
		"ip -d -j addr show":    ipAddrJSON,
	}}
	var out bytes.Buffer
	if err := Remove(f, &out); err != nil {
		t.Fatal(err)
	}
	if len(f.ran) != 6 {
		t.Errorf("ran %d commands, want 3 rule and 3 address deletions:\n%s", len(f.ran), strings.Join(f.ran, "\n"))
	}
	if out.String() != strings.Join(f.ran, "\n")+"\n" {
		t.Errorf("output %q does not print each command before it runs", out.String())
	}

	f = &fakeHost{outputs: map[string]string{"iptables -w -t nat -S": "-P PREROUTING ACCEPT\n", "ip -d -j addr show": "[]"}}
	out.Reset()
	if err := Remove(f, &out); err != nil || len(f.ran) != 0 || !strings.Contains(out.String(), "nothing to remove") {
		t.Errorf("remove on a clean host: err %v, ran %q, output %q", err, f.ran, out.String())
	}
}

// TestSetupPrintsWithoutApplying: Print takes no Runner, so it cannot
// change the host; what it prints is the script.
func TestSetupPrintsWithoutApplying(t *testing.T) {
	cases := []struct {
		opts Options
		want string
	}{
		{Options{Mode: DNAT, Bridges: []string{"docker0"}, To: targets("172.17.0.1:8080")}, "iptables -w -t nat -I PREROUTING -i docker0"},
		{Options{Mode: Address, Interface: "imds-none0"}, "ip addr add 169.254.169.254/32 dev imds-none0 metric 3778"},
		{Options{Mode: DockerDesktop, ContainerPort: 9911}, "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://host.docker.internal:9911/credentials"},
		{Options{Mode: DockerDesktop}, "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://host.docker.internal:8081/credentials"},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		if err := Print(tc.opts, &out); err != nil {
			t.Fatalf("Print(%+v): %v", tc.opts, err)
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("Print(%+v):\n%s\nwant a line with %q", tc.opts, out.String(), tc.want)
		}
	}
	if err := Print(Options{Mode: DNAT}, &bytes.Buffer{}); err == nil {
		t.Error("Print printed invalid options")
	}
}

func TestSetupShellQuote(t *testing.T) {
	c := Command{"iptables", "--comment", "imds-proxy", "a b", "it's", "", "[fd00::1]:80"}
	if got, want := c.String(), `iptables --comment imds-proxy 'a b' 'it'\''s' '' [fd00::1]:80`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}
