// Package config loads antrea-agent.conf and antrea-controller.conf, the two YAML documents of the
// antrea-config ConfigMap: strict decoding (every unknown key is an error that names it with its
// path, with a hint when it is a known key in the wrong place), defaults, and validation with
// field paths. Each loaded configuration carries its own feature gate set.
package config

import (
	"time"

	"k8s.io/component-base/featuregate"
)

// File names under which the ConfigMap keys are mounted; used in messages.
const (
	AgentFileName      = "antrea-agent.conf"
	ControllerFileName = "antrea-controller.conf"
)

// Agent defaults and limits.
const (
	DefaultOVSRunDir = "/var/run/openvswitch"
	DefaultCNISocket = "/var/run/antrea/cni.sock"
	// MaxOVSBridges is the number of secondary bridges supported: one, as in Antrea.
	MaxOVSBridges = 1
	// MaxPhysicalInterfaces is the number of uplinks one bridge may have, as in Antrea.
	MaxPhysicalInterfaces = 8
	// maxUnixSocketPath is sizeof(sockaddr_un.sun_path) minus the terminating NUL.
	maxUnixSocketPath = 107
)

// Controller defaults.
const (
	DefaultAPIPort           = 10349
	DefaultIPPoolGCInterval  = 2 * time.Minute
	DefaultIPPoolGracePeriod = time.Minute
	// minGCInterval keeps a typo ("2ms") from turning the collector into a busy loop against the API.
	minGCInterval = time.Second
)

// DatapathType is the Open vSwitch datapath of the secondary bridge.
type DatapathType string

const (
	// DatapathSystem is the kernel datapath (the openvswitch module).
	DatapathSystem DatapathType = "system"
	// DatapathNetdev is the userspace datapath, for hosts without the kernel module.
	DatapathNetdev DatapathType = "netdev"
)

// Agent is antrea-agent.conf after defaulting and validation. The JSON names are the YAML keys.
type Agent struct {
	// FeatureGates is the map as written; query Gates rather than this map.
	FeatureGates map[string]bool `json:"featureGates,omitempty"`
	// OVSDatapathType is system (default) or netdev.
	OVSDatapathType DatapathType `json:"ovsDatapathType,omitempty"`
	// OVSRunDir holds the OVSDB socket (db.sock); default /var/run/openvswitch.
	OVSRunDir string `json:"ovsRunDir,omitempty"`
	// CNISocket is where the agent serves the CNI shim; default /var/run/antrea/cni.sock.
	CNISocket string `json:"cniSocket,omitempty"`
	// ClientConnection says how to reach the Kubernetes API.
	ClientConnection ClientConnection `json:"clientConnection,omitempty"`
	// SecondaryNetwork configures the secondary OVS bridge.
	SecondaryNetwork SecondaryNetworkConfig `json:"secondaryNetwork,omitempty"`

	// Gates is this configuration's own gate set, built from FeatureGates.
	Gates featuregate.FeatureGate `json:"-"`
}

// ClientConnection says how to reach the Kubernetes API.
type ClientConnection struct {
	// Kubeconfig is a kubeconfig file; empty means the in-cluster service account.
	Kubeconfig string `json:"kubeconfig,omitempty"`
}

// SecondaryNetworkConfig configures the secondary OVS bridge.
type SecondaryNetworkConfig struct {
	// OVSBridges holds at most one bridge.
	OVSBridges []OVSBridge `json:"ovsBridges,omitempty"`
}

// OVSBridge is the secondary bridge and its uplinks.
type OVSBridge struct {
	// BridgeName is a valid Linux interface name.
	BridgeName string `json:"bridgeName"`
	// PhysicalInterfaces are 0 to 8 distinct uplink NICs.
	PhysicalInterfaces []string `json:"physicalInterfaces,omitempty"`
	// EnableMulticastSnooping turns on IGMP/MLD snooping on the bridge; default false.
	EnableMulticastSnooping bool `json:"enableMulticastSnooping,omitempty"`
}

// Bridge returns the configured secondary bridge, or false when there is none.
func (a *Agent) Bridge() (OVSBridge, bool) {
	if len(a.SecondaryNetwork.OVSBridges) == 0 {
		return OVSBridge{}, false
	}
	return a.SecondaryNetwork.OVSBridges[0], true
}

// Controller is antrea-controller.conf after defaulting and validation.
type Controller struct {
	// FeatureGates is the map as written; query Gates rather than this map.
	FeatureGates map[string]bool
	// ClientConnection says how to reach the Kubernetes API.
	ClientConnection ClientConnection
	// APIPort is the HTTPS port of the admission webhook; default 10349.
	APIPort int
	// SelfSignedCert makes the controller generate its own serving certificate; default true.
	SelfSignedCert bool
	// IPPoolGC tunes the release of allocations whose owner is gone.
	IPPoolGC IPPoolGC

	// Gates is this configuration's own gate set, built from FeatureGates.
	Gates featuregate.FeatureGate
}

// IPPoolGC tunes the garbage collection of IPPool allocations.
type IPPoolGC struct {
	// Interval between two collections; default 2m.
	Interval time.Duration
	// GracePeriod is how long an allocation whose owner is gone is kept before it is released,
	// so that an agent that is still attaching is not raced; default 1m, 0 releases at once.
	GracePeriod time.Duration
}

// controllerFile is antrea-controller.conf as written: pointers tell "unset" from an explicit
// zero (selfSignedCert: false, gracePeriod: 0s).
type controllerFile struct {
	FeatureGates     map[string]bool  `json:"featureGates,omitempty"`
	ClientConnection ClientConnection `json:"clientConnection,omitempty"`
	APIPort          *int             `json:"apiPort,omitempty"`
	SelfSignedCert   *bool            `json:"selfSignedCert,omitempty"`
	IPPoolGC         ipPoolGCFile     `json:"ipPoolGC,omitempty"`
}

type ipPoolGCFile struct {
	Interval    *duration `json:"interval,omitempty"`
	GracePeriod *duration `json:"gracePeriod,omitempty"`
}
