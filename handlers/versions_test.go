package handlers_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// introducedIn is, for each entry of a few directories as a tenant with
// every attribute lists them at latest, the version that introduced it:
// the "Version when category was introduced" column of "Instance metadata
// categories" and "Dynamic data categories" in the Amazon EC2 User Guide (a
// directory: its oldest row). profile and rsa2048 have no row; the proxy
// serves them with their directory. Kept apart from handlers/versions.go
// on purpose: a change to either must be a decision.
var introducedIn = map[string]map[string]string{
	"": {"meta-data": "1.0", "user-data": "1.0", "dynamic": "2009-04-04"},
	"meta-data/": {
		"ami-id": "1.0", "ami-launch-index": "1.0", "ami-manifest-path": "1.0", "block-device-mapping/": "2007-12-15",
		"events/": "2018-08-17", "hostname": "1.0", "iam/": "2012-01-12", "instance-action": "2008-09-01",
		"instance-id": "1.0", "instance-life-cycle": "2019-10-01", "instance-type": "2007-08-29", "ipv6": "2021-01-03",
		"kernel-id": "2008-02-01", "local-hostname": "2007-01-19", "local-ipv4": "1.0", "mac": "2011-01-01",
		"metrics/": "2011-05-01", "network/": "2011-01-01", "placement/": "2008-02-01", "product-codes": "2007-03-01",
		"profile": "1.0", "public-hostname": "2007-01-19", "public-ipv4": "2007-01-19", "public-keys/": "1.0",
		"ramdisk-id": "2007-10-10", "reservation-id": "1.0", "security-groups": "1.0", "services/": "2014-02-25",
		"tags/": "2021-03-23",
	},
	"meta-data/placement/": {
		"availability-zone": "2008-02-01", "availability-zone-id": "2019-10-01", "group-name": "2020-08-24",
		"host-id": "2020-08-24", "partition-number": "2020-08-24", "region": "2020-08-24",
	},
	"meta-data/services/": {"domain": "2014-02-25", "partition": "2015-10-20"},
	"meta-data/iam/":      {"info": "2012-01-12", "security-credentials/": "2012-01-12"},
	"meta-data/network/interfaces/macs/0e:49:61:0f:c3:99/": {
		"device-number": "2011-01-01", "interface-id": "2011-01-01", "ipv4-associations/": "2011-01-01",
		"ipv6s": "2016-06-30", "local-hostname": "2011-01-01", "local-ipv4s": "2011-01-01", "mac": "2011-01-01",
		"network-card-index": "2020-11-01", "owner-id": "2011-01-01", "public-hostname": "2011-01-01",
		"public-ipv4s": "2011-01-01", "security-group-ids": "2011-01-01", "security-groups": "2011-01-01",
		"subnet-id": "2011-01-01", "subnet-ipv4-cidr-block": "2011-01-01", "subnet-ipv6-cidr-blocks": "2016-06-30",
		"vpc-id": "2011-01-01", "vpc-ipv4-cidr-block": "2011-01-01", "vpc-ipv4-cidr-blocks": "2016-06-30",
		"vpc-ipv6-cidr-blocks": "2016-06-30",
	},
	"dynamic/": {"fws/": "2009-04-04", "instance-identity/": "2009-04-04"},
	"dynamic/instance-identity/": {
		"document": "2009-04-04", "pkcs7": "2009-04-04", "rsa2048": "2009-04-04", "signature": "2009-04-04",
	},
}

const everythingConfig = `tenants:
  - name: everything
    sources: ["127.0.0.2"]
    limits: {requests_per_second: 1000000, burst: 1000000}
    credentials: {role_arn: "arn:aws:iam::111122223333:role/app"}
    user_data: "#!/bin/sh\n"
    instance:
      kernel_id: aki-12345678
      ramdisk_id: ari-12345678
      product_codes: [abcdefghijklmnopqrstuvwxy]
      public_ip: 54.170.0.10
      ipv6: ["2600:1f18:4a3:6902::10"]
      mac_address: "0e:49:61:0f:c3:99"
      placement_group: pg
      partition_number: 2
      host_id: h-0123456789abcdef0
      key_name: dev
      tags: {Name: everything}
`

