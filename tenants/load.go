package tenants

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads, strictly decodes and validates a configuration file. The error,
// if any, is Errors: every problem with file:line and the key.
func Load(path string, now time.Time) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, now)
}

// Parse is Load on bytes already read; name is the file name used in errors
// and to resolve relative user_data_file paths. Decoding and validation both
// go on past a problem, so that one run reports all of them, in the order of
// the file; only YAML that does not parse stops at its first error.
func Parse(name string, data []byte, now time.Time) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, located(name, Errors{syntaxError(err)})
	}
	// 64 values a byte is far more than anchors and merges make of any
	// real configuration, and far less than an alias bomb makes of its
	// few lines.
	d := newDecoder(max(1<<16, 64*len(data)))
	var f File
	if len(doc.Content) > 0 {
		d.decode(doc.Content[0], reflect.ValueOf(&f).Elem(), nil)
		if f.Kubernetes == nil && setsNull(doc.Content[0], "kubernetes") {
			// "kubernetes:" alone, or with only comments under it: the
			// block is present, every value its default.
			f.Kubernetes = &KubernetesConfig{}
		}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.errs = append(d.errs, syntaxError(err))
	default:
		d.report(&extra, nil, "a configuration is one YAML document; remove the second one")
	}

	cfg, verrs := build(&f, filepath.Dir(name), now, inheritUndecoded(d, len(f.Tenants)))
	for _, e := range verrs {
		if n := d.nearest(e.Path); n != nil {
			e.Line, e.column = n.Line, n.Column
		}
	}
	errs := append(d.errs, verrs...)
	if len(errs) > 0 {
		return nil, located(name, errs)
	}
	for _, w := range cfg.Warnings {
		w.File = name
		if n := d.nearest(w.Path); n != nil {
			w.Line, w.column = n.Line, n.Column
		}
	}
	return cfg, nil
}

// setsNull reports whether n is a mapping that sets key to null (a key
// with nothing after it).
func setsNull(n *yaml.Node, key string) bool {
	n = follow(n)
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], follow(n.Content[i+1]); k.Value == key && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			return true
		}
	}
	return false
}

// inheritUndecoded extends the paths that did not decode with the tenants'
// paths that would have inherited them: Build lays defaults: under every
// tenant that does not set a key itself, except name and sources.
func inheritUndecoded(d *decoder, tenants int) [][]any {
	out := d.undecoded
	for _, p := range d.undecoded {
		if len(p) < 2 || p[0] != "defaults" || p[1] == "name" || p[1] == "sources" {
			continue
		}
		for i := range tenants {
			own := append([]any{"tenants", i}, p[1:]...)
			if _, set := d.nodes[keyOf(own)]; !set {
				out = append(out, own)
			}
		}
	}
	return out
}

// nearest is the node written at path or, for a value left out or derived,
// at the deepest part of path that was written, so that an error still
// points near its cause.
func (d *decoder) nearest(path []any) *yaml.Node {
	for i := len(path); i >= 0; i-- {
		if n, ok := d.nodes[keyOf(path[:i])]; ok {
			return n
		}
	}
	return nil
}

// located names the file in every error and sorts them as the file reads.
func located(name string, errs Errors) Errors {
	for _, e := range errs {
		e.File = name
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		return a.Line < b.Line || a.Line == b.Line && a.column < b.column
	})
	return errs
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// syntaxError turns the YAML library's "yaml: line 4: did not find ..." into
// a FieldError that reads "file:4: did not find ...".
func syntaxError(err error) *FieldError {
	e := &FieldError{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	if sub := yamlLine.FindStringSubmatch(e.Msg); sub != nil {
		e.Line, _ = strconv.Atoi(sub[1])
		e.Msg = sub[2]
	}
	return e
}
