package tenants

import (
	"reflect"
	"testing"
	"time"
)

// TestExtrasOrNilSeesEveryField: orNil drops an Extras that sets nothing;
// a field it does not look at would be dropped with it when it is the
// only one set. Each field of InstanceExtras and TenantExtras, set alone,
// must keep its Extras.
func TestExtrasOrNilSeesEveryField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typ   reflect.Type
		orNil func(v reflect.Value) bool // v: a pointer to the Extras
	}{
		{"InstanceExtras", reflect.TypeFor[InstanceExtras](), func(v reflect.Value) bool {
			return v.Interface().(*InstanceExtras).orNil() == nil
		}},
		{"TenantExtras", reflect.TypeFor[TenantExtras](), func(v reflect.Value) bool {
			return v.Interface().(*TenantExtras).orNil() == nil
		}},
	} {
		if tc.orNil(reflect.New(tc.typ)) == false {
			t.Errorf("%s: the zero value is kept, want nil", tc.name)
		}
		for _, path := range leafFields(tc.typ, nil) {
			v := reflect.New(tc.typ)
			name := fieldName(tc.typ, path)
			setNonZero(t, v.Elem().FieldByIndex(path), name)
			if tc.orNil(v) {
				t.Errorf("%s with only %s set is dropped by orNil: add the field to orNil", tc.name, name)
			}
		}
	}
}

// leafFields are the index paths of typ's fields, those of struct fields
// taken one by one.
func leafFields(typ reflect.Type, prefix []int) [][]int {
	var out [][]int
	for i := range typ.NumField() {
		path := append(append([]int(nil), prefix...), i)
		if f := typ.Field(i); f.Type.Kind() == reflect.Struct {
			out = append(out, leafFields(f.Type, path)...)
		} else {
			out = append(out, path)
		}
	}
	return out
}

func fieldName(typ reflect.Type, path []int) string {
	name := ""
	for _, i := range path {
		f := typ.Field(i)
		name, typ = name+"."+f.Name, f.Type
	}
	return name[1:]
}

// setNonZero gives v, a settable field, some value other than its zero.
func setNonZero(t *testing.T, v reflect.Value, name string) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
	default:
		t.Fatalf("%s: no non-zero value for a %s; extend setNonZero", name, v.Kind())
	}
}

// TestStaticSetsEveryExtra: each instance key kept in Extras, set alone,
// reaches the built instance; and tenants that set none end up sharing
// one Extras (the derived defaults, interned at build).
func TestStaticSetsEveryExtra(t *testing.T) {
	for key, tc := range map[string]struct {
		yaml string
		got  func(*Instance) any
		want any
	}{
		"kernel_id":           {"aki-0123abcd", func(in *Instance) any { return in.KernelID() }, "aki-0123abcd"},
		"ramdisk_id":          {"ari-0123abcd", func(in *Instance) any { return in.RamdiskID() }, "ari-0123abcd"},
		"ami_launch_index":    {"3", func(in *Instance) any { return in.LaunchIndex() }, 3},
		"architecture":        {"arm64", func(in *Instance) any { return in.Architecture() }, "arm64"},
		"instance_life_cycle": {"spot", func(in *Instance) any { return in.LifeCycle() }, "spot"},
		"placement_group":     {"pg-1", func(in *Instance) any { return in.PlacementGroup() }, "pg-1"},
		"partition_number":    {"2", func(in *Instance) any { return in.PartitionNumber() }, 2},
		"host_id":             {"h-0123456789abcdef0", func(in *Instance) any { return in.HostID() }, "h-0123456789abcdef0"},
		"key_name":            {"dev-key", func(in *Instance) any { return in.KeyName() }, "dev-key"},
		"public_key":          {`"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample dev", key_name: dev-key`, func(in *Instance) any { return in.PublicKey() }, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample dev"},
		"product_codes":       {"[abc123]", func(in *Instance) any { return in.ProductCodes() }, []string{"abc123"}},
		"monitoring":          {"true", func(in *Instance) any { return in.Monitoring() }, true},
	} {
		cfg, err := Parse("extras", []byte("tenants: [{name: web, sources: [10.0.0.2], instance: {"+key+": "+tc.yaml+"}}]"), time.Now())
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		if got := tc.got(&cfg.Tenants[0].Instance); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("instance.%s: %s served %v, want %v", key, tc.yaml, got, tc.want)
		}
	}
	cfg, err := Parse("none", []byte("tenants: [{name: a, sources: [10.0.0.2]}, {name: b, sources: [10.0.0.3]}]"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a, b := cfg.Tenants[0].Instance.Extras, cfg.Tenants[1].Instance.Extras; a != b {
		t.Errorf("two tenants that set no extra hold an Extras each (%p, %p), want one shared", a, b)
	}
}
