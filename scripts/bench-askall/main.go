// Command bench-askall asks each of n tenants on 127.x addresses (tenant i
// on 127.(1+i/65536).(i/256%256).(i%256), as scripts/bench-rss.sh
// generates them) a few metadata paths, each from the tenant's own
// address: the load after which every tenant holds its rendered catalogue.
//
//	go run ./scripts/bench-askall --proxy 127.0.0.1:PORT --tenants 10000
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
)

func main() {
	proxy := flag.String("proxy", "", "the proxy's IMDS address")
	n := flag.Int("tenants", 10000, "tenants to ask")
	flag.Parse()
	paths := []string{"/latest/meta-data/instance-id", "/latest/meta-data/", "/latest/dynamic/instance-identity/document", "/latest/meta-data/placement/region"}
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

func ask(proxy string, i int, paths []string) error {
	src := &net.TCPAddr{IP: net.IPv4(127, byte(1+i/65536), byte(i/256%256), byte(i%256))}
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: src}).DialContext}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for _, p := range paths {
		r, err := c.Get("http://" + proxy + p)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("tenant %d %s: %s", i, p, r.Status)
		}
	}
	return nil
}
