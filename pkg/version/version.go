// Package version names the build of every podvlan binary: the release version and source
// revision stamped at link time (hack/release.sh, hack/images.sh, the Dockerfiles), with the Go
// toolchain's own VCS record standing in for a revision that was not stamped. The binaries print
// it for --version, log it at start, and export it as the podvlan_build_info metric (package
// buildinfo, apart so that the CNI shim, run once per CNI command, does not load Prometheus).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version (x.y.z), set with
// -ldflags "-X github.com/podvlan/podvlan/pkg/version.Version=x.y.z"; "dev" for unreleased builds.
var Version = "dev"

// Revision is the source revision (git commit, "-dirty" when the tree had changes), set with
// -ldflags "-X github.com/podvlan/podvlan/pkg/version.Revision=..."; empty means "ask the
// toolchain's build information".
var Revision = ""

// Info is what a binary says about its build.
type Info struct {
	Version   string
	Revision  string
	GoVersion string
}

// Get returns the build's information.
func Get() Info {
	return Info{Version: Version, Revision: revision(Revision, readBuildSettings()), GoVersion: runtime.Version()}
}

// String is the one-line form printed by --version: "antrea-agent version 1.2.0 (revision
// 0123abc, go1.26.8)".
func (i Info) String(component string) string {
	return fmt.Sprintf("%s version %s (revision %s, %s)", component, i.Version, i.Revision, i.GoVersion)
}

// KeysAndValues are the build's fields for a structured log line (klog.InfoS).
func (i Info) KeysAndValues() []any {
	return []any{"version", i.Version, "revision", i.Revision, "goVersion", i.GoVersion}
}

// readBuildSettings returns the toolchain's VCS settings of the running binary.
func readBuildSettings() map[string]string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	s := map[string]string{}
	for _, kv := range info.Settings {
		s[kv.Key] = kv.Value
	}
	return s
}

// revision decides the revision to report: the stamped one, else the toolchain's vcs.revision
// (with "-dirty" for a modified tree), else "unknown".
func revision(stamped string, settings map[string]string) string {
	if stamped != "" {
		return stamped
	}
	r := settings["vcs.revision"]
	if r == "" {
		return "unknown"
	}
	if len(r) > 12 {
		r = r[:12]
	}
	if settings["vcs.modified"] == "true" {
		r += "-dirty"
	}
	return r
}
