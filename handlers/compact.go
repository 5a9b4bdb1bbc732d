package handlers

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"weak"
)

// A rendered catalogue is held by every tenant once asked, for as long as
// it is served: on a host of 10,000 tenants, its size is most of the
// process's. A map of separately allocated entries cost about 22 KB a
// tenant. Here a tenant holds only its values, back to back in one slice;
// the layout (paths, which entry is which, the versions serving each,
// directory listings that name nothing of the tenant's own) is shared by
// every tenant of the same shape. Tenants differ in their MACs and role
// names, which appear in paths: the layout names them by placeholder, and
// lookup puts the placeholder in place of the tenant's own name.

const (
	macsDir = meta + "network/interfaces/macs/"
	roleDir = meta + "iam/security-credentials/"
	// Placeholders never occur in a path asked for: lookup replaces the
	// segments they stand for, and refuses any other there.
	macMark         = '\x00' // followed by the interface's index
	rolePlaceholder = "\x01"
)

func macPlaceholder(i int) string { return string(macMark) + strconv.Itoa(i) }

// names are a tenant's own names that its layout leaves out.
type names struct {
	macs []string // interfaces' MACs, by placeholder index
	role string
}

// real is the name a path segment stands for.
func (n names) real(seg string) string {
	switch {
	case seg == rolePlaceholder:
		return n.role
	case len(seg) > 1 && seg[0] == macMark:
		if i, err := strconv.Atoi(seg[1:]); err == nil && i < len(n.macs) {
			return n.macs[i]
		}
	}
	return seg
}

// realPath is path with its placeholders replaced.
func (n names) realPath(path string) string {
	if !strings.ContainsAny(path, string(macMark)+rolePlaceholder) {
		return path
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = n.real(s)
	}
	return strings.Join(segs, "/")
}

// layout is what tenants of one shape share.
type layout struct {
	index map[string]uint16 // path (with placeholders) -> slot
	slots []slot
}

// slot is one path of a layout.
type slot struct {
	path     string
	since    string // the first version serving it
	kind     kind
	dir      bool
	octet    bool    // application/octet-stream, not text/plain
	children []child // directories: their entries, sorted by name
	// shared is the listing of a directory whose entries name nothing of
	// a tenant's own: the same for every tenant of the layout. nil
	// otherwise: the body is the tenant's.
	shared []byte
	// older are the versions at which a directory gained entries, when
	// there are several, oldest first; the last is where its latest
	// listing starts. The versions before serve listings of their own.
	older []string
}

type child struct {
	name string
	slot uint16
	dir  bool
}

// catalogue is a tenant's whole metadata tree as served, each entry
// knowing the versions it is served by. It is immutable once built, but
// for the listings of dated versions, rendered when first asked.
type catalogue struct {
	layout *layout
	names  names
	data   []byte           // the tenant's bodies, back to back
	ends   []uint32         // slot i's body is data[ends[i-1]:ends[i]]
	long   map[int][]string // Content-Length of bodies past contentLengths
	sig    *lazySignature   // signature, pkcs7 and rsa2048

	mu    sync.Mutex
	dated map[datedKey]*datedListing // older listings rendered so far
}

type datedKey struct {
	slot  uint16
	since string
}

type datedListing struct {
	body   []byte
	length []string
}

// entry is one path of a catalogue as a version serves it.
type entry struct {
	*slot
	body   []byte
	length []string // Content-Length of body
	sig    *lazySignature
}

// route classifies a request for the entry at path, for metrics.
func (e entry) route(path string) route {
	switch {
	case e.dir:
		return routeListing
	case e.kind == roleCredentials:
		return routeCredentials
	case path == "user-data":
		return routeUserData
	case strings.HasPrefix(path, "dynamic/"):
		return routeDynamic
	}
	return routeMetadata
}

