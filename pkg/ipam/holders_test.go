package ipam

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned/fake"
)

func heldState(ip, container string) v1beta1.IPAddressState {
	return v1beta1.IPAddressState{IPAddress: ip, Phase: v1beta1.IPAddressPhaseAllocated,
		Owner: v1beta1.IPAddressOwner{Pod: &v1beta1.PodOwner{Name: "p-" + container, Namespace: "ns", ContainerID: container, IFName: "eth1"}}}
}

func heldBlock(name, pool, node string, owner metav1.OwnerReference, holders ...v1beta1.IPAddressState) v1beta1.IPPoolBlock {
	b := v1beta1.IPPoolBlock{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.IPPoolBlockSpec{Pool: pool, NodeName: node}}
	if owner.UID != "" {
		b.OwnerReferences = []metav1.OwnerReference{owner}
	}
	b.Status.IPAddresses = holders
	return b
}

// summary renders holders as "ip@block/node" in order, for comparing.
func summary(hs []Held) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, h.IPAddress+"@"+h.Block+"/"+h.Node)
	}
	return strings.Join(parts, " ")
}

func TestPoolHoldersReadsTheStatusListAndThePoolsBlocks(t *testing.T) {
	pool := &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "uid-p"}}
	pool.Status.IPAddresses = []v1beta1.IPAddressState{heldState("10.0.0.9", "old"), heldState("10.0.0.2", "older")}
	mine := metav1.OwnerReference{Kind: "IPPool", Name: "p", UID: "uid-p"}
	stale := metav1.OwnerReference{Kind: "IPPool", Name: "p", UID: "uid-earlier"}
	for _, tc := range []struct {
		name   string
		blocks []v1beta1.IPPoolBlock
		want   string
	}{
		{name: "no blocks: the status list, in its order",
			want: "10.0.0.9@/ 10.0.0.2@/"},
		{name: "a Node's block adds its holders with the block and the Node",
			blocks: []v1beta1.IPPoolBlock{heldBlock("p.10-0-0-16-28", "p", "node-1", mine, heldState("10.0.0.17", "a"))},
			want:   "10.0.0.9@/ 10.0.0.2@/ 10.0.0.17@p.10-0-0-16-28/node-1"},
		{name: "a shared block has no Node",
			blocks: []v1beta1.IPPoolBlock{heldBlock("p.10-0-0-32-28", "p", "", mine, heldState("10.0.0.33", "b"))},
			want:   "10.0.0.9@/ 10.0.0.2@/ 10.0.0.33@p.10-0-0-32-28/"},
		{name: "blocks come by name whatever the list order",
			blocks: []v1beta1.IPPoolBlock{
				heldBlock("p.b", "p", "node-2", mine, heldState("10.0.0.50", "c")),
				heldBlock("p.a", "p", "node-1", mine, heldState("10.0.0.40", "d"), heldState("10.0.0.41", "e"))},
			want: "10.0.0.9@/ 10.0.0.2@/ 10.0.0.40@p.a/node-1 10.0.0.41@p.a/node-1 10.0.0.50@p.b/node-2"},
		{name: "another pool's block is skipped",
			blocks: []v1beta1.IPPoolBlock{heldBlock("q.a", "q", "node-1", metav1.OwnerReference{}, heldState("10.0.0.60", "f"))},
			want:   "10.0.0.9@/ 10.0.0.2@/"},
		{name: "a block left by an earlier pool of the same name is skipped",
			blocks: []v1beta1.IPPoolBlock{heldBlock("p.a", "p", "node-1", stale, heldState("10.0.0.70", "g"))},
			want:   "10.0.0.9@/ 10.0.0.2@/"},
		{name: "a block without an owner is the pool's",
			blocks: []v1beta1.IPPoolBlock{heldBlock("p.a", "p", "node-1", metav1.OwnerReference{}, heldState("10.0.0.80", "h"))},
			want:   "10.0.0.9@/ 10.0.0.2@/ 10.0.0.80@p.a/node-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := summary(PoolHolders(pool, tc.blocks)); got != tc.want {
				t.Errorf("PoolHolders() = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPoolHoldersKeepsTheOwner(t *testing.T) {
	pool := &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	got := PoolHolders(pool, []v1beta1.IPPoolBlock{heldBlock("p.a", "p", "node-1", metav1.OwnerReference{}, heldState("10.0.0.17", "cid"))})
	if len(got) != 1 || got[0].Owner.Pod == nil || got[0].Owner.Pod.ContainerID != "cid" || got[0].Phase != v1beta1.IPAddressPhaseAllocated {
		t.Fatalf("PoolHolders() = %+v, want the block's entry with its owner and phase", got)
	}
}

func TestReadPoolHoldersReadsThePoolAndItsBlocks(t *testing.T) {
	pool := &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "uid-p"}}
	pool.Status.IPAddresses = []v1beta1.IPAddressState{heldState("10.0.0.9", "old")}
	blk := heldBlock("p.a", "p", "node-1", metav1.OwnerReference{Kind: "IPPool", Name: "p", UID: "uid-p"}, heldState("10.0.0.17", "a"))
	client := fake.NewSimpleClientset(pool, &blk)
	p, got, err := ReadPoolHolders(context.Background(), client, "p")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "p" || summary(got) != "10.0.0.9@/ 10.0.0.17@p.a/node-1" {
		t.Errorf("ReadPoolHolders() = %s, %s", p.Name, summary(got))
	}
	if _, _, err := ReadPoolHolders(context.Background(), client, "missing"); err == nil || !strings.Contains(err.Error(), "get IPPool missing") {
		t.Errorf("ReadPoolHolders(missing) error = %v, want one naming the pool", err)
	}
}
