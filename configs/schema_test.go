package configs_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// schemaFile is the JSON Schema of the configuration, for editors (the
// YAML language server reads it: "# yaml-language-server: $schema=...").
// It is written from tenants.File's yaml tags; refresh it with
// IMDS_PROXY_UPDATE_SCHEMA=1 go test ./configs/.
const schemaFile = "imds-proxy.schema.json"

// schema is the subset of JSON Schema (draft 2020-12) the generator writes
// and validate checks.
type schema struct {
	Schema               string             `json:"$schema,omitempty"`
	ID                   string             `json:"$id,omitempty"`
	Title                string             `json:"title,omitempty"`
	Type                 any                `json:"type,omitempty"` // a name or a list of names
	Properties           map[string]*schema `json:"properties,omitempty"`
	AdditionalProperties any                `json:"additionalProperties,omitempty"` // false or a schema
	Items                *schema            `json:"items,omitempty"`
	Enum                 []string           `json:"enum,omitempty"`
	Pattern              string             `json:"pattern,omitempty"`
}

// durationPattern is what time.ParseDuration reads, as tenants.Duration
// requires: a unit on every number.
const durationPattern = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`

// enums are the keys whose values are a closed set (tenants validates
// them; the schema says them to editors).
func enums(key string) []string {
	switch key {
	case "tokens":
		return []string{"optional", "required"}
	}
	return nil
}

// schemaOf describes type t, the Go type of a configuration key.
func schemaOf(t reflect.Type, key string) *schema {
	switch t {
	case reflect.TypeFor[tenants.Duration]():
		return &schema{Type: "string", Pattern: durationPattern}
	case reflect.TypeFor[tenants.Sources]():
		// An address, a CIDR block, or {container: NAME} / {label: K=V} /
		// {service_account: NAMESPACE/NAME}.
		return &schema{Type: "array", Items: &schema{Type: []string{"string", "object"}}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := schemaOf(t.Elem(), key)
		if key == "kubernetes" {
			s.Type = []string{"object", "null"} // "kubernetes:" alone turns Kubernetes mode on
		}
		return s
	case reflect.String:
		return &schema{Type: "string", Enum: enums(key)}
	case reflect.Bool:
		return &schema{Type: "boolean"}
	case reflect.Int, reflect.Int64, reflect.Uint16:
		return &schema{Type: "integer"}
	case reflect.Float64:
		return &schema{Type: "number"}
	case reflect.Slice:
		return &schema{Type: "array", Items: schemaOf(t.Elem(), "")}
	case reflect.Map:
		return &schema{Type: "object", AdditionalProperties: schemaOf(t.Elem(), "")}
	case reflect.Struct:
		s := &schema{Type: "object", Properties: map[string]*schema{}, AdditionalProperties: false}
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			s.Properties[name] = schemaOf(f.Type, name)
		}
		return s
	}
	panic(fmt.Sprintf("schema: no JSON Schema for %s (key %s): teach schemaOf", t, key))
}

func generateSchema() []byte {
	s := schemaOf(reflect.TypeFor[tenants.File](), "")
	s.Schema = "https://json-schema.org/draft/2020-12/schema"
	s.ID = "https://github.com/imds-proxy/imds-proxy/raw/main/configs/imds-proxy.schema.json"
	s.Title = "imds-proxy configuration"
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func TestSchemaInSync(t *testing.T) {
	want := generateSchema()
	if os.Getenv("IMDS_PROXY_UPDATE_SCHEMA") != "" {
		if err := os.WriteFile(schemaFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(schemaFile)
	if err != nil || string(have) != string(want) {
		t.Errorf("configs/%s is not what tenants.File describes (%v): run IMDS_PROXY_UPDATE_SCHEMA=1 go test ./configs/", schemaFile, err)
	}
}

// Every example configuration validates against the checked-in schema.
func TestExamplesValidateAgainstSchema(t *testing.T) {
	var s schema
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	for _, f := range exampleFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, e := range validate(&s, doc, "") {
			t.Errorf("%s: %s", f, e)
		}
	}
}

// The validator finds what the schema forbids.
func TestSchemaValidatorRejects(t *testing.T) {
	var s schema
	if err := json.Unmarshal(generateSchema(), &s); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"server: {listen: 8080}",
		"server: {lissen: [':8080']}",
		"defaults: {imds: {tokens: always}}",
		"defaults: {credentials: {duration: 3600}}",
		"tenants: [{name: web, limits: {burst: many}}]",
		"tenants: [{name: web, instance: {tags: {Name: [a]}}}]",
	} {
		var doc any
		if err := yaml.Unmarshal([]byte(bad), &doc); err != nil {
			t.Fatal(err)
		}
		if errs := validate(&s, doc, ""); len(errs) == 0 {
			t.Errorf("%s validates, want an error", bad)
		}
	}
}

// validate checks v against s: the keywords schemaOf writes, no more.
func validate(s *schema, v any, path string) []string {
	if path == "" {
		path = "(top)"
	}
	if !typeMatches(s.Type, v) {
		return []string{fmt.Sprintf("%s: %v is not of type %v", path, v, s.Type)}
	}
	var errs []string
	if s.Enum != nil && !slices.Contains(s.Enum, fmt.Sprint(v)) {
		errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", path, v, s.Enum))
	}
	if s.Pattern != "" {
		if str, ok := v.(string); ok && !regexp.MustCompile(s.Pattern).MatchString(str) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %s", path, str, s.Pattern))
		}
	}
	switch v := v.(type) {
	case map[string]any:
		for k, item := range v {
			p := strings.TrimPrefix(path+"."+k, "(top).")
			switch sub, ok := s.Properties[k]; {
			case ok:
				errs = append(errs, validate(sub, item, p)...)
			case s.AdditionalProperties == false:
				errs = append(errs, fmt.Sprintf("%s: unknown key", p))
			default:
				if m, ok := s.AdditionalProperties.(map[string]any); ok {
					b, _ := json.Marshal(m)
					var sub schema
					_ = json.Unmarshal(b, &sub)
					errs = append(errs, validate(&sub, item, p)...)
				}
			}
		}
	case []any:
		if s.Items != nil {
			for i, item := range v {
				errs = append(errs, validate(s.Items, item, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return errs
}

func typeMatches(want any, v any) bool {
	switch w := want.(type) {
	case nil:
		return true
	case []any:
		for _, one := range w {
			if typeMatches(one, v) {
				return true
			}
		}
		return false
	case []string:
		for _, one := range w {
			if typeMatches(one, v) {
				return true
			}
		}
		return false
	case string:
		switch v.(type) {
		case nil:
			return true // an empty key: YAML's null, which the decoder reads as unset
		case string:
			return w == "string"
		case bool:
			return w == "boolean"
		case int, int64, uint64:
			return w == "integer" || w == "number"
		case float64:
			return w == "number"
		case []any:
			return w == "array"
		case map[string]any:
			return w == "object"
		}
	}
	return false
}
