package ippoolgc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	crdlisters "github.com/podvlan/podvlan/pkg/client/listers/crd/v1beta1"
)

// collectKey is the only item of the work queue: a pass always covers every pool, and the queue
// folds any number of triggers into one pending pass.
const collectKey = "collect"

// deletionBatchDelay folds a burst of Pod deletions (a Deployment scaled down, a Namespace deleted)
// into one pass.
const deletionBatchDelay = time.Second

// Recorder counts what the collector does; *metrics.Metrics satisfies it.
type Recorder interface {
	GCReleased(n int)
	GCPending(n int)
	GCRun(err error)
}

// Options tune a Collector.
type Options struct {
	// Interval between periodic passes (ipPoolGC.interval).
	Interval time.Duration
	// GracePeriod an orphan must stay orphaned before it is released (ipPoolGC.gracePeriod).
	GracePeriod time.Duration
	// PoolSelector restricts collection to labelled pools; nil means every pool. Tests use it to
	// leave alone the pools of other tests sharing the cluster.
	PoolSelector labels.Selector
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Blocks and Nodes, when set, turn on the collection of IPPoolBlocks: blocks of deleted Nodes
	// are taken back, dead holders of shared blocks released, empty shared blocks deleted, and each
	// pool's usage counts the holders its blocks report.
	Blocks crdlisters.IPPoolBlockLister
	Nodes  corelisters.NodeLister
}

// Collector releases allocations whose owner Pod is gone. Its state (the tracker) is touched by
// the single queue worker only.
type Collector struct {
	kube     kubernetes.Interface
	crd      versioned.Interface
	pools    crdlisters.IPPoolLister
	pods     corelisters.PodLister
	recorder Recorder
	opts     Options

	queue workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex // guards tracker against CollectOnce called by tests while Run works
	tracker *Tracker
}

// New returns a collector reading pools and pods from the given informers. It registers a handler
// on the Pod informer that triggers a pass when a Pod is deleted or terminates.
func New(kube kubernetes.Interface, crd versioned.Interface, pools crdlisters.IPPoolLister, podInformer cache.SharedIndexInformer,
	recorder Recorder, opts Options) (*Collector, error) {
	if opts.Interval <= 0 {
		return nil, fmt.Errorf("IPPool GC interval must be positive, got %v", opts.Interval)
	}
	if opts.GracePeriod < 0 {
		return nil, fmt.Errorf("IPPool GC grace period must not be negative, got %v", opts.GracePeriod)
	}
	if opts.PoolSelector == nil {
		opts.PoolSelector = labels.Everything()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Collector{
		kube: kube, crd: crd, pools: pools, pods: corelisters.NewPodLister(podInformer.GetIndexer()),
		recorder: recorder, opts: opts, tracker: NewTracker(opts.GracePeriod),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ippool-gc"}),
	}
	_, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			oldPod, ok1 := oldObj.(*corev1.Pod)
			newPod, ok2 := newObj.(*corev1.Pod)
			if ok1 && ok2 && !terminated(oldPod) && terminated(newPod) {
				c.queue.AddAfter(collectKey, deletionBatchDelay)
			}
		},
		DeleteFunc: func(any) { c.queue.AddAfter(collectKey, deletionBatchDelay) },
	})
	if err != nil {
		return nil, fmt.Errorf("watch Pod deletions: %w", err)
	}
	return c, nil
}

// usageBatchDelay folds the block changes of a burst of Pods (each Node reports its blocks'
// holders about a second after they change) into one pass that writes the pools' usage.
const usageBatchDelay = 2 * time.Second

// WatchUsage has a pass run soon after a pool is created or its spec changes (its total) and
// after an IPPoolBlock is claimed, reports other holders or is deleted (its pool's usage), so
// that kubectl get ippool follows the blocks within seconds rather than one interval later.
func (c *Collector) WatchUsage(pools, blocks cache.SharedIndexInformer) error {
	soon := func() { c.queue.AddAfter(collectKey, usageBatchDelay) }
	if _, err := pools.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { soon() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*v1beta1.IPPool)
			n, ok2 := newObj.(*v1beta1.IPPool)
			if ok1 && ok2 && o.Generation != n.Generation {
				soon()
			}
		},
	}); err != nil {
		return fmt.Errorf("watch IPPools for their usage: %w", err)
	}
	if _, err := blocks.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { soon() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*v1beta1.IPPoolBlock)
			n, ok2 := newObj.(*v1beta1.IPPoolBlock)
			if ok1 && ok2 && len(o.Status.IPAddresses) != len(n.Status.IPAddresses) {
				soon()
			}
		},
		DeleteFunc: func(any) { soon() },
	}); err != nil {
		return fmt.Errorf("watch IPPoolBlocks for their pools' usage: %w", err)
	}
	return nil
}

