package handlers

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// route is what a request asked for, coarsely: the label that keeps
// request metrics few and meaningful.
type route uint8

const (
	routeOther route = iota
	routeToken
	routeListing
	routeMetadata
	routeCredentials
	routeUserData
	routeDynamic
	routeContainer
	numRoutes
)

var routeNames = [numRoutes]string{"other", "token", "listing", "metadata", "credentials", "user-data", "dynamic", "container"}

// The statuses this server answers, and the IMDS versions of a request.
var (
	statusCodes  = [...]int{200, 400, 401, 403, 404, 405, 429, 500, 503}
	versionNames = [...]string{"v1", "v2", "container"}
)

const numStatuses = len(statusCodes) + 1 // the last counts anything else

func statusIndex(code int) int {
	for i, c := range statusCodes {
		if c == code {
			return i
		}
	}
	return len(statusCodes)
}

// requestCounts counts one tenant's requests: one counter for each
// (route, status, IMDS version) the tenant was answered, on a list that
// only grows. A request costs a walk of a few nodes and one atomic add: no
// label lookup, no lock. A tenant is answered three or four such triples;
// an array of every route's counters by status and version cost 240 bytes
// a route (0.75 KB a tenant after a load of every tenant), a node costs 32.
type requestCounts struct{ head atomic.Pointer[requestCount] }

type requestCount struct {
	n    atomic.Uint64
	next *requestCount // set before the node is published, never after
	key  countKey
}

// countKey is a route, an index in statusCodes (numStatuses-1: any other
// status) and an index in versionNames.
type countKey struct{ route, status, version uint8 }

func (c *requestCounts) add(x *exchange) {
	k := countKey{uint8(x.route), uint8(statusIndex(x.answered())), uint8(x.version())}
	for {
		head := c.head.Load()
		for n := head; n != nil; n = n.next {
			if n.key == k {
				n.n.Add(1)
				return
			}
		}
		n := &requestCount{next: head, key: k}
		n.n.Store(1)
		if c.head.CompareAndSwap(head, n) {
			return
		}
		// Another request added a node first: it may be this key's.
	}
}

// each calls f with every counter of c.
func (c *requestCounts) each(f func(k countKey, n uint64)) {
	for n := c.head.Load(); n != nil; n = n.next {
		f(n.key, n.n.Load())
	}
}

// Metrics are the server's Prometheus metrics.
type Metrics struct {
	registry   *prometheus.Registry
	upstream   *prometheus.HistogramVec
	failures   *prometheus.CounterVec
	unknown    atomic.Uint64
	refused    atomic.Uint64 // connections over a source's cap or the ceiling
	reaped     atomic.Uint64 // idle connections closed to admit new ones
	suppressed atomic.Uint64 // log lines about unknown sources held back
}

var (
	descRequests = prometheus.NewDesc("imds_proxy_requests_total",
		"Requests answered, by tenant, route, status and IMDS version (v1, v2, container).",
		[]string{"tenant", "route", "status", "imds"}, nil)
	descUnknown = prometheus.NewDesc("imds_proxy_unknown_source_rejections_total",
		"Requests refused because no tenant lists their source address.", nil, nil)
	descTokens = prometheus.NewDesc("imds_proxy_tokens_live",
		"IMDSv2 session tokens held, by tenant.", []string{"tenant"}, nil)
	descExpiry = prometheus.NewDesc("imds_proxy_credentials_expiry_seconds",
		"Seconds until the tenant's served credentials expire (negative: none valid).", []string{"tenant"}, nil)
	descRefreshes = prometheus.NewDesc("imds_proxy_credential_refreshes_total",
		"Credential fetches from upstream for the tenant's credential spec (shared specs share counts).", []string{"tenant"}, nil)
	descRefreshFailures = prometheus.NewDesc("imds_proxy_credential_refresh_failures_total",
		"Failed credential fetches for the tenant's credential spec.", []string{"tenant"}, nil)
	descRefused = prometheus.NewDesc("imds_proxy_connections_refused_total",
		"Connections closed at once because their source held its limit of open connections, or the server its ceiling, and none of theirs was idle.", nil, nil)
	descReaped = prometheus.NewDesc("imds_proxy_connections_reaped_total",
		"Idle keep-alive connections closed to admit a new connection at a source's limit or the server's ceiling.", nil, nil)
	descOpen = prometheus.NewDesc("imds_proxy_connections_open",
		"Connections open on the IMDS and container listeners, by whether a tenant lists their source.", []string{"source"}, nil)
	descMaxConns = prometheus.NewDesc("imds_proxy_connections_max",
		"The ceiling of open connections (Options.MaxConnections), and the share of it sources no tenant lists may hold.", []string{"source"}, nil)
	descSuppressed = prometheus.NewDesc("imds_proxy_log_lines_suppressed_total",
		"Log lines about sources no tenant lists left out past their rate limit, so that tenants' lines are never lost to a flood.", nil, nil)
	descSources = prometheus.NewDesc("imds_proxy_sources_tracked",
		"Source addresses with rate-limit state held (bounded).", nil, nil)
	descReady = prometheus.NewDesc("imds_proxy_tenant_ready",
		"1 when the tenant has valid credentials and, if mirrored, a mirror.", []string{"tenant"}, nil)
)

