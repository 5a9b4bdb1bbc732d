package tenants

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FieldError is one invalid value of a configuration, located by its key path
// (e.g. tenants[1].instance.instance_id) and, once the file is known, its line.
type FieldError struct {
	File string
	Line int
	Path []any // string keys and int indexes from the document's root
	Msg  string

	column int // orders the errors of one line as the line reads
}

// Key renders Path as users write it: tenants[1].instance.instance_id.
func (e *FieldError) Key() string { return keyOf(e.Path) }

func keyOf(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			b.WriteString("[" + strconv.Itoa(p) + "]")
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

func (e *FieldError) Error() string {
	var where string
	switch {
	case e.File != "" && e.Line > 0:
		where = fmt.Sprintf("%s:%d: ", e.File, e.Line)
	case e.File != "":
		where = e.File + ": "
	}
	if k := e.Key(); k != "" {
		return where + k + ": " + e.Msg
	}
	return where + e.Msg
}

// Errors is every problem found in one configuration, in document order.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// errorList collects validation's FieldErrors, and warnings (nil warns:
// they are dropped).
type errorList struct {
	errs, warns *Errors
	// undecoded are the paths whose values did not decode (nil: every
	// value did). Their zero values stand in for them, so a check at such
	// a path, inside it or of the block that holds it would only restate
	// the decoding error, and is left out.
	undecoded [][]any
}

func (l errorList) add(path []any, format string, args ...any) {
	if !l.decoded(path) {
		return
	}
	*l.errs = append(*l.errs, &FieldError{Path: append([]any(nil), path...), Msg: fmt.Sprintf(format, args...)})
}

// decoded reports whether the value at path, and everything it holds, was
// decoded: a check comparing one field with another asks it of the other.
func (l errorList) decoded(path []any) bool {
	for _, u := range l.undecoded {
		n := min(len(u), len(path))
		if slices.Equal(u[:n], path[:n]) {
			return false
		}
	}
	return true
}

func (l errorList) warn(path []any, format string, args ...any) {
	if l.warns != nil {
		*l.warns = append(*l.warns, &FieldError{Path: append([]any(nil), path...), Msg: fmt.Sprintf(format, args...)})
	}
}

// at extends a path without aliasing the caller's slice.
func at(path []any, more ...any) []any {
	return append(append(make([]any, 0, len(path)+len(more)), path...), more...)
}
