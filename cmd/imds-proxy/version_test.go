package main

import (
	"runtime/debug"
	"testing"
)

func TestPickVersion(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}}
	tests := []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"no build info", "", nil, "dev"},
		{"stamped beats the module version", "v1.2.3-rc1", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3-rc1"},
		{"go install @version", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"pseudo-version", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260101000000-0123456789ab"}}, "v0.0.0-20260101000000-0123456789ab"},
		{"work tree build", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"work tree build with a revision", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: rev}, "dev (0123456789ab)"},
		{"stamped with a revision", "v2.0.0", &debug.BuildInfo{Settings: rev}, "v2.0.0 (0123456789ab)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pickVersion(tt.stamped, tt.bi); got != tt.want {
				t.Errorf("pickVersion(%q, ...) = %q, want %q", tt.stamped, got, tt.want)
			}
		})
	}
}
