package cli

import "runtime/debug"

// Version is the release the binaries were built as; scripts/image sets it
// (-ldflags -X github.com/trustgate/trustgate/internal/cli.Version=...).
var Version = ""

// BuildVersion is Version when the build set it, else what the Go
// toolchain recorded: the module's version, or the VCS revision (12 hex
// digits, "-dirty" when the tree had changes), else "dev".
func BuildVersion() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
