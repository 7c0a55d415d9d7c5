package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	crdinformers "github.com/podvlan/podvlan/pkg/client/informers/externalversions/crd/v1beta1"
	crdlisters "github.com/podvlan/podvlan/pkg/client/listers/crd/v1beta1"
)

// Options tune an Allocator; zero values take the defaults.
type Options struct {
	// Timeout bounds how long one request waits for its pool's status write, conflicts included.
	// A shorter context deadline wins. Default 30s.
	Timeout time.Duration
	// RetryBackoff is the contention window after a first conflict: writers pause a random part
	// of the window, which doubles with every conflict, up to MaxRetryBackoff, and halves with every
	// successful write. Defaults 5ms and 1s.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// ReleasedHold is how long a released address is handed out only when nothing else is free.
	// Default 5 minutes; negative disables it.
	ReleasedHold time.Duration

	// NodeName, when set, turns on block allocation for this Node (see the package doc): the
	// Allocator claims IPPoolBlocks for the Node and allocates inside them locally. Blocks and
	// StateDir are then required. Without NodeName every allocation is an entry of the pool's
	// status.ipAddresses (the previous version's scheme, kept for tools and tests).
	NodeName string
	// Blocks is the IPPoolBlock informer (block allocation only). Create the Allocator before
	// starting it.
	Blocks crdinformers.IPPoolBlockInformer
	// StateDir is the Node-local directory of block records (block allocation only), for example
	// /var/run/antrea/ipam: it must outlive the agent process but not the Node's sandboxes.
	StateDir string
	// BlockSize is the largest block, in addresses, a Node claims at once (a power of two; others
	// are rounded down). Every agent of a cluster must use the same value. Default 64.
	BlockSize int
	// BlockSyncDelay is how long after a change of a Node's block its holders are copied into the
	// IPPoolBlock's status (one write per block for the changes of that delay). Default 1s.
	BlockSyncDelay time.Duration
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 5 * time.Millisecond
	}
	if o.MaxRetryBackoff <= 0 {
		o.MaxRetryBackoff = time.Second
	}
	if o.ReleasedHold == 0 {
		o.ReleasedHold = 5 * time.Minute
	}
	if o.BlockSize <= 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.BlockSyncDelay <= 0 {
		o.BlockSyncDelay = time.Second
	}
	return o
}

// quarantineSize bounds the released addresses remembered per pool.
const quarantineSize = 4096

// Allocator hands out addresses from IPPools. It reads pools from an informer cache and writes
// their status through the API server. Create one per process (agent or controller) and share it:
// its coalescing works across all the requests it serves. It is safe for concurrent use.
type Allocator struct {
	client     versioned.Interface
	lister     crdlisters.IPPoolLister
	opts       Options
	quarantine *quarantine
	blocks     *blockMode // nil without Options.NodeName

	mu      sync.Mutex
	workers map[string]*poolWorker
	spaces  map[string]cachedSpace

	operations, writes, conflicts atomic.Uint64
}

type cachedSpace struct {
	uid        types.UID
	generation int64
	space      *poolSpace
	err        error
}

