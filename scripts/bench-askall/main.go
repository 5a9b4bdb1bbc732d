// Command bench-askall asks each of n tenants on 127.x addresses (tenant i
// on 127.(1+i/65536).(i/256%256).(i%256), as scripts/bench-rss.sh
// generates them) a few metadata paths, each from the tenant's own
// address: the load after which every tenant holds its rendered catalogue.
// With --credentials it also asks what an SDK asks for credentials: the
// role's name, the role's credentials and iam/info.
//
//	go run ./scripts/bench-askall --proxy 127.0.0.1:PORT --tenants 10000 [--credentials]
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
)

func main() {
	proxy := flag.String("proxy", "", "the proxy's IMDS address")
	n := flag.Int("tenants", 10000, "tenants to ask")
	creds := flag.Bool("credentials", false, "ask each tenant's role credentials and iam/info too")
	flag.Parse()
	paths := []string{"/latest/meta-data/instance-id", "/latest/meta-data/", "/latest/dynamic/instance-identity/document", "/latest/meta-data/placement/region"}
	if *creds {
		paths = append(paths, roleDir, roleDir+"{role}", "/latest/meta-data/iam/info")
	}
	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, 1)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				if err := ask(*proxy, i, paths); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range *n {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		fmt.Fprintln(os.Stderr, "bench-askall:", err)
		os.Exit(1)
	default:
	}
}

const roleDir = "/latest/meta-data/iam/security-credentials/"

// ask asks tenant i paths in turn; "{role}" in a path stands for the role
// named in the listing of roleDir, asked before it.
func ask(proxy string, i int, paths []string) error {
	src := &net.TCPAddr{IP: net.IPv4(127, byte(1+i/65536), byte(i/256%256), byte(i%256))}
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: src}).DialContext}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	role := ""
	for _, p := range paths {
		p = strings.ReplaceAll(p, "{role}", role)
		r, err := c.Get("http://" + proxy + p)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		r.Body.Close()
		if err != nil {
			return err
		}
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("tenant %d %s: %s", i, p, r.Status)
		}
		if p == roleDir {
			role = strings.TrimSpace(string(body))
		}
	}
	return nil
}
