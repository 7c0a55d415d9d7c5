package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPAddressPhase is the state of one address recorded in an IPPool's status.
// +kubebuilder:validation:Enum=Allocated;Reserved
type IPAddressPhase string

const (
	// IPAddressPhaseAllocated marks an address held by a live owner.
	IPAddressPhaseAllocated IPAddressPhase = "Allocated"
	// IPAddressPhaseReserved marks an address set aside for an owner that has not taken it yet.
	IPAddressPhaseReserved IPAddressPhase = "Reserved"
)

// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,path=ippools,singular=ippool,shortName=ipp
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:printcolumn:name="VLAN",type=integer,JSONPath=`.spec.subnetInfo.vlan`,description="VLAN of the subnet (empty: untagged)"
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=`.spec.subnetInfo.gateway`,description="Gateway of the subnet"
// +kubebuilder:printcolumn:name="Prefix",type=integer,JSONPath=`.spec.subnetInfo.prefixLength`,description="Prefix length of the subnet"
// +kubebuilder:printcolumn:name="Total",type=integer,JSONPath=`.status.usage.total`,description="Allocatable addresses"
// +kubebuilder:printcolumn:name="Used",type=integer,JSONPath=`.status.usage.used`,description="Allocated addresses"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// IPPool is a cluster-scoped pool of addresses with the subnet they belong to.
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IPPoolSpec   `json:"spec"`
	Status IPPoolStatus `json:"status,omitempty"`
}

// IPPoolSpec lists the allocatable ranges and the subnet they sit in. That ranges lie inside
// gateway/prefixLength and do not overlap is checked by the controller's admission webhook (a CEL
// rule building the subnet from the prefix length exceeds the API server's cost budget).
//
// +kubebuilder:validation:XValidation:rule="!isIP(self.subnetInfo.gateway) || self.ipRanges.all(r, (!has(r.cidr) || !isCIDR(r.cidr) || cidr(r.cidr).ip().family() == ip(self.subnetInfo.gateway).family()) && (!has(r.start) || !isIP(r.start) || ip(r.start).family() == ip(self.subnetInfo.gateway).family()))",message="every range must be of the gateway's address family"
type IPPoolSpec struct {
	// IPRanges are CIDRs or start/end ranges; every one must lie inside the subnet.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=128
	// +listType=atomic
	IPRanges []IPRange `json:"ipRanges"`
	// SubnetInfo is the gateway, prefix length and VLAN shared by every address of the pool.
	SubnetInfo SubnetInfo `json:"subnetInfo"`
}

// IPRange is either a CIDR or an inclusive start/end pair, never both.
//
// +kubebuilder:validation:XValidation:rule="has(self.cidr) != (has(self.start) || has(self.end))",message="a range is either cidr or start and end"
// +kubebuilder:validation:XValidation:rule="has(self.start) == has(self.end)",message="start and end go together"
// +kubebuilder:validation:XValidation:rule="!has(self.start) || !has(self.end) || !isIP(self.start) || !isIP(self.end) || ip(self.start).family() == ip(self.end).family()",message="start and end must be of one address family"
type IPRange struct {
	// CIDR is a network in CIDR notation without host bits, such as 10.10.1.0/26 or fd00:10::/120.
	// +kubebuilder:validation:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 10.10.1.0/26 or fd00:10::/120"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",message="must be the network address of the CIDR (no host bits set)"
	CIDR string `json:"cidr,omitempty"`
	// Start is the first address of an inclusive range.
	// +kubebuilder:validation:MaxLength=39
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IPv4 or IPv6 address"
	Start string `json:"start,omitempty"`
	// End is the last address of an inclusive range.
	// +kubebuilder:validation:MaxLength=39
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IPv4 or IPv6 address"
	End string `json:"end,omitempty"`
}

// SubnetInfo describes the subnet of a pool.
//
// +kubebuilder:validation:XValidation:rule="!isIP(self.gateway) || ip(self.gateway).family() == 6 || self.prefixLength <= 32",message="prefixLength of an IPv4 subnet must be 1..32"
type SubnetInfo struct {
	// Gateway is the subnet's router; it is never allocated.
	// +kubebuilder:validation:MaxLength=39
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IPv4 or IPv6 address"
	Gateway string `json:"gateway"`
	// PrefixLength is the length of the subnet's prefix: 1..32 for IPv4, 1..128 for IPv6.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	PrefixLength int32 `json:"prefixLength"`
	// VLAN is used when the NetworkAttachmentDefinition sets no vlan of its own; 0 means untagged.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4094
	VLAN int32 `json:"vlan,omitempty"`
}

