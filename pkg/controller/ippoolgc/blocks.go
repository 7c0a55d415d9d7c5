package ippoolgc

import (
	"context"
	"errors"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/apis/crd/validation"
)

// nodeBlockKey is the tracker key of a Node's block whose Node is gone: the block's name, and
// the Node it names (a block given to another Node meanwhile is judged afresh).
func nodeBlockKey(b *v1beta1.IPPoolBlock) Key {
	return Key{Pool: b.Spec.Pool, IP: "block/" + b.Name, Name: b.Spec.NodeName}
}

// JudgeBlock decides what the collector does with an IPPoolBlock. nodeExists says whether the
// Node it names exists (ignored for shared blocks).
//   - a Node's block whose Node is gone: take it back (make it shared, keeping its holders, whose
//     Pods are then judged one by one like any other allocation);
//   - a Node's block whose Node exists, Ready or not: leave it alone. A NotReady Node may be
//     partitioned with its Pods running; its agent allocates in it without asking anyone;
//   - a shared block without holders: delete it, so that its addresses can be claimed again;
//   - a shared block with holders: judge the holders.
func JudgeBlock(b *v1beta1.IPPoolBlock, nodeExists bool) BlockVerdict {
	switch {
	case b.Spec.NodeName != "" && !nodeExists:
		return TakeBack
	case b.Spec.NodeName != "":
		return KeepBlock
	case len(b.Status.IPAddresses) == 0:
		return DeleteBlock
	default:
		return JudgeHolders
	}
}

// BlockVerdict is what JudgeBlock decided.
type BlockVerdict int

const (
	// KeepBlock leaves the block alone.
	KeepBlock BlockVerdict = iota
	// TakeBack makes a Node's block shared (after the grace period and a live read of the Node).
	TakeBack
	// DeleteBlock deletes an empty shared block.
	DeleteBlock
	// JudgeHolders judges each holder of a shared block like an entry of status.ipAddresses.
	JudgeHolders
)

// blockPass is what one pass found in the IPPoolBlocks.
type blockPass struct {
	orphans  []Key
	reasons  map[Key]string
	inBlock  map[Key]string // holder keys -> block name
	takeBack map[Key]*v1beta1.IPPoolBlock
	empty    []*v1beta1.IPPoolBlock
	usage    map[string]v1beta1.IPPoolUsage // per pool: InBlocks and Blocks only
}

// scanBlocks judges every IPPoolBlock from the caches.
// Blocks of pools the collector does not select (PoolSelector), or of pools gone from the cache
// (their owner reference lets the API server's garbage collector delete them), are skipped.
func (c *Collector) scanBlocks(selected map[string]*v1beta1.IPPool) (blockPass, error) {
	bp := blockPass{reasons: map[Key]string{}, inBlock: map[Key]string{}, takeBack: map[Key]*v1beta1.IPPoolBlock{},
		usage: map[string]v1beta1.IPPoolUsage{}}
	blocks, err := c.opts.Blocks.List(labels.Everything())
	if err != nil {
		return bp, fmt.Errorf("list IPPoolBlocks from the cache: %w", err)
	}
	for _, b := range blocks {
		if selected[b.Spec.Pool] == nil {
			continue
		}
		u := bp.usage[b.Spec.Pool]
		u.Blocks++
		u.InBlocks += len(b.Status.IPAddresses)
		bp.usage[b.Spec.Pool] = u
		nodeExists := true
		if b.Spec.NodeName != "" {
			_, err := c.opts.Nodes.Get(b.Spec.NodeName)
			if err != nil && !apierrors.IsNotFound(err) {
				return bp, fmt.Errorf("read Node %s from the cache: %w", b.Spec.NodeName, err)
			}
			nodeExists = err == nil
		}
		switch JudgeBlock(b, nodeExists) {
		case TakeBack:
			k := nodeBlockKey(b)
			bp.orphans = append(bp.orphans, k)
			bp.takeBack[k] = b
			bp.reasons[k] = fmt.Sprintf("Node %s no longer exists", b.Spec.NodeName)
		case DeleteBlock:
			bp.empty = append(bp.empty, b)
		case JudgeHolders:
			for i := range b.Status.IPAddresses {
				key, ok := KeyOf(b.Spec.Pool, &b.Status.IPAddresses[i])
				if !ok {
					continue
				}
				pod, err := c.pods.Pods(key.Namespace).Get(key.Name)
				if err != nil && !apierrors.IsNotFound(err) {
					return bp, fmt.Errorf("read Pod %s/%s from the cache: %w", key.Namespace, key.Name, err)
				}
				if orphan, reason := JudgeOwner(b.Status.IPAddresses[i].Owner.Pod, pod); orphan {
					bp.orphans = append(bp.orphans, key)
					bp.reasons[key] = reason
					bp.inBlock[key] = b.Name
				}
			}
		}
	}
	return bp, nil
}

