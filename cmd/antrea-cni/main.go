// Command antrea is the CNI plugin the container runtime (or Multus) runs. It forwards every CNI
// command to antrea-agent over the agent's unix socket and prints the agent's answer; all the
// work happens in the agent. It is installed as /opt/cni/bin/antrea.
package main

import (
	"os"
	"runtime/debug"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/podvlan/podvlan/pkg/cni/shim"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise the VCS revision
// recorded by the Go toolchain stands in.
var version = ""

func main() {
	plugin := shim.New(os.Stdout, os.Stderr, os.Getenv)
	skel.PluginMainFuncs(plugin.Funcs(), shim.SupportedVersions, "CNI plugin antrea (podvlan) "+buildVersion())
}

// buildVersion names the build for the "about" line printed when no CNI_COMMAND is set.
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	revision, modified := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	switch {
	case revision == "":
		return info.Main.Version
	case modified:
		return revision + "-dirty"
	default:
		return revision
	}
}
