package cache

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// fakeEC2 knows some instances by id; any other is not found. Every call
// answers a new copy, as DescribeInstances does.
type fakeEC2 struct {
	mu    sync.Mutex
	calls map[string]int
	state map[string]string // instance id -> its state; none: not found
}

func newFakeEC2() *fakeEC2 {
	return &fakeEC2{calls: map[string]int{}, state: map[string]string{"i-0123456789abcdef0": "running"}}
}

type instanceFunc func(context.Context) (*tenants.Mirrored, error)

func (f instanceFunc) Retrieve(ctx context.Context) (*tenants.Mirrored, error) { return f(ctx) }

func (f *fakeEC2) source(spec *tenants.MirrorSpec) tenants.InstanceSource {
	return instanceFunc(func(context.Context) (*tenants.Mirrored, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls[spec.InstanceID]++
		state := f.state[spec.InstanceID]
		if state == "" {
			return nil, &tenants.UpstreamError{Code: "InstanceNotFound",
				Message: "instance " + spec.InstanceID + " does not exist in " + spec.Region}
		}
		return &tenants.Mirrored{State: state, Instance: tenants.Instance{ID: spec.InstanceID, Type: "t3.small",
			Region: spec.Region, AvailabilityZone: spec.Region + "b", AvailabilityZoneID: "euw1-az2",
			Tags: map[string]string{"State": state}}}, nil
	})
}

func (f *fakeEC2) set(id, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state[id] = state
}

func (f *fakeEC2) n(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

// publications records what the mirrors publish, by tenant.
type publications struct {
	mu sync.Mutex
	by map[string][]*tenants.Tenant
}

func (p *publications) publish(name string, t *tenants.Tenant) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.by[name] = append(p.by[name], t)
	return true
}

func (p *publications) last(name string) (*tenants.Tenant, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.by[name]); n > 0 {
		return p.by[name][n-1], n
	}
	return nil, 0
}

// lockedBuffer is a log refreshers write to while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const mirrorsYAML = `tenants:
  - name: good
    sources: [10.0.0.1]
    instance:
      mirror: {instance_id: i-0123456789abcdef0, region: eu-west-1, refresh: 10m}
      instance_type: t3.large
  - name: wrong
    sources: [10.0.0.2]
    instance:
      mirror: {instance_id: i-0fedcba9876543210, region: eu-west-1, refresh: 10m}
  - name: static
    sources: [10.0.0.3]
