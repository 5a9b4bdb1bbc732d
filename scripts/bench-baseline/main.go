//go:build ignore

// Command bench-baseline is the bare server scripts/bench-wrk.sh compares
// imds-proxy with: a net/http handler that answers every request with the
// bytes and headers imds-proxy sends for GET /latest/meta-data/instance-id
// (or, with --body-file, for another path: a credentials document), on an
// http.Server configured as cmd/imds-proxy's serve configures its own.
// It prints the address it listens on, then serves until killed.
//
//	go build -o bench-baseline scripts/bench-baseline/main.go
//
// The ignore tag keeps it out of ./... : it is a measuring tool, not part
// of the program.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen `address`")
	id := flag.String("instance-id", "i-0a1b2c3d4e5f60001", "the body served")
	bodyFile := flag.String("body-file", "", "serve this `file`'s bytes instead (a credentials document)")
	flag.Parse()

	body := []byte(*id)
	if *bodyFile != "" {
		b, err := os.ReadFile(*bodyFile)
		if err != nil {
			log.Fatal(err)
		}
		body = b
	}
	length := []string{strconv.Itoa(len(body))}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hd := w.Header()
		hd["Server"] = []string{"EC2ws"}
		hd["Content-Type"] = []string{"text/plain"}
		hd["Content-Length"] = length
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	// The settings of cmd/imds-proxy/serve.go, so that only the handler
	// differs.
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ConnContext:       handlers.ConnContext,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	fmt.Fprintln(os.Stdout, l.Addr().String())
	log.Fatal(hs.Serve(l))
}
