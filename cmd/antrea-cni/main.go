// Command antrea is the CNI plugin the container runtime (or Multus) runs. It forwards every CNI
// command to antrea-agent over the agent's unix socket and prints the agent's answer; all the
// work happens in the agent. It is installed as /opt/cni/bin/antrea.
package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/podvlan/podvlan/pkg/cni/shim"
	"github.com/podvlan/podvlan/pkg/version"
)

func main() {
	plugin := shim.New(os.Stdout, os.Stderr, os.Getenv)
	skel.PluginMainFuncs(plugin.Funcs(), shim.SupportedVersions, "CNI plugin "+version.Get().String("antrea")+" (podvlan)")
}