`

func parse(t *testing.T, yaml string) []*tenants.Tenant {
	t.Helper()
	cfg, err := tenants.Parse("c.yaml", []byte(yaml), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Tenants
}

func newTestMirrors(t *testing.T, log *lockedBuffer) (*Mirrors, *fakeEC2, *publications) {
	api := newFakeEC2()
	m := NewMirrors(t.Context(), Options{Jitter: func() float64 { return 1 }}, zerolog.New(log), api.source)
	return m, api, &publications{by: map[string][]*tenants.Tenant{}}
}

func TestMirrorsPublishOncePerChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, api, pub := newTestMirrors(t, &lockedBuffer{})
		m.Load(parse(t, mirrorsYAML), pub.publish)
		synctest.Wait()
		got, n := pub.last("good")
		if n != 1 || got.Instance.ID != "i-0123456789abcdef0" || got.Instance.Type != "t3.large" || got.Instance.AvailabilityZoneID != "euw1-az2" {
			t.Fatalf("after the first copy: %d publications, the last %+v; want one, the copy under the static values", n, got)
		}
		time.Sleep(30*time.Minute + time.Second) // three refreshes of the same instance
		if calls := api.n("i-0123456789abcdef0"); calls != 4 {
			t.Fatalf("%d copies in 30m at refresh 10m, want 4", calls)
		}
		if _, n := pub.last("good"); n != 1 {
			t.Fatalf("%d publications of identical copies, want 1", n)
		}
		api.set("i-0123456789abcdef0", "stopped")
		time.Sleep(10 * time.Minute)
		if got, n := pub.last("good"); n != 2 || got.Instance.Tags["State"] != "stopped" {
			t.Fatalf("%d publications after the instance changed, the last tagged %v; want 2, the new copy", n, got.Instance.Tags)
		}
		if _, n := pub.last("wrong"); n != 0 {
			t.Fatalf("a failing mirror published %d times", n)
		}
	})
}

func TestMirrorsViewIsTheLastCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, api, pub := newTestMirrors(t, &lockedBuffer{})
		ts := parse(t, mirrorsYAML)
		good, wrong, static := ts[0], ts[1], ts[2]
		if v := m.View(good); v != nil {
			t.Fatalf("View before any Load = %+v, want nil", v.Instance)
		}
		m.Load(ts, pub.publish)
		synctest.Wait()
		v := m.View(good)
		if v == nil || v.Instance.ID != "i-0123456789abcdef0" || v.Instance.Type != "t3.large" || v.Name != "good" {
			t.Fatalf("View = %+v, want the copy under the tenant's static values", v)
		}
		api.set("i-0123456789abcdef0", "") // terminated and gone: not found
		time.Sleep(time.Hour)
		if v := m.View(good); v == nil || v.Instance.ID != "i-0123456789abcdef0" {
			t.Fatal("the last good copy is not served while EC2 fails")
		}
		if st := m.Entry("good").Status(); !st.Valid || st.LastError == nil {
			t.Fatalf("status %+v, want valid, with the latest error", st)
		}
		if m.View(wrong) != nil || m.View(static) != nil {
			t.Fatal("a never-copied or static tenant has a view")
		}
		// A reloaded tenant that mirrors another instance is not shown
		// with the old instance's copy.
		moved := parse(t, strings.Replace(mirrorsYAML, "i-0123456789abcdef0", "i-0aaaaaaaaaaaaaaa0", 1))[0]
		if v := m.View(moved); v != nil {
			t.Fatalf("View of a tenant now mirroring another instance = %s, want nil", v.Instance.ID)
		}
	})
}

// TestMirrorsReload: a reload that changes only a tenant's static values
// republishes its copy at once, without asking EC2 again; a removed
// tenant's mirror stops.
func TestMirrorsReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, api, pub := newTestMirrors(t, &lockedBuffer{})
		m.Load(parse(t, mirrorsYAML), pub.publish)
		synctest.Wait()
		calls, wrongCalls := api.n("i-0123456789abcdef0"), api.n("i-0fedcba9876543210")
		m.Load(parse(t, strings.Replace(mirrorsYAML, "t3.large", "m5.xlarge", 1)), pub.publish)
		if got, _ := pub.last("good"); got.Instance.Type != "m5.xlarge" || got.Instance.ID != "i-0123456789abcdef0" {
			t.Fatalf("after the reload published %+v, want the copy as m5.xlarge", got.Instance)
		}
		synctest.Wait()
		if api.n("i-0123456789abcdef0") != calls {
			t.Fatalf("the reload called DescribeInstances again (%d calls, was %d)", api.n("i-0123456789abcdef0"), calls)
		}
		m.Load(parse(t, mirrorsYAML[:strings.Index(mirrorsYAML, "  - name: wrong")]), pub.publish)
		time.Sleep(time.Hour)
		if m.Entry("wrong") != nil || api.n("i-0fedcba9876543210") != wrongCalls {
			t.Fatalf("the removed tenant still mirrors: entry %v, %d calls (was %d)", m.Entry("wrong") != nil, api.n("i-0fedcba9876543210"), wrongCalls)
		}
		if _, n := pub.last("good"); n != 3 { // first copy; reload to m5.xlarge; reload back
			t.Fatalf("%d publications, want 3", n)
		}
	})
}

func TestMirrorsFailureLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &lockedBuffer{}
		m, _, pub := newTestMirrors(t, log)
		m.Load(parse(t, mirrorsYAML), pub.publish)
		synctest.Wait()
		st := m.Entry("wrong").Status()
		if st.Valid || st.LastError == nil || !strings.Contains(st.LastError.Error(), "InstanceNotFound: instance i-0fedcba9876543210 does not exist in eu-west-1") {
			t.Fatalf("wrong mirror status %+v", st)
		}
		out := log.String()
		for _, want := range []string{`"tenant":"wrong"`, `"code":"InstanceNotFound"`, "the tenant is not ready", `"message":"instance mirrored"`} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %s:\n%s", want, out)
			}
		}
	})
}
