package tenants

import (
	"reflect"
	"testing"
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
