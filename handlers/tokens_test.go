package handlers_test

import (
	"crypto/rand"
	"errors"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

const (
	headerToken    = "X-aws-ec2-metadata-token"
	headerTTL      = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	headerTTLLower = "X-aws-ec2-metadata-token-ttl-seconds" // as SDKs spell it
)

// realToken is the shape of a real IMDSv2 token: 56 characters of URL-safe
// base64.
var realToken = regexp.MustCompile(`^[A-Za-z0-9_-]{56}$`)

// TestPutToken is IMDS.md's token table for the PUT.
func TestPutToken(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	tests := []struct {
		name   string
		method string
		path   string
		src    string
		hdr    []string
		status int
	}{
		{name: "ttl 1", path: "/latest/api/token", src: srcFull, hdr: []string{headerTTLLower, "1"}, status: 200},
		{name: "ttl 21600", path: "/latest/api/token", src: srcFull, hdr: []string{headerTTLLower, "21600"}, status: 200},
		{name: "ttl 300 from ipv6", path: "/latest/api/token", src: srcFull6, hdr: []string{headerTTLLower, "300"}, status: 200},
		{name: "tokens required tenant", path: "/latest/api/token", src: srcRequired, hdr: []string{headerTTLLower, "21600"}, status: 200},
		{name: "ttl missing", path: "/latest/api/token", src: srcFull, status: 400},
		{name: "ttl empty", path: "/latest/api/token", src: srcFull, hdr: []string{headerTTLLower, ""}, status: 400},
		{name: "ttl 0", path: "/latest/api/token", src: srcFull, hdr: []string{headerTTLLower, "0"}, status: 400},
		{name: "ttl 21601", path: "/latest/api/token", src: srcFull, hdr: []string{headerTTLLower, "21601"}, status: 400},
		{name: "ttl not a number", path: "/latest/api/token", src: srcFull, hdr: []string{headerTTLLower, "abc"}, status: 400},
		{name: "ttl with plus sign", path: "/latest/api/token", src: srcFull, hdr: []string{headerTTLLower, "+5"}, status: 400},
		{name: "ttl negative", path: "/latest/api/token", src: srcFull, hdr: []string{headerTTLLower, "-1"}, status: 400},
		{name: "ttl fractional", path: "/latest/api/token", src: srcFull, hdr: []string{headerTTLLower, "1.5"}, status: 400},
		{name: "ttl overflowing", path: "/latest/api/token", src: srcFull, hdr: []string{headerTTLLower, "99999999999999999999"}, status: 400},
		{name: "X-Forwarded-For is refused", path: "/latest/api/token", src: srcFull,
			hdr: []string{headerTTLLower, "21600", "X-Forwarded-For", "127.0.0.2"}, status: 403},
		{name: "empty X-Forwarded-For is refused", path: "/latest/api/token", src: srcFull,
			hdr: []string{headerTTLLower, "21600", "X-Forwarded-For", ""}, status: 403},
		{name: "X-Forwarded-For from a trusted proxy is allowed", path: "/latest/api/token", src: srcProxy,
			hdr: []string{headerTTLLower, "21600", "X-Forwarded-For", "127.0.0.2"}, status: 200},
		{name: "version other than latest", path: "/2021-01-03/api/token", src: srcFull, hdr: []string{headerTTLLower, "21600"}, status: 403},
		{name: "unknown version", path: "/2099-01-01/api/token", src: srcFull, hdr: []string{headerTTLLower, "21600"}, status: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(srv, http.MethodPut, tc.path, tc.src, tc.hdr...)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.status != http.StatusOK {
				if got := w.Header().Get(headerTTL); got != "" {
					t.Errorf("refused PUT echoes the TTL header %q", got)
				}
				return
			}
			tok := w.Body.String()
			if !realToken.MatchString(tok) {
				t.Errorf("token %q is not 56 characters of URL-safe base64", tok)
			}
			if got, want := w.Header().Get(headerTTL), tc.hdr[1]; got != want {
				t.Errorf("TTL header %q, want %q echoed", got, want)
			}
			if got := w.Header().Get("Content-Type"); got != "text/plain" {
				t.Errorf("Content-Type %q, want text/plain", got)
			}
			if got := w.Header().Get("Content-Length"); got != "56" {
				t.Errorf("Content-Length %q, want 56", got)
			}
		})
	}
}

