package podvlanctl

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	"github.com/podvlan/podvlan/pkg/ipam"
)

// Holder is one address of a pool and the Pod interface that holds it.
type Holder struct {
	// IP is the address held.
	IP string `json:"ip"`
	// Namespace and Pod name the holding Pod; empty for an owner that is not a Pod.
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	// UID is the holding Pod's UID when recorded; a Pod recreated under the same name has another.
	UID string `json:"uid,omitempty"`
	// ContainerID is the Pod sandbox's container ID, which with IfName names the OVS port.
	ContainerID string `json:"containerID,omitempty"`
	// IfName is the interface inside the Pod.
	IfName string `json:"ifName,omitempty"`
	// Node is where the allocation was made, when the store records it (per-Node blocks do);
	// empty otherwise, and the views then take the holding Pod's Node.
	Node string `json:"node,omitempty"`
	// Phase is the allocation's phase (Allocated, Reserved).
	Phase string `json:"phase,omitempty"`
}

// HolderSource lists the holders of a pool's addresses. The views depend on this interface only,
// so a change of where allocations are recorded is one new implementation.
type HolderSource interface {
	Holders(ctx context.Context, pool *v1beta1.IPPool) ([]Holder, error)
}

// StatusHolders reads holders from the IPPool's status.ipAddresses only, where an agent without
// address blocks (feature gate IPPoolBlocks off) and Antrea record allocations.
type StatusHolders struct{}

// Holders returns HoldersFromStatus(pool).
func (StatusHolders) Holders(_ context.Context, pool *v1beta1.IPPool) ([]Holder, error) {
	return HoldersFromStatus(pool), nil
}

// HoldersFromStatus converts status.ipAddresses into holders, in the recorded order.
func HoldersFromStatus(pool *v1beta1.IPPool) []Holder {
	return holdersOf(ipam.PoolHolders(pool, nil))
}

// BlockHolders reads holders wherever the agent records them: the pool's status.ipAddresses and
// the holders of the pool's IPPoolBlocks (ipam.PoolHolders). A Node's block reports its holders
// about a second after they change, so a view may lag a Pod just started or deleted by that much.
// Without the IPPoolBlock CRD (an installation of an earlier version) it reads the status only.
type BlockHolders struct {
	Client versioned.Interface
}

// Holders returns the pool's status entries, then its blocks' holders.
func (s BlockHolders) Holders(ctx context.Context, pool *v1beta1.IPPool) ([]Holder, error) {
	blocks, err := s.Client.CrdV1beta1().IPPoolBlocks().List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return HoldersFromStatus(pool), nil
	}
	if err != nil {
		return nil, fmt.Errorf("list IPPoolBlocks: %w", err)
	}
	return holdersOf(ipam.PoolHolders(pool, blocks.Items)), nil
}

func holdersOf(held []ipam.Held) []Holder {
	holders := make([]Holder, 0, len(held))
	for _, a := range held {
		h := Holder{IP: a.IPAddress, Phase: string(a.Phase), Node: a.Node}
		if p := a.Owner.Pod; p != nil {
			h.Namespace, h.Pod, h.UID, h.ContainerID, h.IfName = p.Namespace, p.Name, p.UID, p.ContainerID, p.IFName
		}
		holders = append(holders, h)
	}
	return holders
}