// signed is the body of a signature entry; "" when signing failed.
func (e entry) signed() string {
	sig := e.sig.get()
	switch e.kind {
	case pkcs7Doc:
		return sig.PKCS7
	case rsa2048Doc:
		return sig.RSA2048
	}
	return sig.Signature
}

// lookup is the entry at path as version serves it. version must be one
// "/" lists. It allocates nothing for a path of ordinary length.
func (c *catalogue) lookup(path, version string) (entry, bool) {
	key := path
	if rest, ok := strings.CutPrefix(path, macsDir); ok {
		var buf [160]byte
		mac, below, sub := strings.Cut(rest, "/")
		i := slices.Index(c.names.macs, mac)
		if i < 0 {
			return entry{}, false
		}
		b := strconv.AppendInt(append(append(buf[:0], macsDir...), macMark), int64(i), 10)
		if sub {
			b = append(append(b, '/'), below...)
		}
		return c.slotAt(string(b), version)
	}
	if rest, ok := strings.CutPrefix(path, roleDir); ok {
		if rest != c.names.role {
			return entry{}, false
		}
		key = roleDir + rolePlaceholder
	}
	return c.slotAt(key, version)
}

func (c *catalogue) slotAt(key, version string) (entry, bool) {
	i, ok := c.layout.index[key]
	if !ok {
		return entry{}, false
	}
	s := &c.layout.slots[i]
	switch {
	case version < s.since:
		return entry{}, false
	case s.older != nil && version < s.older[len(s.older)-1]:
		d := c.datedListing(i, version)
		return entry{slot: s, body: d.body, length: d.length}, true
	}
	e := entry{slot: s, body: s.shared, sig: c.sig}
	if e.body == nil {
		start := uint32(0)
		if i > 0 {
			start = c.ends[i-1]
		}
		e.body = c.data[start:c.ends[i]]
	}
	e.length = c.contentLength(len(e.body))
	return e, true
}

func (c *catalogue) contentLength(n int) []string {
	if n < len(contentLengths) {
		return contentLengths[n : n+1 : n+1]
	}
	return c.long[n]
}

// datedListing is slot i's listing as version serves it. Each is rendered
// when first asked for: SDKs ask latest, the few tools that ask a dated
// version (cloud-init) ask one.
func (c *catalogue) datedListing(i uint16, version string) *datedListing {
	s := &c.layout.slots[i]
	j := len(s.older) - 1
	for version < s.older[j] { // older[0] is the directory's since: j stays >= 0
		j--
	}
	k := datedKey{i, s.older[j]}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.dated[k]; d != nil {
		return d
	}
	body := c.listing(s, k.since)
	d := &datedListing{body: body, length: []string{strconv.Itoa(len(body))}}
	if c.dated == nil {
		c.dated = map[datedKey]*datedListing{}
	}
	c.dated[k] = d
	return d
}

// listing renders a directory as version serves it: sorted names, "/"
// after sub-directories but at the version root, no trailing newline.
func (c *catalogue) listing(s *slot, version string) []byte {
	return renderListing(c.layout, s, version, c.names)
}

func renderListing(l *layout, s *slot, version string, n names) []byte {
	out := make([]string, 0, len(s.children))
	for _, ch := range s.children {
		if l.slots[ch.slot].since > version {
			continue
		}
		name := n.real(ch.name)
		if ch.dir && s.path != "" {
			name += "/"
		}
		out = append(out, name)
	}
	slices.Sort(out) // real names may sort apart from their placeholders
	return []byte(strings.Join(out, "\n"))
}

// contentLengths are Content-Length header values of bodies up to 4 KB,
// one string each, sliced out so that serving one allocates nothing. It
// is never written after it is made.
var contentLengths = func() []string {
	out := make([]string, 4096)
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}()

