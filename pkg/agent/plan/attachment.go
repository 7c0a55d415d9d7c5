package plan

import (
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/pkg/cni/netconf"
	"github.com/podvlan/podvlan/pkg/ipam"
)

// Sandbox identifies the Pod sandbox attachments are made in.
type Sandbox struct {
	PodNamespace string
	PodName      string
	// PodUID may be empty when the runtime does not pass K8S_POD_UID.
	PodUID      string
	ContainerID string
	// NetNS is the sandbox's network namespace path; it may be empty on DEL.
	NetNS string
}

// Way is how the CNI call that asked for an attachment came in (DESIGN.md "Three ways in").
type Way string

// The ways in; the values are what ports and intents record.
const (
	// Chained: the antrea entry chained after the primary plugin; networks from the annotation.
	Chained Way = "chained"
	// Delegate: Multus runs antrea with one network's configuration.
	Delegate Way = "delegate"
	// IPAMOnly: another plugin's configuration with ipam.type antrea; addresses only.
	IPAMOnly Way = "ipam"
)

// Attachment is one planned attachment: a network under one interface name of a Pod sandbox.
// Everything the engine does, the CNI result and CHECK derive from it (with Addressing once the
// addresses are known).
type Attachment struct {
	// Network names the network: "namespace/name" of its NetworkAttachmentDefinition, or the name
	// of a configuration that came on stdin.
	Network string
	IfName  string
	MTU     int
	// VLAN is the access VLAN: the network's own, else the IPPools', else 0 (untagged).
	VLAN int
	// MAC is the requested MAC of the Pod end; nil lets the kernel choose.
	MAC net.HardwareAddr
	// Pools are IPPool names; Static are addresses asked for explicitly.
	Pools  []string
	Static []ipam.StaticAddress
	// Routes as configured; a route without a next hop takes the gateway of its family once the
	// addresses are known (see Address).
	Routes []netconf.Route
	DNS    types.DNS
	// DefaultRoute are gateways (at most one per family) through which the Pod's default route
	// goes instead of through its primary interface: the annotation's default-route.
	DefaultRoute []netip.Addr
	// Way is how the call that asked for it came in; CNI GC of one way never touches another's.
	Way Way
	// WritesStatus says the agent writes the network-status entry of this attachment: on the
	// chained way in; under Multus, Multus does. The port then records the entry, so that
	// reconciliation can write it again if the agent died before it was written.
	WritesStatus bool
}

// WantsAddresses reports whether the attachment gets addresses from the allocator.
func (a *Attachment) WantsAddresses() bool { return len(a.Pools) > 0 || len(a.Static) > 0 }

// Owner is the allocator's key of the attachment's addresses in sb.
func (a *Attachment) Owner(sb Sandbox) ipam.Owner {
	return OwnerOf(sb, a.IfName)
}

// Request is what the allocator is asked for the attachment in sb.
func (a *Attachment) Request(sb Sandbox) ipam.Request {
	return ipam.Request{Owner: a.Owner(sb), Pools: a.Pools, Static: a.Static, VLAN: a.VLAN}
}

// OwnerOf is the allocator's key of the addresses of interface ifName of sb.
func OwnerOf(sb Sandbox, ifName string) ipam.Owner {
	return ipam.Owner{Namespace: sb.PodNamespace, Name: sb.PodName, UID: sb.PodUID, ContainerID: sb.ContainerID, IFName: ifName}
}