// TestTokenMethodNotAllowed: anything but PUT on the token path is 405 with
// an empty body, whatever the tenant's token policy.
func TestTokenMethodNotAllowed(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{})
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodHead, http.MethodDelete, http.MethodPatch} {
		for _, src := range []string{srcFull, srcRequired} {
			t.Run(method+" from "+src, func(t *testing.T) {
				w := serve(srv, method, "/latest/api/token", src, headerTTLLower, "21600")
				if w.Code != http.StatusMethodNotAllowed {
					t.Fatalf("status %d, want 405", w.Code)
				}
				if got := w.Header().Get("Allow"); got != "OPTIONS, PUT" {
					t.Errorf("Allow %q, want %q", got, "OPTIONS, PUT")
				}
				if w.Body.Len() != 0 {
					t.Errorf("body %q, want empty", w.Body)
				}
				if got := w.Header().Get("Content-Length"); got != "0" {
					t.Errorf("Content-Length %q, want 0", got)
				}
			})
		}
	}
}

// TestTokenAuthorization is IMDS.md's token table for GETs.
func TestTokenAuthorization(t *testing.T) {
	srv, clock := newServer(t, testConfig, handlers.Options{})
	full := mint(t, srv, srcFull, "21600")
	required := mint(t, srv, srcRequired, "21600")
	short := mint(t, srv, srcFull, "60")
	relayed := func() string {
		w := serve(srv, http.MethodPut, "/latest/api/token", srcProxy, headerTTLLower, "21600", "X-Forwarded-For", "127.0.0.2")
		return w.Body.String()
	}()
	clock.Advance(100 * time.Second) // short has expired; the others have 21500 s left

	const path = "/latest/meta-data/instance-id"
	tests := []struct {
		name   string
		path   string
		src    string
		token  *string // nil: no token header
		status int
		ttl    string // the remaining-TTL header expected; "" for none
	}{
		{name: "valid token, tokens optional", path: path, src: srcFull, token: &full, status: 200, ttl: "21500"},
		{name: "valid token, tokens required", path: path, src: srcRequired, token: &required, status: 200, ttl: "21500"},
		{name: "valid token on a 404", path: "/latest/meta-data/no-such-path", src: srcFull, token: &full, status: 404, ttl: "21500"},
		{name: "valid token on the version list", path: "/", src: srcFull, token: &full, status: 200, ttl: "21500"},
		{name: "valid token from another address of the tenant", path: path, src: srcFull6, token: &full, status: 200, ttl: "21500"},
		{name: "token minted through a trusted proxy", path: path, src: srcFull, token: &relayed, status: 200, ttl: "21500"},
		{name: "no token, tokens optional", path: path, src: srcFull, status: 200},
		{name: "no token, tokens optional, 404", path: "/latest/meta-data/no-such-path", src: srcFull, status: 404},
		{name: "no token, tokens required", path: path, src: srcRequired, status: 401},
		{name: "no token, tokens required, 404 path", path: "/latest/meta-data/no-such-path", src: srcRequired, status: 401},
		{name: "no token, tokens required, version list", path: "/", src: srcRequired, status: 401},
		{name: "invalid token, tokens optional", path: path, src: srcFull, token: ptr("not-a-token"), status: 401},
		{name: "invalid token, tokens required", path: path, src: srcRequired, token: ptr("not-a-token"), status: 401},
		{name: "empty token", path: path, src: srcFull, token: ptr(""), status: 401},
		{name: "expired token, tokens optional", path: path, src: srcFull, token: &short, status: 401},
		{name: "another tenant's token, tokens required", path: path, src: srcRequired, token: &full, status: 401},
		{name: "another tenant's token, tokens optional", path: path, src: srcFull, token: &required, status: 401},
		{name: "another tenant's token from an unknown source", path: path, src: srcUnknown, token: &full, status: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.token != nil {
				hdr = []string{headerToken, *tc.token}
			}
			w := serve(srv, http.MethodGet, tc.path, tc.src, hdr...)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			got, present := w.Header()[headerTTL]
			switch {
			case tc.ttl == "" && present:
				t.Errorf("%s: %q, want none", headerTTL, got)
			case tc.ttl != "" && (len(got) != 1 || got[0] != tc.ttl):
				t.Errorf("%s: %q, want %q", headerTTL, got, tc.ttl)
			}
			if tc.status == http.StatusUnauthorized {
				if got := w.Body.String(); got != string(readPage(t, "401.html")) {
					t.Errorf("401 body %q", got)
				}
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestTokenCountdown advances the clock through a token's life: the
// remaining-TTL header counts down in whole seconds, and the token dies at
// its TTL exactly.
func TestTokenCountdown(t *testing.T) {
	srv, clock := newServer(t, testConfig, handlers.Options{})
	tok := mint(t, srv, srcFull, "10")
	steps := []struct {
		advance time.Duration
		status  int
		ttl     string
	}{
		{0, 200, "10"},
		{time.Second, 200, "9"},
		{1500 * time.Millisecond, 200, "8"}, // 7.5s left: rounded up
		{6 * time.Second, 200, "2"},
		{1400 * time.Millisecond, 200, "1"}, // its last 100ms: still "1", never "0"
		{100 * time.Millisecond, 401, ""},
		{time.Hour, 401, ""},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		w := serve(srv, http.MethodGet, "/latest/meta-data/instance-id", srcFull, headerToken, tok)
		if w.Code != s.status || w.Header().Get(headerTTL) != s.ttl {
			t.Fatalf("step %d (%s after mint): status %d ttl %q, want %d %q",
				i, clock.Now().Sub(launch), w.Code, w.Header().Get(headerTTL), s.status, s.ttl)
		}
	}
}

// TestPutTokenEntropyFailure: a token that cannot be minted is a 500, never
// a predictable token.
func TestPutTokenEntropyFailure(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{Rand: failingReader{}})
	w := serve(srv, http.MethodPut, "/latest/api/token", srcFull, headerTTLLower, "21600")
	if w.Code != http.StatusInternalServerError || w.Body.Len() != 0 {
		t.Fatalf("status %d body %q, want 500 and no body", w.Code, w.Body)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestTokenStore(t *testing.T) {
	client := netip.MustParseAddr("127.0.0.2")
	t.Run("bounded, oldest evicted first", func(t *testing.T) {
		const max = 16
		clock := newClock()
		s := handlers.NewTokenStore(max, max, clock.Now, rand.Reader)
		var toks []string
		for i := 0; i < max+10; i++ {
			tok, err := s.Mint(client, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, tok)
			if s.Len() > max {
				t.Fatalf("after %d mints Len() = %d, want at most %d", i+1, s.Len(), max)
			}
		}
		for i, tok := range toks {
			_, ok := s.Remaining(tok)
			if want := i >= 10; ok != want {
				t.Errorf("token %d of %d valid = %v, want %v", i, len(toks), ok, want)
			}
		}
	})
	t.Run("bounded through many rounds of expiry", func(t *testing.T) {
		const max = 8
		clock := newClock()
		s := handlers.NewTokenStore(max, max, clock.Now, rand.Reader)
		for i := 0; i < 1000; i++ {
			if _, err := s.Mint(client, time.Duration(1+i%3)*time.Second); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Second)
			if s.Len() > max {
				t.Fatalf("Len() = %d after %d mints, want at most %d", s.Len(), i+1, max)
			}
		}
		last, _ := s.Mint(client, time.Minute)
		if _, ok := s.Remaining(last); !ok {
			t.Fatal("the newest token is not valid")
		}
	})
	t.Run("expiry", func(t *testing.T) {
		clock := newClock()
		s := handlers.NewTokenStore(10, 10, clock.Now, rand.Reader)
		tok, err := s.Mint(client, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if left, ok := s.Remaining(tok); !ok || left != 30*time.Second {
			t.Fatalf("Remaining = %s %v, want 30s true", left, ok)
		}
		clock.Advance(29 * time.Second)
		if left, ok := s.Remaining(tok); !ok || left != time.Second {
			t.Fatalf("after 29s Remaining = %s %v, want 1s true", left, ok)
		}
		clock.Advance(time.Second)
		if _, ok := s.Remaining(tok); ok {
			t.Fatal("token valid at its expiry")
		}
		if s.Len() != 0 {
			t.Fatalf("an expired token that was looked up is still held: Len() = %d", s.Len())
		}
		if _, ok := s.Remaining("never minted"); ok {
			t.Fatal("an unknown token is valid")
		}
	})
	t.Run("unique and shaped like real tokens", func(t *testing.T) {
		s := handlers.NewTokenStore(handlers.DefaultMaxTokens, handlers.DefaultMaxTokens, newClock().Now, rand.Reader)
		seen := map[string]bool{}
		for i := 0; i < 2000; i++ {
			tok, err := s.Mint(client, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if seen[tok] {
				t.Fatalf("token %q minted twice", tok)
			}
			if !realToken.MatchString(tok) {
				t.Fatalf("token %q is not 56 characters of URL-safe base64", tok)
			}
			seen[tok] = true
		}
	})
	t.Run("bounded per source, each source evicting its own", func(t *testing.T) {
		const max, perSource = 12, 4
		s := handlers.NewTokenStore(max, perSource, newClock().Now, rand.Reader)
		src := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}) }
		quiet, err := s.Mint(src(0), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// Three noisy sources, each minting past its bound, then
		// together past the store's.
		var newest []string
		for i := 1; i <= 3; i++ {
			var tok string
			for range 3 * perSource {
				if tok, err = s.Mint(src(i), time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			newest = append(newest, tok)
		}
		for range max {
			if _, err := s.Mint(src(4), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := s.Remaining(quiet); !ok {
			t.Error("the quiet source's token was evicted")
		}
		for i, tok := range newest {
			if _, ok := s.Remaining(tok); !ok {
				t.Errorf("source %d's newest token was evicted by another source", i+1)
			}
		}
		if s.Len() > max {
			t.Fatalf("Len() = %d, want at most %d", s.Len(), max)
		}
	})
	t.Run("entropy failure", func(t *testing.T) {
		s := handlers.NewTokenStore(10, 10, newClock().Now, failingReader{})
		if tok, err := s.Mint(client, time.Minute); err == nil {
			t.Fatalf("Mint without entropy returned %q", tok)
		}
		if s.Len() != 0 {
			t.Fatalf("Len() = %d after a failed mint", s.Len())
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		const max = 64
		clock := newClock()
		s := handlers.NewTokenStore(max, max, clock.Now, rand.Reader)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					tok, err := s.Mint(netip.AddrFrom4([4]byte{127, 0, 0, byte(g)}), time.Duration(1+i%5)*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					s.Remaining(tok)
					if i%50 == 0 {
						clock.Advance(time.Second)
					}
				}
			}()
		}
		wg.Wait()
		if s.Len() > max {
			t.Fatalf("Len() = %d, want at most %d", s.Len(), max)
		}
	})
}

// TestMaxTokensPerTenant checks the server passes its bound to each
// tenant's store, and that one tenant's flood leaves another's tokens alone.
func TestMaxTokensPerTenant(t *testing.T) {
	srv, _ := newServer(t, testConfig, handlers.Options{MaxTokensPerTenant: 5})
	other := mint(t, srv, srcRequired, "600")
	first := mint(t, srv, srcFull, "600")
	for i := 0; i < 20; i++ {
		mint(t, srv, srcFull, strconv.Itoa(600+i))
	}
	if n := srv.Tokens("full").Len(); n > 5 {
		t.Fatalf("full holds %d tokens, want at most 5", n)
	}
	if _, ok := srv.Tokens("full").Remaining(first); ok {
		t.Errorf("full's oldest token survived the flood")
	}
	if _, ok := srv.Tokens("required").Remaining(other); !ok {
		t.Errorf("full's flood evicted required's token")
	}
	if srv.Tokens("no-such-tenant") != nil {
		t.Errorf("Tokens of an unknown tenant is not nil")
	}
}

// TestConcurrentRequests runs the whole server under -race: many clients
// minting and using tokens at once.
func TestConcurrentRequests(t *testing.T) {
	srv, clock := newServer(t, testConfig, handlers.Options{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := []string{srcFull, srcRequired, srcFull6}[g%3]
			for i := 0; i < 50; i++ {
				w := serve(srv, http.MethodPut, "/latest/api/token", src, headerTTLLower, "60")
				if w.Code != http.StatusOK {
					t.Errorf("PUT: %d", w.Code)
					return
				}
				w = serve(srv, http.MethodGet, "/latest/meta-data/", src, headerToken, w.Body.String())
				if w.Code != http.StatusOK {
					t.Errorf("GET: %d", w.Code)
					return
				}
				if i%10 == 0 {
					clock.Advance(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
}

// TestNoisySourceEvictsOnlyItsOwnTokens: the sources of one tenant share
// its token store, and one of them minting in a loop must push out only its
// own tokens, never a sibling's (the report: FIFO at 5,000 per tenant let
// any source evict every other one's).
func TestNoisySourceEvictsOnlyItsOwnTokens(t *testing.T) {
	const quiet, noisy = "127.0.0.1:1", srcFull // both sources of the tenant "full"
	valid := func(srv http.Handler, src, tok string) bool {
		return serve(srv, http.MethodGet, "/latest/meta-data/instance-id", src, headerToken, tok).Code == http.StatusOK
	}
	t.Run("tenant bound", func(t *testing.T) {
		srv, _ := newServer(t, testConfig, handlers.Options{MaxTokensPerTenant: 50})
		sibling := mint(t, srv, quiet, "600")
		var last string
		for range 500 {
			last = mint(t, srv, noisy, "600")
		}
		if !valid(srv, quiet, sibling) {
			t.Fatal("a noisy source evicted its sibling's token")
		}
		if !valid(srv, noisy, last) {
			t.Fatal("the noisy source's newest token is not valid")
		}
		if n := srv.Tokens("full").Len(); n > 50 {
			t.Fatalf("the tenant holds %d tokens, want at most 50", n)
		}
	})
	t.Run("source bound", func(t *testing.T) {
		srv, _ := newServer(t, testConfig, handlers.Options{MaxTokensPerSource: 10})
		sibling := mint(t, srv, quiet, "600")
		first := mint(t, srv, noisy, "600")
		var last string
		for range 10 {
			last = mint(t, srv, noisy, "600")
		}
		if valid(srv, noisy, first) {
			t.Error("the noisy source holds more than its 10 tokens")
		}
		if !valid(srv, noisy, last) || !valid(srv, quiet, sibling) {
			t.Error("a token within its source's bound was evicted")
		}
		if n := srv.Tokens("full").Len(); n != 11 {
			t.Errorf("the tenant holds %d tokens, want 10 + 1", n)
		}
	})
}
