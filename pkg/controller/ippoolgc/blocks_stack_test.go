package ippoolgc

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/apis/crd/validation"
	"github.com/podvlan/podvlan/pkg/controller/controllertest"
)

func TestJudgeBlock(t *testing.T) {
	held := []v1beta1.IPAddressState{{IPAddress: "10.0.0.2"}}
	for _, tc := range []struct {
		name       string
		node       string
		holders    []v1beta1.IPAddressState
		nodeExists bool
		want       BlockVerdict
	}{
		{"a deleted Node's block is taken back", "n1", held, false, TakeBack},
		{"an empty block of a deleted Node is taken back too", "n1", nil, false, TakeBack},
		{"a block of an existing Node, Ready or not, is kept", "n1", held, true, KeepBlock},
		{"an empty shared block is deleted", "", nil, false, DeleteBlock},
		{"a shared block with holders has them judged", "", held, false, JudgeHolders},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &v1beta1.IPPoolBlock{Spec: v1beta1.IPPoolBlockSpec{NodeName: tc.node}, Status: v1beta1.IPPoolBlockStatus{IPAddresses: tc.holders}}
			if got := JudgeBlock(b, tc.nodeExists); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBlocksOfDeletedAndNotReadyNodes: the block of a Node that does not exist is taken back
// (made shared, holders kept) after the grace period; the block of a NotReady Node is never
// touched; holders of a shared block whose Pods are gone are released, live ones kept; an empty
// shared block is deleted; the pool's usage counts the blocks' holders.
func TestBlocksOfDeletedAndNotReadyNodes(t *testing.T) {
	const grace = time.Minute
	s := newStack(t, grace, time.Hour)
	env := s.env
	ctx := controllertest.Ctx(t)
	ns := env.Namespace(t)
	live := env.CreatePod(t, ns, "live")
	gone := env.CreatePod(t, ns, "gone")

	notReady := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: env.Name("notready")},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}}}
	if _, err := env.Kube.CoreV1().Nodes().Create(ctx, notReady, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.CoreV1().Nodes().Delete(context.Background(), notReady.Name, metav1.DeleteOptions{})
	})

	subnet := env.FreeSubnet(t)
	pool := env.MustCreatePool(t, env.NewPool("blk", subnet, 0, v1beta1.IPRange{CIDR: subnet.String()}))
	block := func(name, node, cidr string, holders ...v1beta1.IPAddressState) *v1beta1.IPPoolBlock {
		b, err := env.CRD.CrdV1beta1().IPPoolBlocks().Create(ctx, &v1beta1.IPPoolBlock{
			ObjectMeta: metav1.ObjectMeta{Name: pool.Name + "." + name},
			Spec:       v1beta1.IPPoolBlockSpec{Pool: pool.Name, CIDR: cidr, NodeName: node},
			Status:     v1beta1.IPPoolBlockStatus{IPAddresses: holders, Used: len(holders)},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = env.CRD.CrdV1beta1().IPPoolBlocks().Delete(context.Background(), b.Name, metav1.DeleteOptions{})
		})
		return b
	}
	a := func(host int) string { return controllertest.Addr(subnet, host).String() }
	deletedNode := env.Name("deleted")
	orphanedBlock := block("a", deletedNode, a(0)+"/30",
		controllertest.Entry(controllertest.Addr(subnet, 2), gone, "c-gone", "eth1"),
		controllertest.Entry(controllertest.Addr(subnet, 3), live, "c-live", "eth1"))
	partitioned := block("b", notReady.Name, a(4)+"/30", controllertest.Entry(controllertest.Addr(subnet, 5), gone, "c-gone2", "eth1"))
	empty := block("c", "", a(8)+"/30")
	env.DeletePod(t, gone)
	s.waitForPodCache(t, map[string]*corev1.Pod{ns + "/gone": nil})
	controllertest.Eventually(t, 30*time.Second, func() (bool, string) {
		_, e1 := s.collector.opts.Blocks.Get(orphanedBlock.Name)
		_, e2 := s.collector.opts.Blocks.Get(empty.Name)
		_, e3 := s.collector.opts.Nodes.Get(notReady.Name)
		return e1 == nil && e2 == nil && e3 == nil, "block and Node caches not synced"
	})

	get := func(name string) *v1beta1.IPPoolBlock {
		b, err := env.CRD.CrdV1beta1().IPPoolBlocks().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// First pass: the orphaned block starts its grace period, the empty shared block goes, the
	// usage counts the holders.
	if _, err := s.collector.CollectOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if b := get(orphanedBlock.Name); b.Spec.NodeName != deletedNode {
		t.Errorf("the block of deleted Node %s was taken back before the grace period: %+v", deletedNode, b.Spec)
	}
	if get(empty.Name) != nil {
		t.Errorf("the empty shared block %s was not deleted", empty.Name)
	}
	parsed, err := validation.ParsePool(pool)
	if err != nil {
		t.Fatal(err)
	}
	// No agent wrote the pool's status (with blocks none does): the total is the collector's.
	if p, err := env.CRD.CrdV1beta1().IPPools().Get(ctx, pool.Name, metav1.GetOptions{}); err != nil ||
		p.Status.Usage.InBlocks != 3 || p.Status.Usage.Used != 3 || p.Status.Usage.Blocks != 3 || p.Status.Usage.Total != parsed.UsageTotal() {
		t.Errorf("pool usage after the first pass: %+v (%v), want 3 in 3 blocks of %d", p.Status.Usage, err, parsed.UsageTotal())
	}

	// After the grace period: taken back, holders kept; the NotReady Node's block untouched.
	s.advance(grace)
	if _, err := s.collector.CollectOnce(ctx); err != nil {
		t.Fatal(err)
	}
	b := get(orphanedBlock.Name)
	if b.Spec.NodeName != "" || len(b.Status.IPAddresses) != 2 {
		t.Fatalf("after the grace period the deleted Node's block is %+v, want shared with its 2 holders", b)
	}
	if p := get(partitioned.Name); p.Spec.NodeName != notReady.Name || len(p.Status.IPAddresses) != 1 || p.ResourceVersion != partitioned.ResourceVersion {
		t.Errorf("the NotReady Node's block changed: %+v", p)
	}
	controllertest.Eventually(t, 30*time.Second, func() (bool, string) {
		c, err := s.collector.opts.Blocks.Get(orphanedBlock.Name)
		return err == nil && c.Spec.NodeName == "", "cache does not show the shared block yet"
	})

	// Its holders are judged like any allocation: the gone Pod's after its grace period.
	if _, err := s.collector.CollectOnce(ctx); err != nil {
		t.Fatal(err)
	}
	s.advance(grace)
	if _, err := s.collector.CollectOnce(ctx); err != nil {
		t.Fatal(err)
	}
	b = get(orphanedBlock.Name)
	if len(b.Status.IPAddresses) != 1 || b.Status.IPAddresses[0].Owner.Pod.Name != "live" {
		t.Errorf("holders of the shared block after collection: %+v, want only the live Pod's", b.Status.IPAddresses)
	}
	if p := get(partitioned.Name); p.Spec.NodeName != notReady.Name || len(p.Status.IPAddresses) != 1 {
		t.Errorf("the NotReady Node's block changed: %+v", p)
	}
}
