package handlers

import (
	"bytes"
	"encoding/json"
	"time"
)

// IMDS writes its JSON documents in one recognisable style: two-space
// indent, " : " between key and value, arrays on one line, no trailing
// newline. field is one pre-encoded member of such a document.
type field struct {
	key string
	raw []byte
}

func str(key, v string) field { return field{key, jsonString(v)} }

// strOrNull writes null for an empty value, as the identity document does.
func strOrNull(key, v string) field {
	if v == "" {
		return field{key, []byte("null")}
	}
	return str(key, v)
}

// list writes `[ "a", "b" ]`, or null when empty.
func list(key string, vs []string) field {
	if len(vs) == 0 {
		return field{key, []byte("null")}
	}
	var b bytes.Buffer
	b.WriteString("[ ")
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.Write(jsonString(v))
	}
	b.WriteString(" ]")
	return field{key, b.Bytes()}
}

func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// valueSpans are where document(fields...) puts each field's value.
func valueSpans(fields []field) []span {
	out := make([]span, len(fields))
	at := len("{\n")
	for i, f := range fields {
		at += len("  ") + len(jsonString(f.key)) + len(" : ")
		out[i] = span{int32(at), int32(at + len(f.raw))}
		at += len(f.raw) + len(",\n")
	}
	return out
}

// document renders fields into a slice of its exact length: documents are
// kept (iam/info for each tenant, credentials for each refresh), and a
// buffer's spare capacity would be kept with them.
func document(fields ...field) []byte {
	keys := make([][]byte, len(fields))
	size := len("{\n}")
	for i, f := range fields {
		keys[i] = jsonString(f.key)
		size += len("  ") + len(keys[i]) + len(" : ") + len(f.raw) + len(",\n")
	}
	if len(fields) > 0 {
		size-- // no comma after the last
	}
	b := make([]byte, 0, size)
	b = append(b, "{\n"...)
	for i, f := range fields {
		b = append(append(append(append(b, "  "...), keys[i]...), " : "...), f.raw...)
		if i < len(fields)-1 {
			b = append(b, ',')
		}
		b = append(b, '\n')
	}
	b = append(b, '}')
	return b
}

// imdsTime is the only time format IMDS writes (and botocore parses).
func imdsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
