package liveconfig

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/rs/zerolog"

	"github.com/imds-proxy/imds-proxy/internal/kubernetes"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// KubeClients are the API server's clients a kubernetes: block needs.
type KubeClients struct {
	Pods       kubernetes.PodClient
	Namespaces kubernetes.NamespaceClient
}

// ConnectKube makes the clients of the API server that kubeconfig names
// ("": the pod's in-cluster service account). Production uses
// kubernetes.Connect (Connect); tests, client-go's fake clientset.
type ConnectKube func(kubeconfig string) (KubeClients, error)

// Connect is ConnectKube over kubernetes.Connect.
func Connect(kubeconfig string) (KubeClients, error) {
	api, err := kubernetes.Connect(kubeconfig)
	if err != nil {
		return KubeClients{}, err
	}
	return KubeClients{Pods: api.Pods(), Namespaces: api.Namespaces()}, nil
}

// Pods combines a configuration (the file's, with its containers) with the
// pods of this node and the cluster's namespaces, followed through the API
// server while the configuration has a kubernetes: block, and applies the
// combination (tenants.Config.WithPods) under one mutex. A configuration
// without the block is applied as it is, and no API server is asked
// anything.
type Pods struct {
	log     zerolog.Logger
	nodeEnv string // NODE_NAME: the node when kubernetes.node_name is empty
	connect ConnectKube
	apply   func(*tenants.Config)

	mu         sync.Mutex
	file       *tenants.Config
	target     kubeTarget // what is followed; zero: nothing
	gen        int        // of the watchers that may report; older ones are ignored
	pods       []tenants.Pod
	namespaces []tenants.Namespace
	podsKnown  bool // the first list of each is in
	nsKnown    bool
	warned     map[string]bool   // the warnings logged, while they hold
	served     map[string]string // derived tenant → its sources, as last logged
	wake       chan struct{}
	applied    chan struct{} // closed, and replaced, when pods are applied
}

// kubeTarget is the API server and node a configuration follows.
type kubeTarget struct {
	kubeconfig string
	node       string
}

// NewPods starts from cfg, which is already applied; nodeEnv is NODE_NAME.
func NewPods(log zerolog.Logger, nodeEnv string, connect ConnectKube, cfg *tenants.Config, apply func(*tenants.Config)) *Pods {
	p := &Pods{log: log, nodeEnv: nodeEnv, connect: connect, apply: apply, file: cfg,
		warned: map[string]bool{}, served: map[string]string{}, wake: make(chan struct{}, 1), applied: make(chan struct{})}
	p.target = p.targetOf(cfg)
	return p
}

// NodeName is the node cfg's pods are on: kubernetes.node_name, else
// nodeEnv (NODE_NAME); "" when cfg has no kubernetes: block or neither
// names one.
func NodeName(cfg *tenants.Config, nodeEnv string) string {
	if cfg.Kubernetes == nil {
		return ""
	}
	return cmp.Or(cfg.Kubernetes.NodeName, nodeEnv)
}

// targetOf is what cfg needs followed; the zero kubeTarget: nothing, and
// said once when cfg has a kubernetes: block that names no node.
func (p *Pods) targetOf(cfg *tenants.Config) kubeTarget {
	node := NodeName(cfg, p.nodeEnv)
	if node == "" {
		if cfg.Kubernetes != nil && p.target != (kubeTarget{}) {
			p.log.Error().Msg("kubernetes: no node to follow: set kubernetes.node_name, or NODE_NAME (from spec.nodeName); no pod is served")
		}
		return kubeTarget{}
	}
	return kubeTarget{kubeconfig: cfg.Kubernetes.Kubeconfig, node: node}
}

