package config

import (
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// DegradedAgent is the configuration an agent runs with when antrea-agent.conf (data, possibly
// unreadable: nil) does not load: defaults, both feature gates off and no secondary bridge, so
// that the agent keeps serving CNI for Pods without secondary networks instead of crash-looping
// (every Pod of the Node would then fail its sandbox). Of the file only what locates the agent on
// the Node is kept, when it reads as a valid path: cniSocket (the shim must still find the agent)
// and ovsRunDir. The caller refuses every secondary network with the load error.
func DegradedAgent(data []byte) *Agent {
	a := &Agent{}
	var paths struct {
		CNISocket string `json:"cniSocket"`
		OVSRunDir string `json:"ovsRunDir"`
		Client    struct {
			Kubeconfig string `json:"kubeconfig"`
		} `json:"clientConnection"`
	}
	// Lenient on purpose: the strict load already failed; take what can be read.
	if yaml.Unmarshal(data, &paths) == nil {
		if filepath.IsAbs(paths.CNISocket) && len(paths.CNISocket) <= maxUnixSocketPath {
			a.CNISocket = paths.CNISocket
		}
		if filepath.IsAbs(paths.OVSRunDir) {
			a.OVSRunDir = paths.OVSRunDir
		}
		if filepath.IsAbs(paths.Client.Kubeconfig) {
			a.ClientConnection.Kubeconfig = paths.Client.Kubeconfig
		}
	}
	a.setDefaults()
	gates, err := NewFeatureGates(nil)
	if err != nil {
		panic("default feature gates: " + err.Error()) // the known gates with their defaults always build
	}
	a.Gates = gates
	return a
}
