package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/imds-proxy/imds-proxy/internal/awssource"
)

// fakeSTS hands out credentials named after the role assumed, and counts
// the calls.
type fakeSTS struct {
	mu    sync.Mutex
	calls int
}

func (f *fakeSTS) AssumeRole(_ context.Context, in *sts.AssumeRoleInput, _ ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	role := aws.ToString(in.RoleArn)
	role = role[strings.LastIndexByte(role, '/')+1:]
	return &sts.AssumeRoleOutput{
		Credentials: &ststypes.Credentials{AccessKeyId: aws.String("ASIA" + strings.ToUpper(role)), SecretAccessKey: aws.String("secret-" + role),
			SessionToken: aws.String("token-" + role), Expiration: aws.Time(time.Now().Add(time.Hour))},
		AssumedRoleUser: &ststypes.AssumedRoleUser{Arn: aws.String("arn:aws:sts::111122223333:assumed-role/" + role + "/" + aws.ToString(in.RoleSessionName))},
	}, nil
}

func (f *fakeSTS) GetSessionToken(context.Context, *sts.GetSessionTokenInput, ...func(*sts.Options)) (*sts.GetSessionTokenOutput, error) {
	panic("GetSessionToken: every tenant of this test assumes a role")
}

func (f *fakeSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Account: aws.String("444455556666"), Arn: aws.String("arn:aws:iam::444455556666:user/dev")}, nil
}

// listenLog reads the proxy's log as it is written and reports each
// listener's address.
type listenLog struct {
	w     *io.PipeWriter
	addrs chan [2]string // listener kind, address
	mu    sync.Mutex
	msgs  []string // every message, for count
}

func newListenLog() *listenLog {
	r, w := io.Pipe()
	l := &listenLog{w: w, addrs: make(chan [2]string, 8)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var line struct{ Message, Listener, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			if line.Message == "listening" {
				l.addrs <- [2]string{line.Listener, line.Addr}
			}
			l.mu.Lock()
			l.msgs = append(l.msgs, line.Message)
			l.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return l
}

func (l *listenLog) Write(p []byte) (int, error) { return l.w.Write(p) }

// count is how many messages so far contain substr.
func (l *listenLog) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

// TestServeInProcess drives the whole serving path through runWith, with
// AWS replaced by a fake STS: each tenant's address gets its own role's
// credentials, an unknown address nothing, and cancelling the context
// stops the proxy cleanly.
func TestServeInProcess(t *testing.T) {
	if l, err := net.Listen("tcp", "127.0.0.21:0"); err != nil {
		t.Skipf("127.0.0.21 is not a local address here: %v", err)
	} else {
		_ = l.Close()
	}
	config := filepath.Join(t.TempDir(), "c.yaml")
	write(t, config, `server: {listen: ["127.0.0.1:0"], admin_listen: "127.0.0.1:0"}
defaults: {credentials: {profile: dev}}
tenants:
  - {name: web, sources: [127.0.0.21], credentials: {role_arn: "arn:aws:iam::111122223333:role/web"}}
  - {name: worker, sources: [127.0.0.22], credentials: {role_arn: "arn:aws:iam::111122223333:role/worker"}}
`)
	fake := &fakeSTS{}
	d := deps{profiles: func(_ context.Context, name string) (*awssource.Profile, error) {
		return &awssource.Profile{Name: name, STS: fake,
			Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLEKEY000001", "not-a-secret", "")}, nil
	}}
	imdsAddr, _ := startWith(t, d, "--config", config)

	get := func(src, path string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}}
		resp, err := c.Get("http://" + imdsAddr + path)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", path, src, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for src, role := range map[string]string{"127.0.0.21": "web", "127.0.0.22": "worker"} {
		code, body := get(src, "/latest/meta-data/iam/security-credentials/"+role)
		var doc struct{ Code, AccessKeyId string }
		if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil || doc.Code != "Success" || doc.AccessKeyId != "ASIA"+strings.ToUpper(role) {
			t.Errorf("credentials from %s: %d %s, want %s's", src, code, body, role)
		}
	}
	if code, body := get("127.0.0.23", "/latest/meta-data/instance-id"); code != http.StatusForbidden {
		t.Errorf("an unknown source got %d %q, want 403", code, body)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.calls != 2 {
		t.Errorf("%d AssumeRole calls, want 2: one per role, prefetched and cached", fake.calls)
	}
}

// pollHealthy waits until url answers 200.
func pollHealthy(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200 (last: %v)", url, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
