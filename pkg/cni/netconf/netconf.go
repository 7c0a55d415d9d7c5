// Package netconf reads the CNI network configuration of this plugin, both as the container
// runtime or Multus passes it on stdin and as it is written in a NetworkAttachmentDefinition's
// spec.config, validates it, and decides what comes from the referenced IPPools (VLAN precedence,
// address families, the IPv6 MTU floor). It does no I/O.
package netconf

import (
	"encoding/json"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/pkg/cni/request"
)

const (
	// PluginType is the CNI "type" of this plugin; configurations of other types are not ours.
	PluginType = "antrea"
	// IPAMType is the "ipam.type" that asks for addresses from IPPools.
	IPAMType = "antrea"
	// NetworkTypeVLAN is the only supported networkType.
	NetworkTypeVLAN = "vlan"

	// DefaultMTU applies when mtu is unset or 0.
	DefaultMTU = 1500
	// MinMTU is the smallest MTU IPv4 allows (RFC 791).
	MinMTU = 68
	// MinIPv6MTU is the smallest MTU IPv6 allows (RFC 8200).
	MinIPv6MTU = 1280
	// MaxMTU is the largest MTU a veth accepts.
	MaxMTU = 65535
	// MaxVLAN is the highest usable 802.1Q VLAN ID (4095 is reserved).
	MaxVLAN = 4094
	// MaxIPPools is one IPv4 and one IPv6 pool.
	MaxIPPools = 2
)

// SupportedCNIVersions are the released CNI spec versions this plugin speaks.
var SupportedCNIVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// Config is the configuration as written. Its JSON names are the CNI keys.
type Config struct {
	CNIVersion string `json:"cniVersion,omitempty"`
	Name       string `json:"name,omitempty"`
	Type       string `json:"type,omitempty"`
	// NetworkType is nil when the key is absent (or null), which makes the chained entry.
	NetworkType *string `json:"networkType,omitempty"`
	// MTU of both ends of the veth; 0 means DefaultMTU.
	MTU int `json:"mtu,omitempty"`
	// VLAN is the access VLAN; 0 means "from the IPPools, else untagged".
	VLAN int `json:"vlan,omitempty"`
	// IPAM is optional: without it the interface gets no address.
	IPAM *IPAMConfig `json:"ipam,omitempty"`
	// DNS is the standard CNI field, passed through to results.
	DNS *types.DNS `json:"dns,omitempty"`
	// Capabilities are the standard CNI capability switches.
	Capabilities map[string]bool `json:"capabilities,omitempty"`
	// RuntimeConfig is filled by the runtime (or Multus) from capabilities.
	RuntimeConfig *RuntimeConfig `json:"runtimeConfig,omitempty"`
	// PrevResult is the previous plugin's result in a chain, kept raw for pass-through.
	PrevResult json.RawMessage `json:"prevResult,omitempty"`
	// Args are the standard CNI args, kept raw.
	Args json.RawMessage `json:"args,omitempty"`
	// CNISocket is where the shim reaches the agent; read by the shim, accepted here so that a
	// configuration naming a non-default socket is valid.
	CNISocket string `json:"cniSocket,omitempty"`
	GCKeys
}

// gcKeys are the keys a runtime adds to the configuration of a GC call, as in GCKeys.
var gcKeys = []string{"cni.dev/valid-attachments", "cni.dev/attachments"}

// GCKeys are the keys a runtime adds to the network configuration of a GC call: the attachments
// to keep, under the name of CNI 1.1 and under the older draft's. Other keys of an attachment
// are ignored.
type GCKeys struct {
	ValidAttachments      []Attachment `json:"cni.dev/valid-attachments,omitempty"`
	DraftValidAttachments []Attachment `json:"cni.dev/attachments,omitempty"`
}

// Attachment is one attachment a GC call says is still in use.
type Attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

// IPAMConfig is the ipam section as written.
type IPAMConfig struct {
	Type string `json:"type,omitempty"`
	// IPPools are IPPool names: at most one IPv4 and one IPv6 pool.
	IPPools []string `json:"ippools,omitempty"`
	// Addresses are static addresses, as CNI's static IPAM takes them.
	Addresses []AddressConfig `json:"addresses,omitempty"`
	Routes    []RouteConfig   `json:"routes,omitempty"`
	DNS       *types.DNS      `json:"dns,omitempty"`
}

// AddressConfig is one static address as written.
type AddressConfig struct {
	// Address is an address with its prefix length, e.g. 10.1.1.5/24.
	Address string `json:"address"`
	// Gateway is optional.
	Gateway string `json:"gateway,omitempty"`
}

// RouteConfig is one route as written.
type RouteConfig struct {
	// Dst is a network in CIDR notation without host bits.
	Dst string `json:"dst"`
	// GW is the next hop; empty means the gateway of the pool of the same family.
	GW string `json:"gw,omitempty"`
}

// RuntimeConfig carries the per-attachment requests that Multus turns into CNI capabilities.
// Other capability keys (portMappings, bandwidth, ...) are accepted and ignored.
type RuntimeConfig struct {
	MAC string   `json:"mac,omitempty"`
	IPs []string `json:"ips,omitempty"`
}

// Network is a validated VLAN network of this plugin.
type Network struct {
	// Namespace and Name identify the NetworkAttachmentDefinition; Namespace is empty for a
	// configuration that came on stdin.
	Namespace string
	Name      string
	// CNIVersion is the configuration's cniVersion.
	CNIVersion string
	// MTU after defaulting.
	MTU int
	// VLAN as the network sets it; 0 leaves the choice to the IPPools (see ResolveWithPools).
	VLAN int
	// IPAM is nil when the network assigns no address.
	IPAM *IPAM
}

// Key names the network in messages: "namespace/name", or the name alone.
func (n *Network) Key() string {
	if n.Namespace == "" {
		return n.Name
	}
	return n.Namespace + "/" + n.Name
}

// IPAM is a validated ipam section.
type IPAM struct {
	// IPPools are the pool names, in order, without duplicates.
	IPPools []string
	// Addresses are static addresses.
	Addresses []Address
	// Routes to add inside the Pod.
	Routes []Route
	// DNS settings to report in the result.
	DNS types.DNS
}

// Address is a static address with its prefix length (host bits kept) and optional gateway.
type Address struct {
	Address netip.Prefix
	// Gateway is the zero Addr when none was given.
	Gateway netip.Addr
}

// Route is a route to add inside the Pod.
type Route struct {
	Dst netip.Prefix
	// GW is the zero Addr when the pool's gateway of the same family is to be used.
	GW netip.Addr
}

// Runtime is the validated runtimeConfig of one attachment.
type Runtime struct {
	// MAC is nil when none was requested.
	MAC net.HardwareAddr
	// IPs are the requested static addresses.
	IPs []request.IP
}