// IPPoolStatus records every address handed out and the pool's usage.
type IPPoolStatus struct {
	// IPAddresses lists every address held, in the order they were allocated.
	// +listType=atomic
	IPAddresses []IPAddressState `json:"ipAddresses,omitempty"`
	Usage       IPPoolUsage      `json:"usage,omitempty"`
}

// IPAddressState is one address and who holds it.
type IPAddressState struct {
	// IPAddress is the address held, in its canonical text form.
	// +kubebuilder:validation:MaxLength=39
	IPAddress string `json:"ipAddress"`
	// Phase is Allocated for an address in use.
	Phase IPAddressPhase `json:"phase"`
	// Owner is who holds the address.
	Owner IPAddressOwner `json:"owner"`
}

// IPAddressOwner says who holds an address.
type IPAddressOwner struct {
	// Pod is set when the holder is an interface of a Pod.
	Pod *PodOwner `json:"pod,omitempty"`
}

// PodOwner identifies one interface of one Pod sandbox.
type PodOwner struct {
	// Name is the Pod's name.
	Name string `json:"name"`
	// Namespace is the Pod's namespace.
	Namespace string `json:"namespace"`
	// ContainerID is the Pod sandbox's container ID, as the container runtime reports it to CNI.
	ContainerID string `json:"containerID"`
	// IFName is the interface inside the Pod; with ContainerID it keys an allocation.
	IFName string `json:"ifName,omitempty"`
	// UID is the Pod's UID; a Pod recreated under the same name has another one.
	UID string `json:"uid,omitempty"`
}

// IPPoolUsage counts allocatable and used addresses.
type IPPoolUsage struct {
	// Total is the number of allocatable addresses: the ranges without network, broadcast and gateway addresses.
	// +kubebuilder:validation:Minimum=0
	Total int `json:"total"`
	// Used is the number of addresses held: those recorded in ipAddresses plus InBlocks.
	// +kubebuilder:validation:Minimum=0
	Used int `json:"used"`
	// InBlocks is the number of addresses held inside the pool's IPPoolBlocks, as the blocks last
	// reported them (the controller sums them up); absent while the pool has no blocks.
	// +kubebuilder:validation:Minimum=0
	InBlocks int `json:"inBlocks,omitempty"`
	// Blocks is the number of IPPoolBlocks carved from the pool.
	// +kubebuilder:validation:Minimum=0
	Blocks int `json:"blocks,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// IPPoolList is a list of IPPools.
type IPPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []IPPool `json:"items"`
}

// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,path=ippoolblocks,singular=ippoolblock,shortName=ippb
// +kubebuilder:printcolumn:name="Pool",type=string,JSONPath=`.spec.pool`,description="IPPool the block is carved from"
// +kubebuilder:printcolumn:name="CIDR",type=string,JSONPath=`.spec.cidr`,description="Addresses of the block"
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`,description="Node allocating inside the block; empty when shared"
// +kubebuilder:printcolumn:name="Used",type=integer,JSONPath=`.status.used`,description="Addresses held, as last reported"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// IPPoolBlock is an aligned piece of an IPPool's subnet claimed by one Node (spec.nodeName), whose
// agent allocates the block's addresses locally, or shared (no nodeName), whose addresses anyone
// allocates with a conditional write of the block. The name is derived from the pool and the CIDR,
// so that creating it is the claim: of two Nodes creating the same block, one gets AlreadyExists.
// It has no status subresource: a shared block's holders and its spec change in one write.
type IPPoolBlock struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IPPoolBlockSpec   `json:"spec"`
	Status IPPoolBlockStatus `json:"status,omitempty"`
}

// IPPoolBlockSpec says which addresses the block covers and who allocates them.
type IPPoolBlockSpec struct {
	// Pool is the IPPool's name.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="pool is immutable"
	Pool string `json:"pool"`
	// CIDR is the block: an aligned prefix inside the pool's subnet. Only addresses also inside the
	// pool's ranges and not reserved are allocatable.
	// +kubebuilder:validation:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cidr is immutable"
	CIDR string `json:"cidr"`
	// NodeName is the Node whose agent allocates inside the block; empty for a shared block.
	// +kubebuilder:validation:MaxLength=253
	NodeName string `json:"nodeName,omitempty"`
}

// IPPoolBlockStatus lists the block's holders. For a shared block it is the allocation record;
// for a Node's block it is a copy of the record the Node keeps, written shortly after it changes.
type IPPoolBlockStatus struct {
	// IPAddresses lists every address held in the block.
	// +listType=atomic
	IPAddresses []IPAddressState `json:"ipAddresses,omitempty"`
	// Used is the number of entries of ipAddresses.
	// +kubebuilder:validation:Minimum=0
	Used int `json:"used,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// IPPoolBlockList is a list of IPPoolBlocks.
type IPPoolBlockList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []IPPoolBlock `json:"items"`
}
