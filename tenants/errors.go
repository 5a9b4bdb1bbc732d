package tenants

import (
	"fmt"
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
}

// Key renders Path as users write it: tenants[1].instance.instance_id.
func (e *FieldError) Key() string {
	var b strings.Builder
	for _, p := range e.Path {
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

// errorList collects FieldErrors under a path prefix, and warnings (nil
// warns: they are dropped).
type errorList struct{ errs, warns *Errors }

func (l errorList) add(path []any, format string, args ...any) {
	*l.errs = append(*l.errs, &FieldError{Path: append([]any(nil), path...), Msg: fmt.Sprintf(format, args...)})
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
