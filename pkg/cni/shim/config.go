package shim

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"
)

const (
	// DefaultSocketPath is where antrea-agent serves the shim when the network configuration and
	// the environment name no other socket.
	DefaultSocketPath = "/var/run/antrea/cni.sock"
	// SocketEnv names the environment variable that replaces DefaultSocketPath, for configurations
	// that cannot carry cniSocket (a Multus delegate's NetworkAttachmentDefinition is shared by
	// every Node) and for tests that run several agents on one machine.
	SocketEnv = "ANTREA_CNI_SOCKET"
)

// shimConfig is the part of the network configuration the shim reads itself; everything else is
// the agent's to interpret.
type shimConfig struct {
	// CNIVersion is the configuration's cniVersion, forwarded so the agent encodes its result in it.
	CNIVersion string `json:"cniVersion"`
	// CNISocket is the agent's socket, when the configuration names one.
	CNISocket string `json:"cniSocket"`
	// Name is the network name, which names a spooled DEL.
	Name string `json:"name"`
	// Type, NetworkType and IPAM tell the chained entry (type antrea, no networkType) from a
	// Multus delegate and an IPAM-only configuration; only the chained entry is ever answered
	// without the agent. They are kept raw: the agent validates them.
	Type        string          `json:"type"`
	NetworkType json.RawMessage `json:"networkType"`
	IPAM        json.RawMessage `json:"ipam"`
	// PrevResult is the previous plugin's result, which the chained entry passes on.
	PrevResult json.RawMessage `json:"prevResult"`
	// RuntimeConfig carries what the runtime fills in for declared capabilities; kept raw so
	// that a value the shim does not understand never fails a DEL.
	RuntimeConfig json.RawMessage `json:"runtimeConfig"`
}

// parseConfig reads the fields of shimConfig from the stdin configuration.
func parseConfig(stdin []byte) (*shimConfig, error) {
	var conf shimConfig
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid network configuration for the antrea plugin", err.Error())
	}
	if conf.CNISocket != "" && !filepath.IsAbs(conf.CNISocket) {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("invalid network configuration for the antrea plugin: cniSocket %q is not an absolute path", conf.CNISocket), "")
	}
	return &conf, nil
}

// socketPath picks the agent's socket: the configuration's cniSocket, else $ANTREA_CNI_SOCKET,
// else DefaultSocketPath.
func socketPath(conf *shimConfig, getenv func(string) string) string {
	if conf.CNISocket != "" {
		return conf.CNISocket
	}
	if fromEnv := getenv(SocketEnv); fromEnv != "" {
		return fromEnv
	}
	return DefaultSocketPath
}
