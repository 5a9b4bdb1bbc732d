package handlers

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
//
// Most values are alike across tenants of one shape (the region, the zone,
// the AMI, the VPC, every constant such as ami-manifest-path), and those
// that differ mostly differ in a few bytes inside (a hostname's address, an
// identity document's instance id and address). The layout keeps the
// bodies of the tenant it was made for as common bodies; another tenant
// holds nothing for a body equal to the common one, and for one that
// shares a long prefix and suffix with it only what lies between. Measured
// at 10,000 tenants: 0.4 KB of values a tenant instead of 1.6 KB. A slot
// serving the common body holds not even where its bytes end, only a clear
// bit: of a derived tenant's 59 slots 13 hold bytes, and its values went
// from 308 bytes to 224.

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
	// common is the body as the tenant the layout was made for serves it
	// at latest: every tenant's, for a directory whose entries name
	// nothing of a tenant's own; for others a body tenants serve unless
	// their own differs (catalogue.end says).
	common []byte
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
// for the listings of dated versions, rendered when first asked, and the
// identity document's signatures, made when first asked.
type catalogue struct {
	layout *layout
	names  names
	// data is first a bitmap of the slots that hold bytes of their own
	// (bit i%8 of byte i/8 for slot i; most slots serve their layout's
	// common body and hold none), then where each of those slots' bytes
	// end (ends), then the tenant's own bodies (or their middles) back to
	// back, in one allocation.
	data []byte
	// wide: ends are uint32s, not uint16s; for bodies of 16 KiB and more
	// (user data), rare.
	wide   bool
	owning uint32           // how many slots hold bytes: the count of ends
	long   map[int][]string // Content-Length of bodies past contentLengths
	signer *Signer          // nil: no signatures (their entries are absent)

	mu     sync.Mutex
	dated  map[datedKey]*datedListing // older listings rendered so far
	signed atomic.Pointer[Signature]  // made on the first request for one
}

// A slot's end is where its bytes in data end, counted from the end of
// the ends; they start where the previous owning slot's end. Its top bits
// say how they make its body: commonBody, the slot serves the layout's
// common body and has no bytes (nor an end: its bit in the bitmap is
// clear); splicedBody, they are a spliceHeader and the
// middle of a body that shares the rest with the common one; both
// (splicedTwice), they are a twiceHeader and the two parts of that middle
// around a run it also shares with the common body (an identity document,
// whose instance id and address differ); neither, they are the body. As a
// uint32 the flags are its top bits; as a uint16, its top two, and the
// offset is below narrowLimit.
const (
	commonBody   uint32 = 1 << 31
	splicedBody  uint32 = 1 << 30
	splicedTwice        = commonBody | splicedBody
	endOffset           = splicedBody - 1
	narrowLimit         = 1 << 14
)

// bitmapLen is the length of the bitmap of a layout of n slots.
func bitmapLen(n int) int { return (n + 7) / 8 }

// owner is slot i's place among the slots holding bytes, whose end is the
// rank-th; false when slot i holds none and serves the common body.
func (c *catalogue) owner(i uint16) (rank int, ok bool) {
	w := int(i / 8)
	b := c.data[w]
	if b&(1<<(i%8)) == 0 {
		return 0, false
	}
	rank = bits.OnesCount8(b & (1<<(i%8) - 1))
	k := 0
	for ; k+8 <= w; k += 8 {
		rank += bits.OnesCount64(binary.LittleEndian.Uint64(c.data[k:]))
	}
	for ; k < w; k++ {
		rank += bits.OnesCount8(c.data[k])
	}
	return rank, true
}

// width is the size of an end in data.
func (c *catalogue) width() int {
	if c.wide {
		return 4
	}
	return 2
}

// end is the rank-th end as a uint32, however it is held.
func (c *catalogue) end(rank int) uint32 {
	at := bitmapLen(len(c.layout.slots)) + c.width()*rank
	if c.wide {
		return binary.LittleEndian.Uint32(c.data[at:])
	}
	v := uint32(binary.LittleEndian.Uint16(c.data[at:]))
	return v&(narrowLimit-1) | (v&^(narrowLimit-1))<<16
}

// bodies is where the bodies start in data.
func (c *catalogue) bodies() uint32 {
	return uint32(bitmapLen(len(c.layout.slots)) + c.width()*int(c.owning))
}

// A spliced body's bytes start with the lengths, big-endian uint16s, of
// the prefix and the suffix it shares with the common body; one spliced
// twice's, then with the length of its first part and where the shared
// run starts in the common body and its length.
const (
	spliceHeader = 4
	twiceHeader  = 10
)