// NewMetrics makes the metrics a Server will fill; made before it so that
// upstream calls made while the server starts are counted too.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imds_proxy_upstream_call_seconds",
			Help:    "Latency of calls to AWS (credentials: STS/SSO; mirror: EC2), successful or not.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imds_proxy_upstream_failures_total",
			Help: "Failed calls to AWS, by kind and error code.",
		}, []string{"kind", "code"}),
	}
	m.registry.MustRegister(m.upstream, m.failures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// attach adds the server's per-tenant metrics; once per Metrics.
func (m *Metrics) attach(s *Server) error {
	return m.registry.Register(collector{s})
}

// ObserveUpstream records one call to AWS; code is the error code ("" on
// success).
func (m *Metrics) ObserveUpstream(kind string, took time.Duration, code string) {
	outcome := "ok"
	if code != "" {
		outcome = "error"
		m.failures.WithLabelValues(kind, code).Inc()
	}
	m.upstream.WithLabelValues(kind, outcome).Observe(took.Seconds())
}

// collector renders the per-tenant metrics at scrape time from the live
// state, so that a removed tenant's series disappear with it.
type collector struct{ s *Server }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRefused, descReaped, descOpen, descMaxConns, descSuppressed, descSources, descRequests, descUnknown, descTokens, descExpiry, descRefreshes, descRefreshFailures, descReady} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	ch <- prometheus.MustNewConstMetric(descUnknown, prometheus.CounterValue, float64(s.metrics.unknown.Load()))
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(s.metrics.refused.Load()))
	ch <- prometheus.MustNewConstMetric(descReaped, prometheus.CounterValue, float64(s.metrics.reaped.Load()))
	ch <- prometheus.MustNewConstMetric(descSuppressed, prometheus.CounterValue, float64(s.metrics.suppressed.Load()))
	open, unknown := s.ceiling.counts()
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(open-unknown), "known")
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(unknown), "unknown")
	ch <- prometheus.MustNewConstMetric(descMaxConns, prometheus.GaugeValue, float64(s.ceiling.max), "all")
	ch <- prometheus.MustNewConstMetric(descMaxConns, prometheus.GaugeValue, float64(s.ceiling.maxUnknown), "unknown")
	ch <- prometheus.MustNewConstMetric(descSources, prometheus.GaugeValue, float64(s.sources.Len()))
	now := s.opts.Now()
	for _, si := range s.state.Load().ordered {
		name := si.tenant.Name
		si.kept.counts.each(func(k countKey, n uint64) {
			if n == 0 {
				return
			}
			status := "other"
			if int(k.status) < len(statusCodes) {
				status = itoa(statusCodes[k.status])
			}
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n),
				name, routeNames[k.route], status, versionNames[k.version])
		})
		ch <- prometheus.MustNewConstMetric(descTokens, prometheus.GaugeValue, float64(si.kept.tokens.Load().Len()), name)
		st := s.tenantState(si)
		if cs := st.Credentials; cs != nil {
			left := -1.0
			if cs.Valid {
				left = cs.Expiration.Sub(now).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(descExpiry, prometheus.GaugeValue, left, name)
			ch <- prometheus.MustNewConstMetric(descRefreshes, prometheus.CounterValue, float64(cs.Fetches), name)
			ch <- prometheus.MustNewConstMetric(descRefreshFailures, prometheus.CounterValue, float64(cs.Failures), name)
		}
		ready := 1.0
		if len(problems(si, st)) > 0 {
			ready = 0
		}
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, ready, name)
	}
}