// takeBackBlock makes a Node's block shared once a live read confirms the Node is gone. The write
// carries the resourceVersion judged: a block changed meanwhile is judged again next pass.
func (c *Collector) takeBackBlock(ctx context.Context, b *v1beta1.IPPoolBlock) (bool, error) {
	_, err := c.kube.CoreV1().Nodes().Get(ctx, b.Spec.NodeName, metav1.GetOptions{})
	switch {
	case err == nil:
		return false, nil // the Node is back (or the cache lagged)
	case !apierrors.IsNotFound(err):
		return false, fmt.Errorf("read Node %s: %w", b.Spec.NodeName, err)
	}
	shared := b.DeepCopy()
	shared.Spec.NodeName = ""
	_, err = c.crd.CrdV1beta1().IPPoolBlocks().Update(ctx, shared, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("take back IPPoolBlock %s of Node %s: %w", b.Name, b.Spec.NodeName, err)
	}
	klog.InfoS("Took back the IPPoolBlock of a deleted Node; its holders are judged like any allocation",
		"ipPoolBlock", b.Name, "ippool", b.Spec.Pool, "node", b.Spec.NodeName, "holders", len(b.Status.IPAddresses))
	return true, nil
}

// releaseBlockEntries removes the entries of keys from a shared block, with the same conditional
// write and retries as pool statuses. It returns the keys removed.
func (c *Collector) releaseBlockEntries(ctx context.Context, name string, keys map[Key]bool) ([]Key, error) {
	blocks := c.crd.CrdV1beta1().IPPoolBlocks()
	for attempt := 1; attempt <= maxReleaseAttempts; attempt++ {
		b, err := blocks.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read IPPoolBlock %s: %w", name, err)
		}
		if b.Spec.NodeName != "" {
			return nil, nil // a Node allocates in it now: its agent reconciles its holders
		}
		var kept []v1beta1.IPAddressState
		var removed []Key
		for i := range b.Status.IPAddresses {
			if k, ok := KeyOf(b.Spec.Pool, &b.Status.IPAddresses[i]); ok && keys[k] {
				removed = append(removed, k)
				continue
			}
			kept = append(kept, b.Status.IPAddresses[i])
		}
		if len(removed) == 0 {
			return nil, nil
		}
		b.Status.IPAddresses, b.Status.Used = kept, len(kept)
		_, err = blocks.Update(ctx, b, metav1.UpdateOptions{})
		if err == nil {
			return removed, nil
		}
		if !apierrors.IsConflict(err) {
			return nil, fmt.Errorf("update IPPoolBlock %s: %w", name, err)
		}
	}
	return nil, fmt.Errorf("update IPPoolBlock %s: still conflicting after %d attempts", name, maxReleaseAttempts)
}

// deleteEmptyBlock deletes a shared block without holders, on the condition that it is unchanged
// since it was judged (an allocation meanwhile makes the delete fail).
func (c *Collector) deleteEmptyBlock(ctx context.Context, b *v1beta1.IPPoolBlock) error {
	rv := b.ResourceVersion
	err := c.crd.CrdV1beta1().IPPoolBlocks().Delete(ctx, b.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		if err == nil {
			klog.V(2).InfoS("Deleted an empty shared IPPoolBlock", "ipPoolBlock", b.Name, "ippool", b.Spec.Pool)
		}
		return nil
	}
	return fmt.Errorf("delete empty IPPoolBlock %s: %w", b.Name, err)
}

// updateUsage writes each pool's usage: the entries of its status plus the holders its blocks
// report. A conflict is left to the next pass.
func (c *Collector) updateUsage(ctx context.Context, pools []*v1beta1.IPPool, usage map[string]v1beta1.IPPoolUsage) error {
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	var errs []error
	for _, p := range pools {
		u := usage[p.Name]
		want := p.Status.Usage
		want.InBlocks, want.Blocks = u.InBlocks, u.Blocks
		want.Used = len(p.Status.IPAddresses) + u.InBlocks
		// With address blocks no agent writes the pool's status, so its total would stay
		// unset on a pool created since (kubectl get ippool showing TOTAL 0).
		if parsed, err := validation.ParsePool(p); err == nil {
			want.Total = parsed.UsageTotal()
		}
		if want == p.Status.Usage {
			continue
		}
		updated := p.DeepCopy()
		updated.Status.Usage = want
		_, err := c.crd.CrdV1beta1().IPPools().UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("update the usage of IPPool %s: %w", p.Name, err))
		}
	}
	return errors.Join(errs...)
}
