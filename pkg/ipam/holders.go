package ipam

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
)

// Held is one address a pool records as held, and where it is recorded. Readers outside the
// allocator (kubectl-podvlan, tests, benchmarks) take holders from here, so that they see both
// schemes: entries of the pool's status.ipAddresses and the holders of its IPPoolBlocks.
type Held struct {
	v1beta1.IPAddressState
	// Block is the IPPoolBlock recording the address; empty for an entry of status.ipAddresses.
	Block string
	// Node is the Node allocating inside that block; empty for a status entry or a shared block.
	Node string
}

// PoolHolders returns the holders of pool recorded in its status and in blocks (blocks of other
// pools are skipped, and so are blocks left by an earlier pool of the same name, told apart by
// their owner's UID): the status entries first, in their order, then each block's, by block name.
// A Node's block reports its holders about Options.BlockSyncDelay after they change, so a reader
// that needs a change it just caused must poll.
func PoolHolders(pool *v1beta1.IPPool, blocks []v1beta1.IPPoolBlock) []Held {
	out := make([]Held, 0, len(pool.Status.IPAddresses))
	for _, e := range pool.Status.IPAddresses {
		out = append(out, Held{IPAddressState: e})
	}
	mine := make([]*v1beta1.IPPoolBlock, 0, len(blocks))
	for i := range blocks {
		if b := &blocks[i]; b.Spec.Pool == pool.Name && !ownedByOther(b, pool) {
			mine = append(mine, b)
		}
	}
	slices.SortFunc(mine, func(x, y *v1beta1.IPPoolBlock) int { return cmp.Compare(x.Name, y.Name) })
	for _, b := range mine {
		for _, e := range b.Status.IPAddresses {
			out = append(out, Held{IPAddressState: e, Block: b.Name, Node: b.Spec.NodeName})
		}
	}
	return out
}

// ownedByOther reports whether b names an IPPool owner other than pool (same name, other UID).
func ownedByOther(b *v1beta1.IPPoolBlock, pool *v1beta1.IPPool) bool {
	if pool.UID == "" {
		return false
	}
	for _, r := range b.OwnerReferences {
		if r.Kind == "IPPool" && r.Name == pool.Name && r.UID != "" && r.UID != pool.UID {
			return true
		}
	}
	return false
}

// ReadPoolHolders reads pool and every IPPoolBlock from the API server and returns the pool with
// its holders (PoolHolders). It is one read of each, not a wait: see PoolHolders.
func ReadPoolHolders(ctx context.Context, client versioned.Interface, pool string) (*v1beta1.IPPool, []Held, error) {
	p, err := client.CrdV1beta1().IPPools().Get(ctx, pool, metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("get IPPool %s: %w", pool, err)
	}
	blocks, err := client.CrdV1beta1().IPPoolBlocks().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list IPPoolBlocks of IPPool %s: %w", pool, err)
	}
	return p, PoolHolders(p, blocks.Items), nil
}