// TestVersionsServeWhatTheyIntroduced walks every dated version the proxy
// lists at "/": each lists, and serves, exactly the categories introduced
// by then; latest lists everything.
func TestVersionsServeWhatTheyIntroduced(t *testing.T) {
	srv, _ := newServer(t, everythingConfig, handlers.Options{})
	const src = "127.0.0.2:1"
	get := func(path string) (int, string) {
		w := serve(srv, http.MethodGet, path, src)
		return w.Code, w.Body.String()
	}
	_, list := get("/")
	versions := strings.Split(list, "\n")
	for dir, table := range introducedIn {
		code, latest := get("/latest/" + dir)
		if code != http.StatusOK {
			t.Fatalf("/latest/%s: status %d", dir, code)
		}
		all := strings.Split(latest, "\n")
		for _, name := range all {
			if _, ok := table[name]; !ok {
				t.Errorf("/latest/%s lists %s, which the test's table lacks: which version introduced it?", dir, name)
			}
		}
		for name := range table {
			if !slices.Contains(all, name) {
				t.Errorf("/latest/%s does not list %s", dir, name)
			}
		}
		for _, v := range versions[:len(versions)-1] {
			var want []string
			for _, name := range all {
				if table[name] <= v {
					want = append(want, name)
				}
			}
			code, got := get("/" + v + "/" + dir)
			switch {
			case len(want) == 0 && code != http.StatusNotFound:
				t.Errorf("/%s/%s: %d %q, want 404 (nothing there yet)", v, dir, code, got)
			case len(want) > 0 && (code != http.StatusOK || got != strings.Join(want, "\n")):
				t.Errorf("/%s/%s: %d\n%s\nwant:\n%s", v, dir, code, got, strings.Join(want, "\n"))
			}
			for _, name := range all {
				code, _ := get("/" + v + "/" + dir + strings.TrimSuffix(name, "/"))
				if served := code == http.StatusOK; served != (table[name] <= v) {
					t.Errorf("/%s/%s%s: status %d, introduced in %s", v, dir, name, code, table[name])
				}
			}
		}
	}
	// Below a category, its introduction holds too.
	for path, want := range map[string]int{
		"/2009-04-04/meta-data/iam/info":                  404,
		"/2011-05-01/meta-data/iam/security-credentials/": 404,
		"/2012-01-12/meta-data/iam/security-credentials/": 200,
		"/2021-01-03/meta-data/tags/instance/Name":        404,
		"/2021-03-23/meta-data/tags/instance/Name":        200,
		"/2007-10-10/meta-data/block-device-mapping/ami":  404,
		"/2007-12-15/meta-data/block-device-mapping/ami":  200,
		"/1.0/meta-data/public-keys/0/openssh-key":        404, // no public key configured
		"/1.0/meta-data/public-keys/0/":                   200,
		"/2008-09-01/dynamic/instance-identity/document":  404,
		"/2009-04-04/dynamic/instance-identity/document":  200,
		"/1.0/user-data":                         200,
		"/2020-10-27/meta-data/placement/region": 200,
		"/2019-10-01/meta-data/placement/region": 404,
		"/2021-01-03/meta-data/network/interfaces/macs/0e:49:61:0f:c3:99/network-card-index": 200,
	} {
		if code, body := get(path); code != want {
			t.Errorf("%s: %d %q, want %d", path, code, body, want)
		}
	}
}

// TestOldListingsConcurrently: an old version's listing is rendered when
// first asked for; clients asking at once all get the one rendering.
func TestOldListingsConcurrently(t *testing.T) {
	srv, _ := newServer(t, everythingConfig, handlers.Options{})
	const want = "ami-id\nami-launch-index\nami-manifest-path\nblock-device-mapping/\nhostname\ninstance-action\n" +
		"instance-id\ninstance-type\nkernel-id\nlocal-hostname\nlocal-ipv4\nplacement/\nproduct-codes\nprofile\n" +
		"public-hostname\npublic-ipv4\npublic-keys/\nramdisk-id\nreservation-id\nsecurity-groups"
	var wg sync.WaitGroup
	got := make([]string, 16)
	for i := range got {
		wg.Go(func() { got[i] = serve(srv, http.MethodGet, "/2009-04-04/meta-data/", "127.0.0.2:1").Body.String() })
	}
	wg.Wait()
	for i, g := range got {
		if g != want {
			t.Fatalf("request %d: %q, want %q", i, g, want)
		}
	}
}
