package tenants

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder reads a YAML node tree into the schema's Go values, led by their
// yaml tags, so that a new key needs a new field and nothing else. It never
// stops at a problem: each wrong type, unknown or repeated key becomes one
// FieldError at its node, and the rest of the document is still read. A
// value that does not decode keeps its zero value and its path is kept in
// undecoded, so that validation does not report that zero a second time.
type decoder struct {
	errs      Errors
	undecoded [][]any
	// nodes is where each decoded path was written, to place the errors
	// validation finds later on the same lines.
	nodes map[string]*yaml.Node
	// left bounds the values read, aliases and merges expanded: a few
	// lines of anchors can otherwise stand for billions of values.
	left   int
	fields map[reflect.Type][]field // each struct's keys, read once per decoder
}

// field is one key of a schema struct.
type field struct {
	key   string
	index int
	typ   reflect.Type
}

// nodeDecoder is a schema type that reads its own YAML (a duration, a list
// of sources). It reports problems through d, like any other value, and
// returns whether n had the shape of a value of the type at all.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path []any) bool
}

func newDecoder(maxValues int) *decoder {
	return &decoder{nodes: map[string]*yaml.Node{}, left: maxValues, fields: map[reflect.Type][]field{}}
}

// decode sets v from n. A problem is reported and leaves v as it was; the
// result is false when n itself was refused, not only something inside it.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path []any) bool {
	if !d.spend(n) {
		return false
	}
	n = follow(n)
	d.note(n, path)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return true // a key with nothing after it: the zero value, as if absent
	}
	if h, ok := v.Addr().Interface().(nodeDecoder); ok {
		return h.decodeNode(d, n, path)
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if !d.decode(n, p.Elem(), path) {
			return false
		}
		v.Set(p)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return d.mismatch(n, "a mapping", path)
		}
		fields := d.fieldsOf(v.Type())
		for _, e := range d.entries(n, path, nil) {
			f, ok := fieldNamed(fields, e.key.Value)
			if !ok {
				d.report(e.key, path, "unknown key %q%s", e.key.Value, d.suggest(e.key.Value, fields))
				continue
			}
			d.decode(e.value, v.Field(f.index), at(path, f.key))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return d.mismatch(n, "a mapping", path)
		}
		m := reflect.MakeMap(v.Type())
		for _, e := range d.entries(n, path, nil) {
			k := reflect.New(v.Type().Key()).Elem()
			item := reflect.New(v.Type().Elem()).Elem()
			if d.scalar(e.key, k, path) && d.decode(e.value, item, at(path, e.key.Value)) {
				m.SetMapIndex(k, item)
			}
		}
		v.Set(m)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.mismatch(n, "a list", path)
		}
		// Every item keeps its index, decoded or not, so that validation's
		// paths (sources[3]) name the item the user wrote.
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), at(path, i))
		}
		v.Set(s)
	default:
		return d.scalar(n, v, path)
	}
	return true
}

// scalar sets a string, bool or number. Any scalar is a string, as in the
// YAML library (account_id: 111122223333 is a string); numbers must be
// numbers, and whole where the field is an integer rather than truncated.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path []any) bool {
	if n.Kind != yaml.ScalarNode {
		return d.mismatch(n, describeType(v.Type()), path)
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Decode(&b) != nil { // the library's reading, yes and no included
			return d.invalid(n, path, "%s is not true or false", shown(n))
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var f float64
		switch tag := n.ShortTag(); {
		case tag != "!!int" && tag != "!!float" || n.Decode(&f) != nil:
			return d.invalid(n, path, "%s is not a number", shown(n))
		case f != math.Trunc(f):
			return d.invalid(n, path, "%s is not a whole number", shown(n))
		case f < math.MinInt64 || f >= math.MaxInt64 || v.OverflowInt(int64(f)):
			return d.invalid(n, path, "%s is too large", shown(n))
		}
		var i int64 // exact where f is not, past 2^53
		if n.Decode(&i) != nil {
			i = int64(f)
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		var f float64
		switch tag := n.ShortTag(); {
		case tag != "!!int" && tag != "!!float" || n.Decode(&f) != nil:
			return d.invalid(n, path, "%s is not a number", shown(n))
		case v.OverflowFloat(f):
			return d.invalid(n, path, "%s is too large", shown(n))
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("tenants: the schema type %s has no YAML decoding; give it a decodeNode method", v.Type()))
	}
	return true
}

// entry is one key and value of a mapping.
type entry struct{ key, value *yaml.Node }

// entries lists a mapping's keys and values, merge keys (<<: *anchor)
// expanded as YAML defines them: the mapping's own keys win over merged
// ones, and an earlier merged mapping over a later one. A key written twice
// is reported; one merged under a key the mapping sets itself is not, since
// overriding is what merging is for. within holds the mappings being
// merged, to refuse one that merges itself.
func (d *decoder) entries(n *yaml.Node, path []any, within []*yaml.Node) []entry {
	var out []entry
	var merges []*yaml.Node
	seen := map[string]int{} // key → the line that sets it
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend(n.Content[i]) {
			return out
		}
		k, v := follow(n.Content[i]), n.Content[i+1]
		switch {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
			merges = append(merges, v)
			continue
		case k.Kind != yaml.ScalarNode:
			d.report(k, path, "%s cannot be a key", shown(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.report(k, at(path, k.Value), "already set on line %d; a key appears once in a mapping", line)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, entry{k, v})
	}
	within = append(within, n)
	for _, m := range merges {
		for _, src := range d.mergeSources(m, path, within) {
			for _, e := range d.entries(src, path, within) {
				if _, set := seen[e.key.Value]; !set {
					seen[e.key.Value] = e.key.Line
					out = append(out, e)
				}
			}
		}
	}
	return out
}

// mergeSources are the mappings a merge key's value names: one, or a list.
func (d *decoder) mergeSources(v *yaml.Node, path []any, within []*yaml.Node) []*yaml.Node {
	v = follow(v)
	srcs := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		srcs = v.Content
	}
	var out []*yaml.Node
	for _, s := range srcs {
		s = follow(s)
		switch {
		case s.Kind != yaml.MappingNode:
			d.report(s, path, "<< merges a mapping or a list of mappings (such as <<: *defaults), not %s", shown(s))
		case containsNode(within, s):
			d.report(s, path, "<< merges a mapping that holds this one")
		default:
			out = append(out, s)
		}
	}
	return out
}

// fieldsOf lists a struct's keys by their yaml tags; a field without a tag
// is keyed by its lowercased name, as the YAML library does.
func (d *decoder) fieldsOf(t reflect.Type) []field {
	if fs, ok := d.fields[t]; ok {
		return fs
	}
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		switch {
		case !sf.IsExported() || key == "-":
			continue
		case key == "":
			key = strings.ToLower(sf.Name)
		}
		fs = append(fs, field{key: key, index: i, typ: sf.Type})
	}
	d.fields[t] = fs
	return fs
}

