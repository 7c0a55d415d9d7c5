package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPAddressPhase is the state of one address recorded in an IPPool's status.
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

// IPPool is a cluster-scoped pool of addresses with the subnet they belong to.
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IPPoolSpec   `json:"spec"`
	Status IPPoolStatus `json:"status,omitempty"`
}

// IPPoolSpec lists the allocatable ranges and the subnet they sit in.
type IPPoolSpec struct {
	// IPRanges are CIDRs or start/end ranges; every one must lie inside the subnet.
	IPRanges []IPRange `json:"ipRanges"`
	// SubnetInfo is the gateway, prefix length and VLAN shared by every address of the pool.
	SubnetInfo SubnetInfo `json:"subnetInfo"`
}

// IPRange is either a CIDR or an inclusive start/end pair, never both.
type IPRange struct {
	CIDR  string `json:"cidr,omitempty"`
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// SubnetInfo describes the subnet of a pool.
type SubnetInfo struct {
	Gateway      string `json:"gateway"`
	PrefixLength int32  `json:"prefixLength"`
	// VLAN is used when the NetworkAttachmentDefinition sets no vlan of its own; 0 means untagged.
	VLAN int32 `json:"vlan,omitempty"`
}

// IPPoolStatus records every address handed out and the pool's usage.
type IPPoolStatus struct {
	IPAddresses []IPAddressState `json:"ipAddresses,omitempty"`
	Usage       IPPoolUsage      `json:"usage,omitempty"`
}

// IPAddressState is one address and who holds it.
type IPAddressState struct {
	IPAddress string         `json:"ipAddress"`
	Phase     IPAddressPhase `json:"phase"`
	Owner     IPAddressOwner `json:"owner"`
}

// IPAddressOwner says who holds an address.
type IPAddressOwner struct {
	Pod *PodOwner `json:"pod,omitempty"`
}

// PodOwner identifies one interface of one Pod sandbox.
type PodOwner struct {
	Name        string `json:"name"`
	Namespace   string `json:"namespace"`
	ContainerID string `json:"containerID"`
	// IFName is the interface inside the Pod; with ContainerID it keys an allocation.
	IFName string `json:"ifName,omitempty"`
	// UID is the Pod's UID; a Pod recreated under the same name has another one.
	UID string `json:"uid,omitempty"`
}

// IPPoolUsage counts allocatable and used addresses.
type IPPoolUsage struct {
	Total int `json:"total"`
	Used  int `json:"used"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// IPPoolList is a list of IPPools.
type IPPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []IPPool `json:"items"`
}