// spliceGain is the least count of bytes a body must share with the
// common one to be spliced rather than held whole: below it the header
// and the two more writes serving it costs are not worth the bytes saved.
const spliceGain = 16

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
	// The body is head, body, run, body2 and tail, back to back: all but
	// body are empty but for a spliced body, whose head, tail (and run)
	// are the common body's.
	head, body, run, body2, tail []byte
	length                       []string // Content-Length of the whole body
	cat                          *catalogue
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
	sig := e.cat.signature()
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
	e := c.latest(i)
	e.length = c.contentLength(len(e.head) + len(e.body) + len(e.run) + len(e.body2) + len(e.tail))
	return e, true
}

// latest is slot i's entry as latest serves it, but its length.
func (c *catalogue) latest(i uint16) entry {
	s := &c.layout.slots[i]
	e := entry{slot: s, cat: c}
	rank, ok := c.owner(i)
	if !ok {
		e.body = s.common
		return e
	}
	end := c.end(rank)
	flags := end &^ endOffset
	start := c.bodies()
	if rank > 0 {
		start += c.end(rank-1) & endOffset
	}
	e.body = c.data[start : c.bodies()+end&endOffset]
	if flags == 0 {
		return e
	}
	h := e.body
	u16 := func(j int) int { return int(h[j])<<8 | int(h[j+1]) }
	pre, suf := u16(0), u16(2)
	e.head, e.body, e.tail = s.common[:pre], h[spliceHeader:], s.common[len(s.common)-suf:]
	if flags == splicedTwice {
		n1, at, n := u16(4), u16(6), u16(8)
		own := h[twiceHeader:]
		e.body, e.run, e.body2 = own[:n1], s.common[at:at+n], own[n1:]
	}
	return e
}

