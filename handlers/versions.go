package handlers

import (
	"slices"
	"strings"
)

// versions are the metadata versions a real instance lists at "/", oldest
// first. Dated versions compare as strings: "1.0" sorts before every date,
// and "latest" after.
var versions = []string{
	"1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
	"2008-02-01", "2008-09-01", "2009-04-04", "2011-01-01", "2011-05-01", "2012-01-12",
	"2014-02-25", "2014-11-05", "2015-10-20", "2016-04-19", "2016-06-30", "2016-09-02",
	"2018-03-28", "2018-08-17", "2018-09-24", "2019-10-01", "2020-10-27", "2021-01-03",
	"2021-03-23", "2021-07-15", "2022-09-24", "latest",
}

// versionListing is the body of GET /.
var versionListing = []byte(strings.Join(versions, "\n"))

func knownVersion(v string) bool { return slices.Contains(versions, v) }

// introduced is the version each category first appeared in, keyed by its
// path below the version root, with "mac" standing for an interface's MAC.
// The meta-data/ and dynamic/ rows are the "Version when category was
// introduced" column of the tables "Instance metadata categories" and
// "Dynamic data categories" in the Amazon EC2 User Guide. A row covers
// everything below it (block-device-mapping/ebsN, tags/instance/<key>,
// iam/security-credentials/<role>). A dated version serves a category
// from the first version it lists that is not older than the row: 2020-08-24
// (placement/region) from 2020-10-27, 2020-11-01 (network-card-index) from
// 2021-01-03. latest serves everything.
var introduced = map[string]string{
	meta + "ami-id":                             "1.0",
	meta + "ami-launch-index":                   "1.0",
	meta + "ami-manifest-path":                  "1.0",
	meta + "ancestor-ami-ids":                   "2007-10-10",
	meta + "autoscaling/target-lifecycle-state": "2021-07-15",
	meta + "block-device-mapping":               "2007-12-15", // ami, ebsN, ephemeralN, root, swap
	meta + "elastic-gpus/associations":          "2016-11-30",
	meta + "elastic-inference/associations":     "2018-11-29",
	meta + "events/maintenance/history":         "2018-08-17",
	meta + "events/maintenance/scheduled":       "2018-08-17",
	meta + "events/recommendations/rebalance":   "2020-10-27",
	meta + "hostname":                           "1.0",
	meta + "iam/info":                           "2012-01-12",
	meta + "iam/security-credentials":           "2012-01-12",
	meta + "identity-credentials":               "2018-05-23", // ec2/info, ec2/security-credentials/ec2-instance
	meta + "instance-action":                    "2008-09-01",
	meta + "instance-id":                        "1.0",
	meta + "instance-life-cycle":                "2019-10-01",
	meta + "instance-type":                      "2007-08-29",
	meta + "ipv6":                               "2021-01-03",
	meta + "kernel-id":                          "2008-02-01",
	meta + "local-hostname":                     "2007-01-19",
	meta + "local-ipv4":                         "1.0",
	meta + "mac":                                "2011-01-01",
	meta + "metrics/vhostmd":                    "2011-05-01",
	macs + "device-number":                      "2011-01-01",
	macs + "interface-id":                       "2011-01-01",
	macs + "ipv4-associations":                  "2011-01-01",
	macs + "ipv6s":                              "2016-06-30",
	macs + "ipv6-prefix":                        "2021-07-15",
	macs + "local-hostname":                     "2011-01-01",
	macs + "local-ipv4s":                        "2011-01-01",
	macs + "mac":                                "2011-01-01",
	macs + "network-card-index":                 "2020-11-01",
	macs + "owner-id":                           "2011-01-01",
	macs + "public-hostname":                    "2011-01-01",
	macs + "public-ipv4s":                       "2011-01-01",
	macs + "security-groups":                    "2011-01-01",
	macs + "security-group-ids":                 "2011-01-01",
	macs + "subnet-id":                          "2011-01-01",
	macs + "subnet-ipv4-cidr-block":             "2011-01-01",
	macs + "subnet-ipv6-cidr-blocks":            "2016-06-30",
	macs + "vpc-id":                             "2011-01-01",
	macs + "vpc-ipv4-cidr-block":                "2011-01-01",
	macs + "vpc-ipv4-cidr-blocks":               "2016-06-30",
	macs + "vpc-ipv6-cidr-blocks":               "2016-06-30",
	meta + "placement/availability-zone":        "2008-02-01",
	meta + "placement/availability-zone-id":     "2019-10-01",
	meta + "placement/group-name":               "2020-08-24",
	meta + "placement/host-id":                  "2020-08-24",
	meta + "placement/partition-number":         "2020-08-24",
	meta + "placement/region":                   "2020-08-24",
	meta + "product-codes":                      "2007-03-01",
	meta + "public-hostname":                    "2007-01-19",
	meta + "public-ipv4":                        "2007-01-19",
	meta + "public-keys":                        "1.0", // public-keys/0/openssh-key
	meta + "ramdisk-id":                         "2007-10-10",
	meta + "reservation-id":                     "1.0",
	meta + "security-groups":                    "1.0",
	meta + "services/domain":                    "2014-02-25",
	meta + "services/partition":                 "2015-10-20",
	meta + "spot/instance-action":               "2016-11-15",
	meta + "spot/termination-time":              "2014-11-05",
	meta + "tags/instance":                      "2021-03-23",

	"dynamic/fws/instance-monitoring":     "2009-04-04",
	"dynamic/instance-identity/document":  "2009-04-04",
	"dynamic/instance-identity/pkcs7":     "2009-04-04",
	"dynamic/instance-identity/signature": "2009-04-04",

	// Not in the tables: user data is as old as the service; profile and
	// rsa2048 have no row, and are served with their directory, from the
	// version it first appears in.
	"user-data":                         "1.0",
	meta + "profile":                    "1.0",
	"dynamic/instance-identity/rsa2048": "2009-04-04",
}

const (
	meta = "meta-data/"
	macs = meta + "network/interfaces/macs/mac/" // an interface's MAC as "mac"
)

// introducedIn is the listed version from which path is served: its own
// row or its nearest ancestor's, moved up to the first version "/" lists.
// A path without a row is served by latest only: no history is claimed
// for it.
func introducedIn(path string) string {
	if rest, ok := strings.CutPrefix(path, meta+"network/interfaces/macs/"); ok {
		if _, below, found := strings.Cut(rest, "/"); found {
			path = macs + below
		}
	}
	for p := path; p != ""; {
		if v, ok := introduced[p]; ok {
			return listedFrom(v)
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return "latest"
}

// listedFrom is the first version "/" lists that is not older than v.
func listedFrom(v string) string {
	for _, l := range versions {
		if l >= v {
			return l
		}
	}
	return "latest"
}
