//go:build unix

package main

// What a tenant costs in memory: a generated configuration of many tenants
// (each on its own loopback address, as a large shared host has them) is
// parsed and loaded into the server and the credential store as serve
// loads it, and the live heap is divided by the tenants.
//
//	go test -run='^$' -bench=Footprint -benchtime=1x ./cmd/imds-proxy/
//
// The -asked cases first ask every tenant a few paths, as a load across
// the whole host does: each tenant then holds its rendered catalogue (and,
// with -roles, has been served its credentials and iam/info).
//	FOOTPRINT_HEAP=/tmp/heap go test -run='^$' -bench=Footprint/10000 -benchtime=1x ./cmd/imds-proxy/
//
// FOOTPRINT_HEAP writes a heap profile of each loaded configuration to
// that path, suffixed with the benchmark's name (go tool pprof reads it).

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/cache"
	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// manyTenants is a configuration file of n tenants on 127.x addresses;
// withRoles gives each a role of its own through one shared profile.
func manyTenants(n int, withRoles bool) []byte {
	var b strings.Builder
	b.WriteString("defaults:\n  region: eu-west-1\n")
	if withRoles {
		b.WriteString("  credentials: {profile: bench}\n")
	}
	b.WriteString("tenants:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: t%d\n    sources: [\"127.%d.%d.%d\"]\n", i, 1+i/65536, i/256%256, i%256)
		if withRoles {
			fmt.Fprintf(&b, "    credentials: {role_name: r%d}\n", i)
		}
	}
	return []byte(b.String())
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkFootprint reports the live heap per tenant of a loaded
// configuration (heap-bytes/tenant), the configuration's own share
// (config-bytes/tenant) and the goroutines it keeps.
func BenchmarkFootprint(b *testing.B) {
	// serve signs identity documents: a tenant's catalogue then holds what
	// signing needs.
	signer, err := handlers.NewSigner(nil, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	for _, asked := range []bool{false, true} {
		for _, withRoles := range []bool{false, true} {
			for _, n := range []int{1000, 10000} {
				name := fmt.Sprint(n)
				if withRoles {
					name += "-roles"
				}
				if asked {
					name += "-asked"
				}
				b.Run(name, func(b *testing.B) {
					data := manyTenants(n, withRoles)
					for b.Loop() {
						b.StopTimer()
						base := liveHeap()
						goroutines := runtime.NumGoroutine()
						b.StartTimer()
						cfg, err := tenants.Parse("many.yaml", data, time.Now())
						if err != nil {
							b.Fatal(err)
						}
						b.StopTimer()
						parsed := liveHeap()
						ctx, cancel := context.WithCancel(context.Background())
						b.StartTimer()
						creds := newCredentialCache(ctx, benchProfile, nil, zerolog.Nop(), handlers.NewMetrics(), cache.Options{})
						creds.Load(cfg)
						srv, err := handlers.New(cfg, handlers.Options{Credentials: creds, Signer: signer})
						if err != nil {
							b.Fatal(err)
						}
						b.StopTimer()
						if asked {
							askEveryTenant(b, srv, n, withRoles)
						}
						loaded := liveHeap()
						if f := os.Getenv("FOOTPRINT_HEAP"); f != "" {
							writeHeap(b, f+"-"+name)
						}
						b.ReportMetric(float64(parsed-base)/float64(n), "config-bytes/tenant")
						b.ReportMetric(float64(loaded-base)/float64(n), "heap-bytes/tenant")
						b.ReportMetric(float64(runtime.NumGoroutine()-goroutines), "goroutines")
						runtime.KeepAlive(srv)
						runtime.KeepAlive(cfg)
						cancel()
						b.StartTimer()
					}
				})
			}
		}
	}
}

// askEveryTenant asks each of manyTenants' n tenants, from its own
// address, the paths an SDK and ec2-metadata ask most; withRoles, its
// role's credentials and iam/info too.
func askEveryTenant(b *testing.B, srv http.Handler, n int, withRoles bool) {
	paths := []string{"/latest/meta-data/instance-id", "/latest/meta-data/", "/latest/dynamic/instance-identity/document", "/latest/meta-data/placement/region"}
	for i := range n {
		asked := paths
		if withRoles {
			asked = append(slices.Clip(paths), fmt.Sprintf("/latest/meta-data/iam/security-credentials/r%d", i), "/latest/meta-data/iam/info")
		}
		for _, p := range asked {
			r := httptest.NewRequest(http.MethodGet, p, nil)
			r.Host = "169.254.169.254"
			r.RemoteAddr = fmt.Sprintf("127.%d.%d.%d:40000", 1+i/65536, i/256%256, i%256)
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("tenant %d %s: %d %s", i, p, w.Code, w.Body)
			}
			if strings.Contains(p, "/security-credentials/") && !strings.Contains(w.Body.String(), `"Code" : "Success"`) {
				b.Fatalf("tenant %d %s: %s", i, p, w.Body) // IMDS answers 200 with a failure too
			}
		}
	}
}

func writeHeap(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}