// signature signs the identity document once, when first asked: an RSA
// signature costs milliseconds, which thousands of tenants would add to
// every start and reload, while few clients ever ask for one.
func (c *catalogue) signature() Signature {
	if sig := c.signed.Load(); sig != nil {
		return *sig
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if sig := c.signed.Load(); sig != nil {
		return *sig
	}
	sig := c.signer.Sign(c.identityDocument())
	c.signed.Store(&sig)
	return sig
}

// identityDocument is the document signatures sign: the document's entry,
// or, when the tenant's path policy hides it, the signature entries' body
// (buildCatalogueAt puts it there).
func (c *catalogue) identityDocument() []byte {
	for _, p := range []string{identityDocumentPath, identitySignaturePath, identityPKCS7Path, identityRSA2048Path} {
		if i, ok := c.layout.index[p]; ok {
			if e := c.latest(i); len(e.body) > 0 {
				return slices.Concat(e.head, e.body, e.run, e.body2, e.tail)
			}
		}
	}
	return nil
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
func (c tree) compile(n names, sign *Signer, shapes *layouts) *catalogue {
	paths := make([]string, 0, len(c))
	for path := range c {
		c.date(path)
		paths = append(paths, path)
	}
	slices.Sort(paths)
	// The key's exact size, to grow its buffer once: the doubling of a
	// growing one was a quarter of the garbage of a tenant's first request.
	size := 0
	for _, p := range paths {
		e := c[p]
		size += len(p) + 2 + len(strconv.FormatBool(e.dir)) + len(strconv.FormatBool(e.listing)) + len(e.contentType) + 1
	}
	var key strings.Builder
	key.Grow(size)
	for _, p := range paths {
		e := c[p]
		key.WriteString(p)
		key.WriteByte(0xff)
		key.WriteByte(byte(e.kind))
		key.WriteString(strconv.FormatBool(e.dir))
		key.WriteString(strconv.FormatBool(e.listing))
		key.WriteString(e.contentType)
		key.WriteByte(0xfe)
	}
	l := shapes.get(key.String(), func() *layout { return c.layout(paths, n) })
	cat := &catalogue{layout: l, names: n, signer: sign}
	owns := make([]splice, len(l.slots))
	size = 0
	for i := range l.slots {
		s := &l.slots[i]
		o := spliceInto(c.body(l, s, n), s.common)
		size += o.size()
		owns[i] = o
		if len(o.body) >= len(contentLengths) {
			if cat.long == nil {
				cat.long = map[int][]string{}
			}
			cat.long[len(o.body)] = []string{strconv.Itoa(len(o.body))}
		}
	}
	cat.pack(owns, size)
	return cat
}

// pack lays out data for owns, a splice for each slot of c's layout,
// holding size bytes in all.
func (c *catalogue) pack(owns []splice, size int) {
	if size > int(endOffset) {
		panic("handlers: a catalogue of more than 1 GiB") // bodies are bounded far below
	}
	c.wide = size >= narrowLimit
	c.owning = 0
	for _, o := range owns {
		if o.flag != commonBody {
			c.owning++
		}
	}
	width, ends := c.width(), bitmapLen(len(owns))
	head := int(c.bodies())
	// Exactly: held as long as the tenant is served.
	c.data = make([]byte, head, head+size)
	for i, o := range owns {
		if o.flag == commonBody {
			continue
		}
		c.data[i/8] |= 1 << (i % 8)
		c.data = o.append(c.data)
		end := uint32(len(c.data)-head) | o.flag
		if c.wide {
			binary.LittleEndian.PutUint32(c.data[ends:], end)
		} else {
			binary.LittleEndian.PutUint16(c.data[ends:], uint16(end&endOffset|end>>16))
		}
		ends += width
	}
}

// body is slot s's body as latest serves it to the tenant named n.
func (c tree) body(l *layout, s *slot, n names) []byte {
	e := c[s.path]
	if s.dir && !e.listing {
		return renderListing(l, s, "latest", n)
	}
	return e.body
}

// splice is how a tenant holds a body of a layout's slot.
type splice struct {
	body     []byte
	flag     uint32 // 0: whole; commonBody, splicedBody or splicedTwice
	pre, suf int    // the common body's prefix and suffix it shares
	// splicedTwice: the middle body[pre:len(body)-suf] shares with the
	// common body the n bytes at body[pre+n1:] and common[at:].
	n1, at, n int
}

// spliceInto chooses how a tenant holds body, the common body being
// common: not at all, whole, or spliced once or twice, whichever holds
// fewest bytes, but spliced only for spliceGain bytes or more.
func spliceInto(body, common []byte) splice {
	o := splice{body: body}
	if bytes.Equal(body, common) {
		o.flag = commonBody
		return o
	}
	if len(body) > 0xffff || len(common) > 0xffff {
		return o // more than a header says; user data is at most 16 KiB
	}
	pre, suf := affixes(body, common)
	if pre+suf < spliceGain {
		return o
	}
	o.flag, o.pre, o.suf = splicedBody, pre, suf
	bi, ci, n := sharedRun(body[pre:len(body)-suf], common[pre:len(common)-suf])
	if n >= spliceGain+twiceHeader-spliceHeader {
		o.flag, o.n1, o.at, o.n = splicedTwice, bi, pre+ci, n
	}
	return o
}

// size is how many bytes of data o holds.
func (o splice) size() int {
	switch o.flag {
	case commonBody:
		return 0
	case splicedBody:
		return spliceHeader + len(o.body) - o.pre - o.suf
	case splicedTwice:
		return twiceHeader + len(o.body) - o.pre - o.suf - o.n
	}
	return len(o.body)
}

// append appends the bytes of data o holds.
func (o splice) append(data []byte) []byte {
	u16 := func(b []byte, v int) []byte { return append(b, byte(v>>8), byte(v)) }
	mid := o.body[o.pre : len(o.body)-o.suf]
	switch o.flag {
	case commonBody:
		return data
	case splicedBody:
		return append(u16(u16(data, o.pre), o.suf), mid...)
	case splicedTwice:
		data = u16(u16(u16(u16(u16(data, o.pre), o.suf), o.n1), o.at), o.n)
		return append(append(data, mid[:o.n1]...), mid[o.n1+o.n:]...)
	}
	return append(data, o.body...)
}

// sharedRun is the longest run of bytes that b and c share at the same
// distance from their starts, or from their ends: where b[bi:bi+n] is
// c[ci:ci+n]. Values that differ in their middles keep the rest in step
// from one end (an instance id of fixed length) or the other.
func sharedRun(b, c []byte) (bi, ci, n int) {
	for _, d := range []int{0, len(c) - len(b)} { // ci - bi: aligned at the start, at the end
		run := 0
		for k := max(0, -d); k < len(b) && k+d < len(c); k++ {
			if b[k] != c[k+d] {
				run = 0
				continue
			}
			if run++; run > n {
				bi, ci, n = k-run+1, k-run+1+d, run
			}
		}
	}
	return bi, ci, n
}

// affixes are the lengths of the longest prefix and then suffix that b
// shares with common, at most what a spliceHeader holds.
func affixes(b, common []byte) (pre, suf int) {
	limit := min(len(b), len(common), 0xffff)
	for pre < limit && b[pre] == common[pre] {
		pre++
	}
	limit = min(len(b)-pre, len(common)-pre, 0xffff)
	for suf < limit && b[len(b)-1-suf] == common[len(common)-1-suf] {
		suf++
	}
	return pre, suf
}

// layout makes the layout of the tree's paths, sorted, with the bodies of
// the tenant named n as its common bodies.
func (c tree) layout(paths []string, n names) *layout {
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
		s.common = c.body(l, s, n)
	}
	return l
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
