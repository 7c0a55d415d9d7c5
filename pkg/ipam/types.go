package ipam

import (
	"net/netip"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// Owner is one interface of one Pod sandbox. ContainerID and IFName key an allocation: a repeated
// request for the same pair returns the same addresses.
type Owner struct {
	// Namespace and Name are the Pod's.
	Namespace string
	Name      string
	// UID is the Pod's UID (optional; tells a Pod from a later one of the same name).
	UID string
	// ContainerID is the Pod sandbox's container ID (CNI_CONTAINERID); required.
	ContainerID string
	// IFName is the interface name inside the Pod (CNI_IFNAME).
	IFName string
}

func (o Owner) podOwner() v1beta1.PodOwner {
	return v1beta1.PodOwner{Name: o.Name, Namespace: o.Namespace, ContainerID: o.ContainerID, IFName: o.IFName, UID: o.UID}
}

func ownerOf(p *v1beta1.PodOwner) Owner {
	return Owner{Namespace: p.Namespace, Name: p.Name, UID: p.UID, ContainerID: p.ContainerID, IFName: p.IFName}
}

// StaticAddress is an address the network configuration asks for explicitly (the `addresses` of the
// `ipam` section, or the Pod's `ips`).
type StaticAddress struct {
	// Address is the address with its prefix length, as the interface should carry it.
	Address netip.Prefix
	// Gateway is optional; a static address inside a pool defaults to the pool's gateway.
	Gateway netip.Addr
}

// Request asks for the addresses of one interface.
type Request struct {
	Owner Owner
	// Pools are IPPool names, at most one per address family; each gives one address.
	Pools []string
	// Static addresses. One inside a referenced pool is that pool's address for the owner (checked
	// free and recorded); one inside another pool is recorded there too; one outside every pool is
	// returned as it is.
	Static []StaticAddress
	// VLAN is the network's own VLAN (the NetworkAttachmentDefinition's `vlan`); when non-zero it
	// overrides the pools' VLANs, so pools with different VLANs are then no error.
	VLAN int
}

// IPConfig is one address of an interface.
type IPConfig struct {
	// Pool is the IPPool the address is recorded in; empty for a static address outside every pool.
	Pool string
	// Address is the address with the subnet's prefix length.
	Address netip.Prefix
	// Gateway is the subnet's gateway; invalid (zero) when there is none.
	Gateway netip.Addr
	// VLAN is the pool's subnetInfo.vlan (0 outside pools).
	VLAN int
}

// Result is the addresses given to an interface.
type Result struct {
	// IPs are in the order of Request.Pools, then the static addresses outside the referenced pools.
	IPs []IPConfig
	// VLAN is the VLAN the interface belongs to: Request.VLAN when set, else the pools' non-zero VLAN,
	// else 0 (untagged).
	VLAN int
}

// Allocation is one address recorded in a pool.
type Allocation struct {
	// Pool is the IPPool's name.
	Pool string
	// Address is the address held.
	Address netip.Addr
	// Phase is the recorded phase, Allocated for addresses this package hands out.
	Phase v1beta1.IPAddressPhase
	// Owner is the interface holding the address.
	Owner Owner
}

// Filter selects allocations; empty fields match everything.
type Filter struct {
	Pool        string // IPPool name
	Namespace   string
	Name        string
	UID         string
	ContainerID string
	// Match, when set, must also accept the allocation (for example "the Pod runs on this Node").
	Match func(Allocation) bool
}

func (f Filter) accepts(a Allocation) bool {
	o := a.Owner
	return (f.Pool == "" || f.Pool == a.Pool) && (f.Namespace == "" || f.Namespace == o.Namespace) &&
		(f.Name == "" || f.Name == o.Name) && (f.UID == "" || f.UID == o.UID) &&
		(f.ContainerID == "" || f.ContainerID == o.ContainerID) && (f.Match == nil || f.Match(a))
}

// Stats counts what an Allocator did since it was created.
type Stats struct {
	// Operations is the number of pool operations served: allocations, claims and releases.
	Operations uint64
	// Writes is the number of successful status writes; with coalescing it is below Operations.
	Writes uint64
	// Conflicts is the number of status writes rejected because the pool had changed; each one
	// was retried after re-reading the pool from the API server.
	Conflicts uint64
	// BlocksClaimed is the number of IPPoolBlocks this Allocator claimed for its Node.
	BlocksClaimed uint64
	// BlockWrites is the number of IPPoolBlock writes sent (creates and updates, failed ones
	// included): claims, holder reports, shared-block allocations and releases.
	BlockWrites uint64
	// BlockConflicts is the number of those writes that lost a race (AlreadyExists, Conflict).
	BlockConflicts uint64
	// BlockWriteErrors is the number of those writes that failed otherwise (a timeout, a block
	// deleted meanwhile): whether a timed-out write took effect is unknown to the sender.
	BlockWriteErrors uint64
	// SharedWrites is the number of those writes that took or released an address of a shared
	// block, or shared a block (the single-address fallback of a pool with no block to claim).
	SharedWrites uint64
}