// SetFile applies a new configuration with the pods running now; a new API
// server or node restarts the watchers, whose first lists are awaited
// afresh.
func (p *Pods) SetFile(cfg *tenants.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.file = cfg
	if t := p.targetOf(cfg); t != p.target {
		p.target, p.pods, p.namespaces, p.podsKnown, p.nsKnown = t, nil, nil, false, false
		p.gen++
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	p.applyLocked()
}

// podsChanged takes the node's pods reported by the watchers of gen.
func (p *Pods) podsChanged(gen int, running []kubernetes.RunningPod) {
	ps := make([]tenants.Pod, len(running))
	for i, r := range running {
		ps[i] = tenants.Pod{UID: r.UID, Namespace: r.Namespace, Name: r.Name, Hostname: r.Hostname,
			ServiceAccount: r.ServiceAccount, Annotations: r.Annotations, Addrs: r.Addrs}
	}
	p.changed(gen, func() { p.pods, p.podsKnown = ps, true })
}

// namespacesChanged takes the namespaces reported by the watchers of gen.
func (p *Pods) namespacesChanged(gen int, running []kubernetes.RunningNamespace) {
	ns := make([]tenants.Namespace, len(running))
	for i, r := range running {
		ns[i] = tenants.Namespace{Name: r.Name, Annotations: r.Annotations}
	}
	p.changed(gen, func() { p.namespaces, p.nsKnown = ns, true })
}

func (p *Pods) changed(gen int, set func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen {
		return // a watcher of what is no longer followed
	}
	set()
	p.applyLocked()
	close(p.applied) // after apply: a waiter woken now finds it served
	p.applied = make(chan struct{})
}

// knownLocked reports whether the pods and namespaces followed are known:
// until both first lists are in, no pod is served, so that no claim is
// refused for want of its namespace.
func (p *Pods) knownLocked() bool {
	return p.target != (kubeTarget{}) && p.podsKnown && p.nsKnown
}

func (p *Pods) applyLocked() {
	if p.file.Kubernetes == nil {
		p.apply(p.file)
		return
	}
	var pods []tenants.Pod
	var ns []tenants.Namespace
	if p.knownLocked() {
		pods, ns = p.pods, p.namespaces
	}
	cfg, warnings := p.file.WithPods(pods, ns)
	p.logWarnings(warnings)
	p.logServed(cfg)
	p.apply(cfg)
}

// logWarnings logs each warning once while it holds: a pod whose claim is
// refused is one line when it appears (or its claim changes), not one at
// every change of another pod, nor at each of its requests. What is
// remembered is only what holds now.
func (p *Pods) logWarnings(warnings []string) {
	now := make(map[string]bool, len(warnings))
	for _, w := range warnings {
		if !p.warned[w] {
			p.log.Warn().Str("from", "kubernetes").Msg(w)
		}
		now[w] = true
	}
	p.warned = now
}

// logServed logs each tenant whose pods' addresses changed: the pods'
// own instances as they come and go, and mirrored tenants' pods.
func (p *Pods) logServed(cfg *tenants.Config) {
	now := map[string]string{}
	for i, t := range cfg.Tenants {
		base := 0
		if i < len(p.file.Tenants) {
			base = len(p.file.Tenants[i].Sources)
		}
		added := t.Sources[base:]
		if len(added) == 0 {
			continue
		}
		s := fmt.Sprint(added)
		now[t.Name] = s
		if p.served[t.Name] != s {
			p.log.Info().Str("tenant", t.Name).Str("instance", t.Instance.ID).Interface("pods", added).Msg("pod sources changed")
		}
	}
	for name := range p.served {
		if _, ok := now[name]; !ok {
			p.log.Info().Str("tenant", name).Msg("pod sources removed")
		}
	}
	p.served = now
}

// Run follows the API server and node the configuration names, if any,
// until ctx ends; a reload that changes either, or adds or removes the
// kubernetes: block, restarts or stops the watchers.
func (p *Pods) Run(ctx context.Context) {
	var stop context.CancelFunc = func() {}
	var running sync.WaitGroup
	following := -1 // the generation of the running watchers
	for {
		p.mu.Lock()
		target, gen := p.target, p.gen
		p.mu.Unlock()
		if gen != following {
			// Unlocked: an old watcher may be waiting for the mutex to
			// report, which its generation makes void.
			stop()
			running.Wait()
			following = gen
			stop = func() {}
			if target != (kubeTarget{}) {
				stop = p.start(ctx, &running, gen, target)
			}
		}
		select {
		case <-ctx.Done():
			stop()
			running.Wait()
			return
		case <-p.wake:
		}
	}
}

// start runs the pod and namespace watchers of target, reporting as gen.
func (p *Pods) start(ctx context.Context, running *sync.WaitGroup, gen int, target kubeTarget) context.CancelFunc {
	clients, err := p.connect(target.kubeconfig)
	if err != nil {
		p.log.Error().Err(err).Msg("kubernetes: cannot reach the API server; no pod is served until the configuration changes")
		return func() {}
	}
	wctx, cancel := context.WithCancel(ctx)
	pw := &kubernetes.Watcher{Pods: clients.Pods, Node: target.node,
		Changed: func(ps []kubernetes.RunningPod) { p.podsChanged(gen, ps) }}
	nw := &kubernetes.NamespaceWatcher{Namespaces: clients.Namespaces,
		Changed: func(ns []kubernetes.RunningNamespace) { p.namespacesChanged(gen, ns) }}
	running.Add(2)
	go func() { defer running.Done(); pw.Run(wctx) }()
	go func() { defer running.Done(); nw.Run(wctx) }()
	p.log.Info().Str("node", target.node).Str("kubeconfig", cmp.Or(target.kubeconfig, "in-cluster")).Msg("following this node's pods")
	return cancel
}

// WaitForSource closes the start race for handlers.Options.WaitForSource: a
// pod's first request can arrive before the watch has brought the pod (or,
// at start, before the first lists are in). While pods are followed, it
// blocks until a pod holds addr (its configuration is applied by then;
// true) or ctx ends (false). It returns false at once when no pod is
// followed, and true at once when a pod already holds addr: a pod that
// claims no tenant, or one its namespace refuses, is then refused (403)
// without waiting.
func (p *Pods) WaitForSource(ctx context.Context, addr netip.Addr) bool {
	return waitForSource(ctx, func() (following, held bool, applied <-chan struct{}) {
		p.mu.Lock()
		defer p.mu.Unlock()
		following = p.target != (kubeTarget{}) && p.file.Kubernetes != nil
		return following, p.knownLocked() && p.holdsLocked(addr), p.applied
	})
}

func (p *Pods) holdsLocked(addr netip.Addr) bool {
	for _, pod := range p.pods {
		if slices.Contains(pod.Addrs, addr) {
			return true
		}
	}
	return false
}
