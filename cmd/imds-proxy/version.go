package main

import "runtime/debug"

// versionString is what `imds-proxy version` prints.
func versionString() string {
	bi, _ := debug.ReadBuildInfo()
	return "imds-proxy " + pickVersion(version, bi)
}

// pickVersion chooses the version a binary reports: the one stamped with
// -ldflags (make build, the image, release archives), else the module
// version the go command recorded (`go install ...@v1.2.3` records v1.2.3;
// a build inside the work tree records "(devel)", which says nothing),
// else "dev". A VCS revision, when recorded, follows in parentheses.
func pickVersion(stamped string, bi *debug.BuildInfo) string {
	v := stamped
	if v == "" && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "dev"
	}
	if bi == nil {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}
