package main

import "testing"

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name, flag string
		tenants    int
		goMemLimit bool
		want       int64
		wantErr    bool
	}{
		{name: "auto few tenants", flag: "auto", tenants: 10, want: 48 << 20},
		{name: "auto 10,000 tenants", flag: "auto", tenants: 10000, want: 48 << 20},
		{name: "auto 100,000 tenants", flag: "auto", tenants: 100000, want: 100000*6<<10 - 16<<20},
		{name: "auto leaves GOMEMLIMIT", flag: "auto", tenants: 10, goMemLimit: true, want: 0},
		{name: "off", flag: "off", tenants: 10, want: 0},
		{name: "MiB", flag: "256MiB", tenants: 10, want: 256 << 20},
		{name: "GiB over GOMEMLIMIT", flag: "1GiB", goMemLimit: true, want: 1 << 30},
		{name: "bytes", flag: "100000000", want: 100000000},
		{name: "B", flag: "4096B", want: 4096},
		{name: "MB is not a unit", flag: "64MB", wantErr: true},
		{name: "negative", flag: "-1MiB", wantErr: true},
		{name: "overflow", flag: "9000000000TiB", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m memoryLimit
			err := m.Set(tc.flag)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Set(%q): %v", tc.flag, err)
			}
			if err != nil {
				return
			}
			if got := m.limit(tc.tenants, tc.goMemLimit); got != tc.want {
				t.Errorf("limit(%d) = %d, want %d", tc.tenants, got, tc.want)
			}
		})
	}
}
