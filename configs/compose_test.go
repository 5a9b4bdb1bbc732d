package configs_test

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// composeFile is the part of docker-compose.yml this test reads.
type composeFile struct {
	Networks map[string]struct {
		DriverOpts map[string]string `yaml:"driver_opts"`
		IPAM       struct {
			Config []struct{ Subnet, Gateway string }
		} `yaml:"ipam"`
	}
	Services map[string]struct {
		NetworkMode string `yaml:"network_mode"`
		User        string
		Volumes     []string
		Command     []string
		Networks    map[string]struct {
			IPv4Address string `yaml:"ipv4_address"`
		}
	}
}

// TestComposeMatchesItsConfig: no Docker engine runs the example in CI, so
// this holds docker-compose.yml and docker-compose-imds.yaml to each other:
// every client service's fixed address is exactly one tenant's source, the
// proxy listens on the network's gateway, runs on the host's network, not
// as root, and reads ~/.aws read-only.
func TestComposeMatchesItsConfig(t *testing.T) {
	data, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	cfg, err := tenants.Load("docker-compose-imds.yaml", time.Now())
	if err != nil {
		t.Fatal(err)
	}

	app, ok := c.Networks["app"]
	if !ok || len(app.IPAM.Config) != 1 {
		t.Fatalf("docker-compose.yml: want a network \"app\" with one ipam config")
	}
	subnet := netip.MustParsePrefix(app.IPAM.Config[0].Subnet)
	if want := app.IPAM.Config[0].Gateway + ":8080"; !slices.Equal(cfg.Server.Listen, []string{want}) {
		t.Errorf("server.listen = %q, want [%q] (the network's gateway)", cfg.Server.Listen, want)
	}
	if name := app.DriverOpts["com.docker.network.bridge.name"]; name == "" || !strings.Contains(string(data), "--bridge "+name) {
		t.Errorf("the setup command in docker-compose.yml does not name the bridge %q", name)
	}

	proxy, ok := c.Services["imds-proxy"]
	if !ok {
		t.Fatal("docker-compose.yml: no service imds-proxy")
	}
	if proxy.NetworkMode != "host" {
		t.Errorf("imds-proxy: network_mode %q, want host (it must see the containers' own addresses)", proxy.NetworkMode)
	}
	if proxy.User == "" || strings.HasPrefix(proxy.User, "0") || strings.HasPrefix(proxy.User, "root") {
		t.Errorf("imds-proxy: user %q, want a non-root user", proxy.User)
	}
	awsRO := false
	for _, v := range proxy.Volumes {
		awsRO = awsRO || strings.Contains(v, "/.aws:") && strings.HasSuffix(v, ":ro")
	}
	if !awsRO {
		t.Errorf("imds-proxy: volumes %q do not mount ~/.aws read-only", proxy.Volumes)
	}

	clients := 0
	for name, svc := range c.Services {
		if name == "imds-proxy" {
			continue
		}
		clients++
		addr, err := netip.ParseAddr(svc.Networks["app"].IPv4Address)
		if err != nil || !subnet.Contains(addr) {
			t.Errorf("service %s: ipv4_address %q, want a fixed address in %s", name, svc.Networks["app"].IPv4Address, subnet)
			continue
		}
		var owner *tenants.Tenant
		for _, tn := range cfg.Tenants {
			if slices.Contains(tn.Sources, netip.PrefixFrom(addr, 32)) {
				owner = tn
			}
		}
		switch {
		case owner == nil:
			t.Errorf("service %s (%s) is no tenant's source", name, addr)
		case owner.Name != name:
			t.Errorf("service %s (%s) is served as tenant %s", name, addr, owner.Name)
		case owner.Role == nil:
			t.Errorf("tenant %s has no role", name)
		}
	}
	if clients != len(cfg.Tenants) || clients != 3 {
		t.Errorf("%d client services and %d tenants, want 3 of each", clients, len(cfg.Tenants))
	}
}