// NewAllocator returns an Allocator on the given client and IPPool informer. It registers an event
// handler on the informer (to learn which addresses other agents release), so call it before
// starting the informer factory, and wait for the informer to sync before allocating.
func NewAllocator(client versioned.Interface, pools crdinformers.IPPoolInformer, opts Options) (*Allocator, error) {
	opts = opts.withDefaults()
	a := &Allocator{
		client:     client,
		lister:     pools.Lister(),
		opts:       opts,
		quarantine: newQuarantine(opts.ReleasedHold, quarantineSize),
		workers:    map[string]*poolWorker{},
		spaces:     map[string]cachedSpace{},
	}
	_, err := pools.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			oldPool, ok1 := oldObj.(*v1beta1.IPPool)
			newPool, ok2 := newObj.(*v1beta1.IPPool)
			if ok1 && ok2 && oldPool.ResourceVersion != newPool.ResourceVersion {
				a.quarantine.add(newPool.Name, removedAddresses(oldPool, newPool), time.Now())
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watch IPPools for released addresses: %w", err)
	}
	if opts.NodeName != "" {
		if opts.Blocks == nil || opts.StateDir == "" {
			return nil, errors.New("block allocation for Node " + opts.NodeName + " needs an IPPoolBlock informer and a state directory")
		}
		if a.blocks, err = newBlockMode(a, opts); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Stats returns what the Allocator did so far.
func (a *Allocator) Stats() Stats {
	s := Stats{Operations: a.operations.Load(), Writes: a.writes.Load(), Conflicts: a.conflicts.Load()}
	if m := a.blocks; m != nil {
		s.BlocksClaimed, s.BlockWrites, s.BlockConflicts = m.claims.Load(), m.writes.Load(), m.conflicts.Load()
		s.BlockWriteErrors, s.SharedWrites = m.writeErrors.Load(), m.sharedWrites.Load()
	}
	return s
}

// FlushBlocks writes now the holders of the Node's blocks that are waiting for their report to
// the API server (Options.BlockSyncDelay). Without block allocation it does nothing. The agent
// calls it on shutdown; tests call it before reading the blocks.
func (a *Allocator) FlushBlocks() {
	if a.blocks != nil {
		a.blocks.flush()
	}
}

// LoadBlocks adopts the Node's blocks now (their records, and the IPPoolBlocks naming the Node)
// instead of at the first operation, and has their holders reported where the IPPoolBlocks lag
// behind the records: after a kill -9 the last changes may not have been reported, and nothing
// else reports them until their block changes again. Without block allocation it does nothing.
// It waits for the IPPoolBlock cache, within ctx.
func (a *Allocator) LoadBlocks(ctx context.Context) error {
	if a.blocks == nil {
		return nil
	}
	return a.blocks.ensureLoaded(ctx)
}

// do runs one operation on one pool: in the Node's blocks, or as a status entry of the pool.
func (a *Allocator) do(ctx context.Context, pool string, space *poolSpace, op poolOp) opOutcome {
	if a.blocks == nil || op.kind == opRelease {
		return a.worker(pool).do(ctx, op)
	}
	p, err := a.currentPool(ctx, pool)
	if err != nil {
		return opOutcome{err: err}
	}
	out := a.blocks.do(ctx, p, space, op)
	if out.err == nil {
		a.operations.Add(1)
	}
	return out
}

// Allocate gives the owner one address per referenced pool, plus its static addresses. It is
// idempotent: a repeated request for the same owner (container ID and interface name) returns the
// addresses it already holds. On error nothing new stays allocated. Errors about pools are of the
// types in this package (PoolNotFoundError, PoolExhaustedError, PoolFamilyError, VLANConflictError,
// StaticAddressError, InvalidPoolError, WriteConflictError), possibly joined; use errors.As.
func (a *Allocator) Allocate(ctx context.Context, req Request) (*Result, error) {
	if req.Owner.ContainerID == "" {
		return nil, errors.New("allocate: the owner has no container ID")
	}
	if len(req.Pools) == 0 && len(req.Static) == 0 {
		return nil, errors.New("allocate: neither an IPPool nor a static address is requested")
	}
	jobs, vlan, err := a.planRequest(ctx, req)
	if err != nil {
		return nil, err
	}

	outcomes := make([]opOutcome, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		if j.op == nil {
			continue
		}
		wg.Go(func() { outcomes[i] = a.do(ctx, j.pool, j.space, *j.op) })
	}
	wg.Wait()

	var errs []error
	for _, o := range outcomes {
		if o.err != nil {
			errs = append(errs, o.err)
		}
	}
	if len(errs) > 0 {
		a.rollback(req.Owner, jobs, outcomes)
		return nil, errors.Join(errs...)
	}

	res := &Result{VLAN: vlan}
	for i, j := range jobs {
		ipc := IPConfig{Pool: j.pool}
		switch {
		case j.op == nil: // static, outside every pool
			ipc.Address, ipc.Gateway = j.static.Address, j.static.Gateway
		case j.static != nil:
			ipc.Address = j.static.Address
			ipc.Gateway, ipc.VLAN = j.static.Gateway, j.space.vlan
			if !ipc.Gateway.IsValid() {
				ipc.Gateway = j.space.gateway
			}
		default:
			ipc.Address = netip.PrefixFrom(outcomes[i].addr, j.space.subnet.Bits())
			ipc.Gateway, ipc.VLAN = j.space.gateway, j.space.vlan
		}
		res.IPs = append(res.IPs, ipc)
		if j.op != nil && !outcomes[i].existing {
			klog.V(2).InfoS("Allocated address", "ippool", j.pool, "address", ipc.Address, "pod",
				klog.KRef(req.Owner.Namespace, req.Owner.Name), "containerID", req.Owner.ContainerID, "interface", req.Owner.IFName)
		}
	}
	return res, nil
}

// job is one part of a request: an operation on one pool, or a static address outside every pool.
type job struct {
	pool   string
	space  *poolSpace
	op     *poolOp        // nil for a static address outside every pool
	static *StaticAddress // the static address this job records or returns
}

// planRequest resolves the request's pools, checks families and VLANs and places static addresses.
func (a *Allocator) planRequest(ctx context.Context, req Request) ([]job, int, error) {
	owner := req.Owner.podOwner()
	var jobs []job
	byFamily := map[family]int{} // family -> index in jobs
	seen := map[string]bool{}
	for _, name := range req.Pools {
		if seen[name] {
			continue
		}
		seen[name] = true
		pool, err := a.currentPool(ctx, name)
		if err != nil {
			return nil, 0, err
		}
		space, err := a.space(pool)
		if err != nil {
			return nil, 0, err
		}
		if i, dup := byFamily[space.family]; dup {
			return nil, 0, &PoolFamilyError{Pool: name, OtherPool: jobs[i].pool, Family: space.family.String()}
		}
		byFamily[space.family] = len(jobs)
		jobs = append(jobs, job{pool: name, space: space, op: &poolOp{kind: opAllocate, owner: owner}})
	}

	vlan := req.VLAN
	if vlan == 0 {
		for i, j := range jobs {
			if j.space.vlan == 0 {
				continue
			}
			for _, k := range jobs[:i] {
				if k.space.vlan != 0 && k.space.vlan != j.space.vlan {
					return nil, 0, &VLANConflictError{Pool: j.pool, VLAN: j.space.vlan, OtherPool: k.pool, OtherVLAN: k.space.vlan}
				}
			}
			vlan = j.space.vlan
		}
	}

	claimed := map[string]bool{} // pools that already got a static address of this request
	for i := range req.Static {
		s := req.Static[i]
		if !s.Address.IsValid() {
			return nil, 0, fmt.Errorf("allocate: static address %d is not valid", i)
		}
		addr := s.Address.Addr().Unmap()
		s.Address = netip.PrefixFrom(addr, s.Address.Bits())
		claim := &poolOp{kind: opClaim, owner: owner, addr: addr}
		// Inside a referenced pool: it is that pool's address for the owner.
		if k, ok := byFamily[familyOf(addr)]; ok && jobs[k].space.contains(addr) {
			if claimed[jobs[k].pool] {
				return nil, 0, &StaticAddressError{Pool: jobs[k].pool, Address: addr, Reason: "a second static address in the same pool"}
			}
			claimed[jobs[k].pool] = true
			jobs[k].op, jobs[k].static = claim, &s
			continue
		}
		// Inside another pool: recorded there too, so that nobody else gets it.
		name, space, err := a.poolContaining(addr, seen)
		if err != nil {
			return nil, 0, err
		}
		if name == "" {
			jobs = append(jobs, job{static: &s})
			continue
		}
		if claimed[name] {
			return nil, 0, &StaticAddressError{Pool: name, Address: addr, Reason: "a second static address in the same pool"}
		}
		claimed[name] = true
		jobs = append(jobs, job{pool: name, space: space, op: claim, static: &s})
	}
	return jobs, vlan, nil
}

// poolContaining finds a pool, other than those skipped, whose ranges hold addr.
func (a *Allocator) poolContaining(addr netip.Addr, skip map[string]bool) (string, *poolSpace, error) {
	pools, err := a.lister.List(labels.Everything())
	if err != nil {
		return "", nil, fmt.Errorf("list IPPools: %w", err)
	}
	for _, p := range pools {
		if skip[p.Name] {
			continue
		}
		space, err := a.space(p)
		if err != nil {
			continue // an invalid pool cannot hand out the address either
		}
		if space.family == familyOf(addr) && space.contains(addr) {
			return p.Name, space, nil
		}
	}
	return "", nil, nil
}

// rollback releases what a failed request allocated anew, keeping what the owner held before.
func (a *Allocator) rollback(owner Owner, jobs []job, outcomes []opOutcome) {
	key := ownerKey(&v1beta1.PodOwner{ContainerID: owner.ContainerID, IFName: owner.IFName})
	for i, j := range jobs {
		o := outcomes[i]
		if j.op == nil || o.err != nil || o.existing {
			continue
		}
		addr := o.addr
		match := func(p *v1beta1.PodOwner) bool { return ownerKey(p) == key }
		ctx, cancel := context.WithTimeout(context.Background(), a.opts.Timeout)
		if err := a.releaseIn(ctx, j.pool, match); err != nil {
			klog.ErrorS(err, "Could not roll back an address of a failed request", "ippool", j.pool, "address", addr,
				"pod", klog.KRef(owner.Namespace, owner.Name), "containerID", owner.ContainerID, "interface", owner.IFName)
		}
		cancel()
	}
}

// releaseIn releases the matching owners' addresses of one pool.
func (a *Allocator) releaseIn(ctx context.Context, pool string, match func(*v1beta1.PodOwner) bool) error {
	if a.blocks != nil {
		if _, err := a.blocks.release(ctx, match); err != nil {
			return err
		}
	}
	p, err := a.currentPool(ctx, pool)
	if err != nil || !listHas(p, match) {
		return nil
	}
	return a.worker(pool).do(ctx, poolOp{kind: opRelease, match: match}).err
}

// listHas reports whether the pool's status.ipAddresses has an entry whose owner matches.
func listHas(p *v1beta1.IPPool, match func(*v1beta1.PodOwner) bool) bool {
	for i := range p.Status.IPAddresses {
		if o := p.Status.IPAddresses[i].Owner.Pod; o != nil && match(o) {
			return true
		}
	}
	return false
}

// Release frees every address held by the owner's interface (container ID and interface name).
// Releasing an owner that holds nothing succeeds.
func (a *Allocator) Release(ctx context.Context, owner Owner) error {
	if owner.ContainerID == "" {
		return errors.New("release: the owner has no container ID")
	}
	key := ownerKey(&v1beta1.PodOwner{ContainerID: owner.ContainerID, IFName: owner.IFName})
	return a.releaseMatching(ctx, func(p *v1beta1.PodOwner) bool { return ownerKey(p) == key },
		"pod", klog.KRef(owner.Namespace, owner.Name), "containerID", owner.ContainerID, "interface", owner.IFName)
}

// ReleaseContainer frees every address held by any interface of a Pod sandbox.
func (a *Allocator) ReleaseContainer(ctx context.Context, containerID string) error {
	if containerID == "" {
		return errors.New("release: empty container ID")
	}
	return a.releaseMatching(ctx, func(p *v1beta1.PodOwner) bool { return p.ContainerID == containerID },
		"containerID", containerID)
}

func (a *Allocator) releaseMatching(ctx context.Context, match func(*v1beta1.PodOwner) bool, logKV ...any) error {
	var blockErr error
	if a.blocks != nil {
		var freed map[string][]netip.Addr
		freed, blockErr = a.blocks.release(ctx, match)
		for pool, addrs := range freed {
			klog.V(2).InfoS("Released addresses", append([]any{"ippool", pool, "addresses", addrs}, logKV...)...)
		}
	}
	pools, err := a.knownPools()
	if err != nil {
		return errors.Join(blockErr, err)
	}
	var targets []string
	for _, p := range pools {
		if listHas(p, match) {
			targets = append(targets, p.Name)
		}
	}
	errs := make([]error, len(targets)+1)
	errs[len(targets)] = blockErr
	var wg sync.WaitGroup
	for i, name := range targets {
		wg.Go(func() {
			out := a.worker(name).do(ctx, poolOp{kind: opRelease, match: match})
			var notFound *PoolNotFoundError
			switch {
			case errors.As(out.err, &notFound): // the pool is gone, and its addresses with it
			case out.err != nil:
				errs[i] = out.err
			case len(out.released) > 0:
				klog.V(2).InfoS("Released addresses", append([]any{"ippool", name, "addresses", out.released}, logKV...)...)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Allocations lists the allocations the informer cache (or a newer write of this Allocator) holds
// that the filter accepts, by pool name, each pool's in allocation order. The agent uses it to reconcile its
// Node's Pods, the controller to collect allocations whose Pod is gone.
func (a *Allocator) Allocations(filter Filter) ([]Allocation, error) {
	pools, err := a.knownPools()
	if err != nil {
		return nil, err
	}
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	var out []Allocation
	for _, p := range pools {
		if filter.Pool != "" && filter.Pool != p.Name {
			continue
		}
		for _, st := range p.Status.IPAddresses {
			if st.Owner.Pod == nil {
				continue
			}
			addr, err := netip.ParseAddr(st.IPAddress)
			if err != nil {
				continue
			}
			al := Allocation{Pool: p.Name, Address: addr.Unmap(), Phase: st.Phase, Owner: ownerOf(st.Owner.Pod)}
			if filter.accepts(al) {
				out = append(out, al)
			}
		}
	}
	if a.blocks != nil {
		ctx, cancel := context.WithTimeout(context.Background(), a.opts.Timeout)
		err := a.blocks.ensureLoaded(ctx)
		cancel()
		if err != nil {
			return nil, err
		}
		out = append(out, a.blocks.allocations(filter)...)
		sort.SliceStable(out, func(i, j int) bool {
			if out[i].Pool != out[j].Pool {
				return out[i].Pool < out[j].Pool
			}
			return out[i].Address.Less(out[j].Address)
		})
	}
	return out, nil
}

// knownPools returns every pool in the cache, each replaced by this Allocator's own newer copy.
func (a *Allocator) knownPools() ([]*v1beta1.IPPool, error) {
	pools, err := a.lister.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list IPPools: %w", err)
	}
	for i, p := range pools {
		if w := a.existingWorker(p.Name); w != nil {
			pools[i] = newer(p, w.getLatest())
		}
	}
	return pools, nil
}

func (a *Allocator) worker(pool string) *poolWorker {
	a.mu.Lock()
	defer a.mu.Unlock()
	w, ok := a.workers[pool]
	if !ok {
		w = &poolWorker{pool: pool, a: a}
		a.workers[pool] = w
	}
	return w
}

func (a *Allocator) existingWorker(pool string) *poolWorker {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.workers[pool]
}

// currentPool returns the freshest copy of a pool known without a request (the informer cache or
// this Allocator's last write), or reads it from the API server when the cache does not have it
// yet (a pool created a moment ago).
func (a *Allocator) currentPool(ctx context.Context, name string) (*v1beta1.IPPool, error) {
	cached, err := a.lister.Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get IPPool %q from the cache: %w", name, err)
	}
	if w := a.existingWorker(name); w != nil {
		cached = newer(cached, w.getLatest())
	}
	if cached != nil {
		return cached, nil
	}
	return a.readPool(ctx, name)
}

// readPool reads a pool from the API server (a quorum read, never the cache).
func (a *Allocator) readPool(ctx context.Context, name string) (*v1beta1.IPPool, error) {
	p, err := a.client.CrdV1beta1().IPPools().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, &PoolNotFoundError{Pool: name}
	}
	if err != nil {
		return nil, fmt.Errorf("get IPPool %q: %w", name, err)
	}
	return p, nil
}

// space returns the pool's address space, computed once per spec generation.
func (a *Allocator) space(pool *v1beta1.IPPool) (*poolSpace, error) {
	a.mu.Lock()
	c, ok := a.spaces[pool.Name]
	a.mu.Unlock()
	if ok && c.uid == pool.UID && c.generation == pool.Generation {
		return c.space, c.err
	}
	s, err := newPoolSpace(pool)
	a.mu.Lock()
	a.spaces[pool.Name] = cachedSpace{uid: pool.UID, generation: pool.Generation, space: s, err: err}
	a.mu.Unlock()
	return s, err
}

// newer returns the more recent of two copies of a pool (by resourceVersion), either may be nil.
func newer(x, y *v1beta1.IPPool) *v1beta1.IPPool {
	if x == nil {
		return y
	}
	if y == nil {
		return x
	}
	if c, err := resourceversion.CompareResourceVersion(y.ResourceVersion, x.ResourceVersion); err == nil && c > 0 {
		return y
	}
	return x
}

// removedAddresses lists the addresses present in old's status and gone from new's.
func removedAddresses(old, new *v1beta1.IPPool) []netip.Addr {
	if len(old.Status.IPAddresses) == 0 {
		return nil
	}
	now := make(map[string]struct{}, len(new.Status.IPAddresses))
	for _, st := range new.Status.IPAddresses {
		now[st.IPAddress] = struct{}{}
	}
	var gone []netip.Addr
	for _, st := range old.Status.IPAddresses {
		if _, ok := now[st.IPAddress]; ok {
			continue
		}
		if a, err := netip.ParseAddr(st.IPAddress); err == nil {
			gone = append(gone, a.Unmap())
		}
	}
	return gone
}