func fieldNamed(fs []field, key string) (field, bool) {
	for _, f := range fs {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// suggest names the key an unknown one was probably meant to be: a close
// spelling at the same level, or the same key one block down (profile:
// written beside credentials: rather than under it).
func (d *decoder) suggest(key string, fields []field) string {
	best, bestDist := "", min(2, len(key)/3)+1 // short keys are close to everything
	for _, f := range fields {
		if dist := editDistance(key, f.key); dist < bestDist {
			best, bestDist = f.key, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	var under []string
	for _, f := range fields {
		t := f.typ
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			continue
		}
		if _, ok := fieldNamed(d.fieldsOf(t), key); ok {
			under = append(under, f.key+"."+key)
		}
	}
	if len(under) == 0 {
		return ""
	}
	return "; did you mean " + orList(under) + "?"
}

// editDistance is the Levenshtein distance between two keys.
func editDistance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func orList(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// spend counts one value against the document's allowance; once it is spent
// the decoder says so, once, and reads nothing more.
func (d *decoder) spend(n *yaml.Node) bool {
	d.left--
	if d.left == 0 {
		// Nothing read so far is whole: validating it would only mislead.
		d.invalid(n, nil, "aliases expand this file beyond what a configuration holds; write the repeated parts out, or share them through defaults:")
	}
	return d.left > 0
}

// mismatch reports a value of the wrong kind: a scalar where a list
// belongs, a list where a string does.
func (d *decoder) mismatch(n *yaml.Node, want string, path []any) bool {
	hint := ""
	if want == "a list" && n.Kind == yaml.ScalarNode && n.Style == 0 && !strings.ContainsAny(n.Value, ",[]{}# ") {
		hint = ": write [" + n.Value + "]"
	}
	return d.invalid(n, path, "%s is not %s%s", shown(n), want, hint)
}

// invalid reports a value that did not decode and remembers its path;
// it returns false for its callers to return.
func (d *decoder) invalid(n *yaml.Node, path []any, format string, args ...any) bool {
	d.report(n, path, format, args...)
	d.undecoded = append(d.undecoded, append([]any(nil), path...))
	return false
}

// report adds an error at n that leaves the values as they are (an unknown
// or repeated key).
func (d *decoder) report(n *yaml.Node, path []any, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Line: n.Line, column: n.Column, Path: append([]any(nil), path...), Msg: fmt.Sprintf(format, args...)})
}

// note remembers where the value at path was written.
func (d *decoder) note(n *yaml.Node, path []any) { d.nodes[keyOf(path)] = n }

// follow resolves an alias (*name) to the node it names.
func follow(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func containsNode(ns []*yaml.Node, n *yaml.Node) bool {
	for _, m := range ns {
		if m == n {
			return true
		}
	}
	return false
}

// shown is a node as an error quotes it: numbers and booleans as written,
// strings quoted, collections by kind, long values cut.
func shown(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch n.ShortTag() {
	case "!!int", "!!float", "!!bool":
		return v
	}
	return strconv.Quote(v)
}

// describeType names what a scalar field holds, for "... is not a string".
func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a string"
}