// compile dates every entry, renders every directory listing as latest
// serves it, and packs the tree into a catalogue sharing shapes' layout.
func (c tree) compile(n names, sig *lazySignature, shapes *layouts) *catalogue {
	paths := make([]string, 0, len(c))
	for path := range c {
		c.date(path)
		paths = append(paths, path)
	}
	slices.Sort(paths)
	var key strings.Builder
	for _, p := range paths {
		e := c[p]
		key.WriteString(p)
		key.WriteByte(0xff)
		key.WriteByte(byte(e.kind))
		key.WriteString(strconv.FormatBool(e.dir) + strconv.FormatBool(e.listing) + e.contentType)
		key.WriteByte(0xfe)
	}
	l := shapes.get(key.String(), func() *layout { return c.layout(paths) })
	cat := &catalogue{layout: l, names: n, sig: sig, ends: make([]uint32, len(paths))}
	bodies := make([][]byte, len(l.slots))
	size := 0
	for i := range l.slots {
		s := &l.slots[i]
		e := c[s.path]
		bodies[i] = e.body
		if s.dir && !e.listing {
			bodies[i] = nil
			if s.shared == nil {
				bodies[i] = renderListing(l, s, "latest", n)
			}
		}
		size += len(bodies[i])
	}
	cat.data = make([]byte, 0, size) // exactly: held as long as the tenant is served
	for i, body := range bodies {
		cat.data = append(cat.data, body...)
		cat.ends[i] = uint32(len(cat.data))
		if len(body) >= len(contentLengths) {
			if cat.long == nil {
				cat.long = map[int][]string{}
			}
			cat.long[len(body)] = []string{strconv.Itoa(len(body))}
		}
	}
	return cat
}

// layout makes the layout of the tree's paths, sorted.
func (c tree) layout(paths []string) *layout {
	l := &layout{index: make(map[string]uint16, len(paths)), slots: make([]slot, len(paths))}
	for i, p := range paths {
		l.index[p] = uint16(i)
	}
	for i, p := range paths {
		e := c[p]
		s := &l.slots[i]
		*s = slot{path: p, since: e.since, kind: e.kind, dir: e.dir, octet: e.contentType == octetStream}
		if !e.dir || e.listing {
			continue
		}
		for name, isDir := range e.children {
			s.children = append(s.children, child{name: name, slot: l.index[join(p, name)], dir: isDir})
		}
		slices.SortFunc(s.children, func(a, b child) int { return strings.Compare(a.name, b.name) })
		dates := make([]string, 0, len(s.children))
		for _, ch := range s.children {
			dates = append(dates, c[join(p, ch.name)].since)
		}
		slices.Sort(dates)
		if dates = slices.Compact(dates); len(dates) > 1 {
			s.older = dates
		}
	}
	for i := range l.slots {
		s := &l.slots[i]
		if s.dir && s.children != nil && !personalListing(s) {
			s.shared = renderListing(l, s, "latest", names{})
		}
	}
	return l
}

func personalListing(s *slot) bool {
	for _, ch := range s.children {
		if ch.name[0] == macMark || ch.name == rolePlaceholder {
			return true
		}
	}
	return false
}

// layouts are the layouts in use, by shape, so that tenants of one shape
// share one. A layout no catalogue holds any more is collected; its entry
// is dropped when the map has doubled since it was last swept.
type layouts struct {
	mu    sync.Mutex
	byKey map[string]weak.Pointer[layout]
	swept int
}

// get is the layout of shape key, made by build if none is in use. A nil
// layouts shares nothing.
func (r *layouts) get(key string, build func() *layout) *layout {
	if r == nil {
		return build()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := r.byKey[key].Value(); l != nil {
		return l
	}
	l := build()
	if r.byKey == nil {
		r.byKey = map[string]weak.Pointer[layout]{}
	}
	if len(r.byKey) >= 2*r.swept+64 {
		for k, w := range r.byKey {
			if w.Value() == nil {
				delete(r.byKey, k)
			}
		}
		r.swept = len(r.byKey)
	}
	r.byKey[key] = weak.Make(l)
	return l
}