func terminated(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// Run collects until ctx ends: every interval, on Pod deletions and when a grace period ends. The
// caller starts the informers and waits for their sync first.
func (c *Collector) Run(ctx context.Context) {
	klog.InfoS("Starting IPPool garbage collection", "interval", c.opts.Interval, "gracePeriod", c.opts.GracePeriod)
	var wg sync.WaitGroup
	wg.Go(func() { wait.UntilWithContext(ctx, func(context.Context) { c.queue.Add(collectKey) }, c.opts.Interval) })
	wg.Go(func() {
		for c.processNext(ctx) {
		}
	})
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	klog.InfoS("Stopped IPPool garbage collection")
}

func (c *Collector) processNext(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	_, err := c.CollectOnce(ctx)
	if err != nil && ctx.Err() == nil {
		klog.ErrorS(err, "IPPool garbage collection failed; retrying")
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// Result is what one pass did.
type Result struct {
	// Released are the entries removed from pool statuses.
	Released []Key
	// Pending are the orphans whose grace period has not ended yet.
	Pending []Key
}

// CollectOnce runs one pass: judge every allocation against the Pod cache, track orphans, and
// release those orphaned for the whole grace period once a live read confirms their Pod is gone.
func (c *Collector) CollectOnce(ctx context.Context) (Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, err := c.collect(ctx)
	c.recorder.GCRun(err)
	c.recorder.GCPending(c.tracker.Pending())
	return res, err
}

func (c *Collector) collect(ctx context.Context) (Result, error) {
	pools, err := c.pools.List(c.opts.PoolSelector)
	if err != nil {
		return Result{}, fmt.Errorf("list IPPools from the cache: %w", err)
	}
	byName := make(map[string]*v1beta1.IPPool, len(pools))
	reasons := map[Key]string{}
	var orphans []Key
	for _, pool := range pools {
		byName[pool.Name] = pool
		for i := range pool.Status.IPAddresses {
			key, ok := KeyOf(pool.Name, &pool.Status.IPAddresses[i])
			if !ok {
				continue
			}
			pod, err := c.pods.Pods(key.Namespace).Get(key.Name)
			if err != nil && !apierrors.IsNotFound(err) {
				return Result{}, fmt.Errorf("read Pod %s/%s from the cache: %w", key.Namespace, key.Name, err)
			}
			if orphan, reason := JudgeOwner(pool.Status.IPAddresses[i].Owner.Pod, pod); orphan {
				orphans = append(orphans, key)
				reasons[key] = reason
			}
		}
	}
	var bp blockPass
	if c.opts.Blocks != nil {
		if bp, err = c.scanBlocks(byName); err != nil {
			return Result{}, err
		}
		orphans = append(orphans, bp.orphans...)
		for k, r := range bp.reasons {
			reasons[k] = r
		}
	}
	now := c.opts.Now()
	due, next := c.tracker.Observe(now, orphans)
	var blockErrs []error
	dueHolders := due[:0:0]
	for _, k := range due {
		b, ok := bp.takeBack[k]
		if !ok {
			dueHolders = append(dueHolders, k)
			continue
		}
		c.tracker.Forget(k)
		if _, err := c.takeBackBlock(ctx, b); err != nil {
			blockErrs = append(blockErrs, err)
		}
	}
	due = dueHolders
	if !next.IsZero() {
		c.queue.AddAfter(collectKey, next.Sub(now))
	}

	confirmed, errs := c.confirm(ctx, due, reasons)
	errs = append(errs, blockErrs...)
	var res Result
	// Holders of shared blocks: released from their block.
	byBlock := map[string]map[Key]bool{}
	for _, keys := range confirmed {
		for k := range keys {
			if name, ok := bp.inBlock[k]; ok {
				if byBlock[name] == nil {
					byBlock[name] = map[Key]bool{}
				}
				byBlock[name][k] = true
				delete(keys, k)
			}
		}
	}
	for _, name := range sortedPools(byBlock) {
		removed, err := c.releaseBlockEntries(ctx, name, byBlock[name])
		if err != nil {
			errs = append(errs, err)
		}
		for _, key := range removed {
			res.Released = append(res.Released, key)
			klog.InfoS("Released an address of a shared IPPoolBlock whose owner is gone", "ipPoolBlock", name, "address", key.IP,
				"pod", klog.KRef(key.Namespace, key.Name), "podUID", key.UID, "containerID", key.ContainerID,
				"interface", key.IFName, "reason", reasons[key])
		}
		for key := range byBlock[name] {
			c.tracker.Forget(key)
		}
		c.recorder.GCReleased(len(removed))
	}
	for _, b := range bp.empty {
		if err := c.deleteEmptyBlock(ctx, b); err != nil {
			errs = append(errs, err)
		}
	}
	if c.opts.Blocks != nil {
		if err := c.updateUsage(ctx, pools, bp.usage); err != nil {
			errs = append(errs, err)
		}
	}
	for _, poolName := range sortedPools(confirmed) {
		keys := confirmed[poolName]
		if len(keys) == 0 {
			continue
		}
		removed, err := releaseEntries(ctx, c.crd, byName[poolName], keys)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for i := range removed {
			key, _ := KeyOf(poolName, &removed[i])
			c.tracker.Forget(key)
			res.Released = append(res.Released, key)
			klog.InfoS("Released an IPPool address whose owner is gone", "ippool", poolName, "address", key.IP,
				"pod", klog.KRef(key.Namespace, key.Name), "podUID", key.UID, "containerID", key.ContainerID,
				"interface", key.IFName, "reason", reasons[key])
		}
		// Entries not removed were changed or released by someone else meanwhile.
		for key := range keys {
			c.tracker.Forget(key)
		}
		c.recorder.GCReleased(len(removed))
	}
	for _, k := range orphans {
		if _, tracked := c.tracker.firstSeen[k]; tracked {
			res.Pending = append(res.Pending, k)
		}
	}
	return res, errors.Join(errs...)
}

// confirm reads the Pod of every due orphan from the API server: the cache may lag behind a Pod
// that was just created. It returns the confirmed orphans grouped by pool; orphans whose Pod turns
// out live are forgotten (tracking starts again if the cache keeps disagreeing).
func (c *Collector) confirm(ctx context.Context, due []Key, reasons map[Key]string) (map[string]map[Key]bool, []error) {
	type podRef struct{ namespace, name string }
	live := map[podRef]*corev1.Pod{}
	read := map[podRef]bool{}
	var errs []error
	out := map[string]map[Key]bool{}
	for _, key := range due {
		ref := podRef{key.Namespace, key.Name}
		if !read[ref] {
			pod, err := c.kube.CoreV1().Pods(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				pod = nil
			case err != nil:
				errs = append(errs, fmt.Errorf("read Pod %s/%s: %w", key.Namespace, key.Name, err))
				continue
			}
			live[ref], read[ref] = pod, true
		}
		orphan, reason := JudgeOwner(&v1beta1.PodOwner{Namespace: key.Namespace, Name: key.Name, UID: key.UID}, live[ref])
		if !orphan {
			klog.V(2).InfoS("Kept an allocation: its Pod is live on the API server", "ippool", key.Pool, "address", key.IP,
				"pod", klog.KRef(key.Namespace, key.Name), "podUID", key.UID)
			c.tracker.Forget(key)
			continue
		}
		reasons[key] = reason
		if out[key.Pool] == nil {
			out[key.Pool] = map[Key]bool{}
		}
		out[key.Pool][key] = true
	}
	return out, errs
}

func sortedPools(m map[string]map[Key]bool) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// StripPod keeps only what the collector reads of a Pod (name, namespace, UID, phase), so that a
// cache of every Pod in the cluster stays small. Use it as the Pod informer's transform.
func StripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a DeletedFinalStateUnknown tombstone, or something else to pass on
	}
	return &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec:   corev1.PodSpec{NodeName: pod.Spec.NodeName},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}, nil
}
