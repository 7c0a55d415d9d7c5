package ipam

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	crdlisters "github.com/podvlan/podvlan/pkg/client/listers/crd/v1beta1"
)

var everything = labels.Everything()

// byPoolIndex indexes IPPoolBlocks by spec.pool; sharedIndex indexes shared ones only.
const (
	byPoolIndex = "pool"
	sharedIndex = "sharedPool"
)

// Attempts of one conditional write of a shared block, and of block claims per request.
const (
	sharedWriteAttempts = 8
	claimCandidates     = 4
)

// blockMode allocates inside IPPoolBlocks on behalf of one Node (Options.NodeName).
//
// Locks: nodePool.mu guards a pool's owned blocks and is held while a record is written (a local
// file write, never an API request, except while converting blocks to shared); nodePool.claimMu
// serializes claims of one pool. blockMode.mu guards the pools map only.
type blockMode struct {
	a        *Allocator
	node     string
	maxSize  int
	delay    time.Duration
	store    *recordStore
	lister   crdlisters.IPPoolBlockLister
	informer cache.SharedIndexInformer

	loadMu  sync.Mutex
	loaded  bool
	records []*blockRecord // read at construction, adopted by ensureLoaded

	mu    sync.Mutex
	pools map[string]*nodePool

	claims, writes, conflicts, writeErrors, sharedWrites atomic.Uint64
}

// nodePool is the Node's share of one pool: the blocks it owns.
type nodePool struct {
	name string

	mu      sync.Mutex
	blocks  map[string]*ownedBlock // by block name
	byOwner map[string]netip.Addr  // ownerKey -> address, over all blocks

	sharedMu sync.Mutex // one shared-block write of this Node at a time: its requests do not race each other

	claimMu     sync.Mutex
	prefetching atomic.Bool
	converting  atomic.Bool // a fill check runs
	fillDirty   atomic.Bool // a block was added since the check started
}

// ownedBlock is a block this Node allocates inside, with its authoritative holders.
type ownedBlock struct {
	name    string
	cidr    netip.Prefix
	holders map[netip.Addr]v1beta1.PodOwner
	// lost: the IPPoolBlock no longer names this Node (the controller took it back after the Node
	// object was deleted, or it is gone). Its holders are still reported and released; nothing new
	// is handed out from it.
	lost        bool
	syncPending bool
	written     *v1beta1.IPPoolBlock // the object as this Allocator last wrote it
	allocatable int                  // allocatable addresses of the block (-1: not counted yet)
}

// full reports whether every allocatable address of the block is held.
func (b *ownedBlock) full(space *poolSpace) bool {
	if b.allocatable < 0 {
		b.allocatable = 0
		space.blockAddrs(b.cidr, func(netip.Addr) bool { b.allocatable++; return true })
	}
	return len(b.holders) >= b.allocatable
}

// add indexes a block and its holders. Called with p.mu held.
func (p *nodePool) add(b *ownedBlock) {
	p.blocks[b.name] = b
	for a, o := range b.holders {
		p.byOwner[ownerKey(&o)] = a
	}
}

// drop forgets a block and its holders. Called with p.mu held.
func (p *nodePool) drop(b *ownedBlock) {
	delete(p.blocks, b.name)
	for _, o := range b.holders {
		delete(p.byOwner, ownerKey(&o))
	}
}

// hold records a holder in a block. Called with p.mu held.
func (p *nodePool) hold(b *ownedBlock, a netip.Addr, o v1beta1.PodOwner) {
	b.holders[a] = o
	p.byOwner[ownerKey(&o)] = a
}

// unhold removes a holder from a block. Called with p.mu held.
func (p *nodePool) unhold(b *ownedBlock, a netip.Addr) {
	if o, ok := b.holders[a]; ok {
		delete(p.byOwner, ownerKey(&o))
		delete(b.holders, a)
	}
}

func (b *ownedBlock) record(pool, node string) *blockRecord {
	return &blockRecord{Block: b.name, Pool: pool, CIDR: b.cidr.String(), Node: node, Holders: holderStates(b.holders)}
}

// holderStates lists holders as status entries, by address.
func holderStates(h map[netip.Addr]v1beta1.PodOwner) []v1beta1.IPAddressState {
	addrs := make([]netip.Addr, 0, len(h))
	for a := range h {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	out := make([]v1beta1.IPAddressState, 0, len(addrs))
	for _, a := range addrs {
		o := h[a]
		out = append(out, v1beta1.IPAddressState{IPAddress: a.String(), Phase: v1beta1.IPAddressPhaseAllocated,
			Owner: v1beta1.IPAddressOwner{Pod: &o}})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// holdersOf reads status entries back into a holder map, skipping entries without a Pod owner or
// a parsable address.
func holdersOf(st []v1beta1.IPAddressState) map[netip.Addr]v1beta1.PodOwner {
	h := make(map[netip.Addr]v1beta1.PodOwner, len(st))
	for _, e := range st {
		a, err := netip.ParseAddr(e.IPAddress)
		if err != nil || e.Owner.Pod == nil {
			continue
		}
		h[a.Unmap()] = *e.Owner.Pod
	}
	return h
}

func newBlockMode(a *Allocator, o Options) (*blockMode, error) {
	m := &blockMode{
		a: a, node: o.NodeName, maxSize: o.BlockSize, delay: o.BlockSyncDelay,
		store:    &recordStore{dir: o.StateDir},
		lister:   o.Blocks.Lister(),
		informer: o.Blocks.Informer(),
		pools:    map[string]*nodePool{},
	}
	if _, has := m.informer.GetIndexer().GetIndexers()[byPoolIndex]; has {
		// Another Allocator on the same informer (simulated Nodes in tests) added it.
	} else if err := m.informer.AddIndexers(cache.Indexers{
		byPoolIndex: func(obj any) ([]string, error) {
			if b, ok := obj.(*v1beta1.IPPoolBlock); ok {
				return []string{b.Spec.Pool}, nil
			}
			return nil, nil
		},
		sharedIndex: func(obj any) ([]string, error) {
			if b, ok := obj.(*v1beta1.IPPoolBlock); ok && b.Spec.NodeName == "" {
				return []string{b.Spec.Pool}, nil
			}
			return nil, nil
		},
	}); err != nil {
		return nil, fmt.Errorf("index IPPoolBlocks by pool: %w", err)
	}
	if _, err := m.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if b, ok := obj.(*v1beta1.IPPoolBlock); ok {
				m.poolFilling(b.Spec.Pool)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("watch IPPoolBlocks: %w", err)
	}
	records, err := m.store.load()
	if err != nil {
		return nil, err
	}
	m.records = records
	return m, nil
}

func (m *blockMode) pool(name string) *nodePool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pools[name]
	if !ok {
		p = &nodePool{name: name, blocks: map[string]*ownedBlock{}, byOwner: map[string]netip.Addr{}}
		m.pools[name] = p
	}
	return p
}

func (m *blockMode) allPools() []*nodePool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*nodePool, 0, len(m.pools))
	for _, p := range m.pools {
		out = append(out, p)
	}
	return out
}

// ensureLoaded adopts, once the IPPoolBlock cache has synced, the blocks this Node owns: its local
// records, checked against the API, and blocks the API names this Node for without a local record
// (the agent died between claiming and recording, or the Node rebooted), whose holders are taken
// from the block's status.
func (m *blockMode) ensureLoaded(ctx context.Context) error {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	if m.loaded {
		return nil
	}
	if !cache.WaitForCacheSync(ctx.Done(), m.informer.HasSynced) {
		return fmt.Errorf("IPPoolBlocks not synced yet: %w", context.Cause(ctx))
	}
	seen := map[string]bool{}
	for _, r := range m.records {
		cidr := netip.MustParsePrefix(r.CIDR).Masked()
		b := &ownedBlock{name: r.Block, cidr: cidr, holders: holdersOf(r.Holders), allocatable: -1}
		obj, err := m.lister.Get(r.Block)
		if err != nil || obj.Spec.NodeName != m.node {
			// Confirm with a quorum read: the cache may lag behind a claim made just before a restart.
			live, gerr := m.a.client.CrdV1beta1().IPPoolBlocks().Get(ctx, r.Block, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(gerr):
				b.lost = true
			case gerr != nil:
				return fmt.Errorf("read IPPoolBlock %s: %w", r.Block, gerr)
			case live.Spec.NodeName != m.node:
				b.lost = true
			}
		}
		if b.lost {
			if len(b.holders) == 0 {
				if err := m.store.remove(r.Block); err != nil {
					return err
				}
				continue
			}
			klog.InfoS("IPPoolBlock is no longer this Node's: keeping its recorded holders, handing out nothing new",
				"ipPoolBlock", r.Block, "ippool", r.Pool, "holders", len(b.holders))
		}
		p := m.pool(r.Pool)
		p.mu.Lock()
		p.add(b)
		if !b.lost {
			// The record is the truth; the block's status may lag behind it (the agent was killed
			// before a change was reported). Nothing else would report it until the block changes.
			m.scheduleSync(p, b)
		}
		p.mu.Unlock()
		seen[r.Block] = true
	}
	objs, err := m.lister.List(everything)
	if err != nil {
		return fmt.Errorf("list IPPoolBlocks from the cache: %w", err)
	}
	for _, obj := range objs {
		if obj.Spec.NodeName != m.node || seen[obj.Name] {
			continue
		}
		ref, ok := parseBlock(obj)
		if !ok {
			continue
		}
		b := &ownedBlock{name: obj.Name, cidr: ref.cidr, holders: holdersOf(obj.Status.IPAddresses), allocatable: -1}
		if err := m.store.save(b.record(obj.Spec.Pool, m.node)); err != nil {
			return err
		}
		p := m.pool(obj.Spec.Pool)
		p.mu.Lock()
		p.add(b)
		p.mu.Unlock()
		klog.InfoS("Adopted an IPPoolBlock of this Node without a local record", "ipPoolBlock", obj.Name,
			"ippool", obj.Spec.Pool, "holders", len(b.holders))
	}
	m.records = nil
	m.loaded = true
	return nil
}

// listHeld maps the addresses recorded in the pool's status.ipAddresses (allocations of the
// previous version, or of allocators without a Node) to their owners.
func listHeld(pool *v1beta1.IPPool) map[netip.Addr]*v1beta1.PodOwner {
	out := make(map[netip.Addr]*v1beta1.PodOwner, len(pool.Status.IPAddresses))
	for i := range pool.Status.IPAddresses {
		e := &pool.Status.IPAddresses[i]
		if a, err := netip.ParseAddr(e.IPAddress); err == nil {
			out[a.Unmap()] = e.Owner.Pod
		}
	}
	return out
}

// do serves one operation on one pool. Releases go through release, never here.
func (m *blockMode) do(ctx context.Context, poolObj *v1beta1.IPPool, space *poolSpace, op poolOp) opOutcome {
	if err := m.ensureLoaded(ctx); err != nil {
		return opOutcome{err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, m.a.opts.Timeout)
	defer cancel()
	p := m.pool(poolObj.Name)
	list := listHeld(poolObj)
	key := ownerKey(&op.owner)
	// The owner's existing address, wherever it is recorded.
	for a, o := range list {
		if o != nil && ownerKey(o) == key {
			return m.existing(poolObj.Name, op, a)
		}
	}
	if a, ok := p.holderOf(key); ok {
		return m.existing(poolObj.Name, op, a)
	}
	if a, ok := m.sharedHolderOf(poolObj.Name, key); ok {
		return m.existing(poolObj.Name, op, a)
	}
	if op.kind == opClaim {
		return m.claimStatic(ctx, p, space, list, op)
	}
	bits := blockBits(space.subnet, m.maxSize)
	// Each round finds an address or claims a block. The Node's other requests run at the same
	// time and may take the addresses of a block just claimed before this one gets to them, so a
	// fixed number of rounds would call a pool with free blocks exhausted; a claim happens only
	// while the Node has no free address, so the rounds end when the pool has no block left.
rounds:
	for round := 0; round < maxClaimRounds && ctx.Err() == nil; round++ {
		if a, err, ok := m.allocLocal(p, space, list, op.owner, false); ok || err != nil {
			return opOutcome{addr: a, err: err}
		}
		got, err := m.claim(ctx, p, space, bits, list)
		switch {
		case err != nil:
			return opOutcome{err: err}
		case got == claimNone:
			break rounds
		case got == claimRecentOnly:
			// Only recently released addresses are free: one of them rather than a new block.
			if a, err, ok := m.allocLocal(p, space, list, op.owner, true); ok || err != nil {
				return opOutcome{addr: a, err: err}
			}
		}
	}
	// No block to claim: recently released addresses of the Node's blocks, then shared blocks.
	if a, err, ok := m.allocLocal(p, space, list, op.owner, true); ok || err != nil {
		return opOutcome{addr: a, err: err}
	}
	out := m.allocShared(ctx, poolObj.Name, space, list, op.owner)
	// Other Nodes' blocks with room are shared as soon as those Nodes see the pool has no block
	// left, and this Node's own blocks just shared reach the cache a moment after the write: wait
	// for that rather than calling the pool exhausted.
	var ex *PoolExhaustedError
	for deadline := time.Now().Add(sharingWait); errors.As(out.err, &ex) && m.othersHaveRoom(p, space) &&
		time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(100 * time.Millisecond)
		out = m.allocShared(ctx, poolObj.Name, space, list, op.owner)
	}
	return out
}

// sharingWait bounds how long a request waits for other Nodes to share their blocks.
const sharingWait = 3 * time.Second

// maxClaimRounds bounds the find-or-claim rounds of one request (a safety net: the request's
// deadline ends them first under any real contention).
const maxClaimRounds = 64

// othersHaveRoom reports whether, as far as the cache knows, a block about to be shared still has
// a free address: another Node's, or one of this Node's that it no longer allocates from (shared
// by shareBlocks, the cache not showing it yet).
func (m *blockMode) othersHaveRoom(p *nodePool, space *poolSpace) bool {
	p.mu.Lock()
	owned := make(map[string]bool, len(p.blocks))
	for name := range p.blocks {
		owned[name] = true
	}
	p.mu.Unlock()
	for _, obj := range m.blocksOf(p.name) {
		if obj.Spec.NodeName == "" || (obj.Spec.NodeName == m.node && owned[obj.Name]) {
			continue
		}
		ref, ok := parseBlock(obj)
		if !ok {
			continue
		}
		n := 0
		space.blockAddrs(ref.cidr, func(netip.Addr) bool { n++; return n <= len(obj.Status.IPAddresses) })
		if n > len(obj.Status.IPAddresses) {
			return true
		}
	}
	return false
}

func (m *blockMode) existing(pool string, op poolOp, held netip.Addr) opOutcome {
	if op.kind == opClaim && held != op.addr {
		return opOutcome{err: &StaticAddressError{Pool: pool, Address: op.addr,
			Reason: fmt.Sprintf("the interface already holds %s", held)}}
	}
	return opOutcome{addr: held, existing: true}
}

func (p *nodePool) holderOf(key string) (netip.Addr, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.byOwner[key]
	return a, ok
}

// sharedHolderOf finds the owner in the cached shared blocks of a pool.
func (m *blockMode) sharedHolderOf(pool, key string) (netip.Addr, bool) {
	for _, obj := range m.sharedOf(pool) {
		if obj.Spec.NodeName != "" {
			continue
		}
		for _, e := range obj.Status.IPAddresses {
			if e.Owner.Pod != nil && ownerKey(e.Owner.Pod) == key {
				if a, err := netip.ParseAddr(e.IPAddress); err == nil {
					return a.Unmap(), true
				}
			}
		}
	}
	return netip.Addr{}, false
}

// blocksOf returns the cached blocks of a pool.
func (m *blockMode) blocksOf(pool string) []*v1beta1.IPPoolBlock { return m.indexed(byPoolIndex, pool) }

// sharedOf returns the cached shared blocks of a pool.
func (m *blockMode) sharedOf(pool string) []*v1beta1.IPPoolBlock { return m.indexed(sharedIndex, pool) }

func (m *blockMode) indexed(index, pool string) []*v1beta1.IPPoolBlock {
	objs, err := m.informer.GetIndexer().ByIndex(index, pool)
	if err != nil {
		return nil
	}
	out := make([]*v1beta1.IPPoolBlock, 0, len(objs))
	for _, o := range objs {
		if b, ok := o.(*v1beta1.IPPoolBlock); ok {
			out = append(out, b)
		}
	}
	return out
}

// allocLocal hands out a free address of one of the Node's blocks and records it before
// returning. ok is false when no block has one (quarantined addresses count as taken unless
// allowHeld). A full, or nearly full, Node share starts a claim in the background.
func (m *blockMode) allocLocal(p *nodePool, space *poolSpace, list map[netip.Addr]*v1beta1.PodOwner, owner v1beta1.PodOwner, allowHeld bool) (netip.Addr, error, bool) {
	recent := m.recent(p.name)
	p.mu.Lock()
	// Blocks with room, lowest first; full ones cost one comparison each.
	var open []*ownedBlock
	size := 0
	for n, b := range p.blocks {
		size = 1 << (b.cidr.Addr().BitLen() - b.cidr.Bits())
		if b.lost || b.full(space) {
			continue
		}
		if obj, err := m.lister.Get(n); err == nil && obj.Spec.NodeName != m.node {
			b.lost = true // taken back by the controller, or shared: nothing new from it
			continue
		}
		open = append(open, b)
	}
	slices.SortFunc(open, func(x, y *ownedBlock) int { return x.cidr.Addr().Compare(y.cidr.Addr()) })
	var got netip.Addr
	var in *ownedBlock
	free := 0
	for _, b := range open {
		space.blockAddrs(b.cidr, func(a netip.Addr) bool {
			if _, held := b.holders[a]; held {
				return true
			}
			if _, listed := list[a]; listed {
				return true
			}
			if _, q := recent[a]; q {
				if !allowHeld || got.IsValid() {
					return true
				}
			}
			if !got.IsValid() {
				got, in = a, b
				return true
			}
			free++
			return free < size // enough counted to know whether to claim ahead
		})
		if free >= size {
			break
		}
	}
	if !got.IsValid() {
		p.mu.Unlock()
		return netip.Addr{}, nil, false
	}
	p.hold(in, got, owner)
	if err := m.store.save(in.record(p.name, m.node)); err != nil {
		p.unhold(in, got)
		p.mu.Unlock()
		return netip.Addr{}, err, true
	}
	m.scheduleSync(p, in)
	p.mu.Unlock()
	if free < max(1, size/4) {
		m.prefetch(p, space)
	}
	return got, nil, true
}

// prefetch claims another block in the background, so that the next requests find a free address
// without waiting for the API server.
func (m *blockMode) prefetch(p *nodePool, space *poolSpace) {
	if !p.prefetching.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer p.prefetching.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), m.a.opts.Timeout)
		defer cancel()
		poolObj, err := m.a.currentPool(ctx, p.name)
		if err != nil {
			return
		}
		bits := blockBits(space.subnet, m.maxSize)
		if _, err := m.claimAhead(ctx, p, space, bits, listHeld(poolObj)); err != nil {
			klog.V(2).InfoS("Could not claim an IPPoolBlock ahead of demand", "ippool", p.name, "err", err)
		}
	}()
}

// recent returns the pool's recently released addresses, which are handed out again only when
// nothing else is free.
func (m *blockMode) recent(pool string) map[netip.Addr]struct{} {
	recent := map[netip.Addr]struct{}{}
	for _, a := range m.a.quarantine.recent(pool, time.Now()) {
		recent[a] = struct{}{}
	}
	return recent
}

// hasFree reports whether the Node's blocks have threshold addresses neither held, listed nor in
// avoid (recently released: allocLocal passes over them while anything else is free, so counting
// them would stop a claim that allocLocal then needs).
func (p *nodePool) hasFree(space *poolSpace, list map[netip.Addr]*v1beta1.PodOwner, avoid map[netip.Addr]struct{}, threshold int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	free := 0
	for _, b := range p.blocks {
		if b.lost || b.full(space) {
			continue
		}
		space.blockAddrs(b.cidr, func(a netip.Addr) bool {
			_, held := b.holders[a]
			_, listed := list[a]
			_, avoided := avoid[a]
			if !held && !listed && !avoided {
				free++
			}
			return free < threshold
		})
		if free >= threshold {
			return true
		}
	}
	return false
}

// claimResult says what claim found or did.
type claimResult int

const (
	claimNone       claimResult = iota // no free address and no block left to claim
	claimFree                          // the Node has a free address (a concurrent claim or release)
	claimRecentOnly                    // the Node's only free addresses were released recently
	claimNew                           // a block was claimed (or adopted)
)

// claim claims a block for the Node unless it already has a free address: one not recently
// released, or else a recently released one, which is reused rather than a block claimed for it.
func (m *blockMode) claim(ctx context.Context, p *nodePool, space *poolSpace, bits int, list map[netip.Addr]*v1beta1.PodOwner) (claimResult, error) {
	p.claimMu.Lock()
	defer p.claimMu.Unlock()
	if p.hasFree(space, list, m.recent(p.name), 1) {
		return claimFree, nil
	}
	if p.hasFree(space, list, nil, 1) {
		return claimRecentOnly, nil
	}
	claimed, err := m.claimLocked(ctx, p, space, bits, list)
	if err != nil || !claimed {
		return claimNone, err
	}
	return claimNew, nil
}

// claimAhead claims a block while the Node's share runs low (the background prefetch).
func (m *blockMode) claimAhead(ctx context.Context, p *nodePool, space *poolSpace, bits int, list map[netip.Addr]*v1beta1.PodOwner) (bool, error) {
	p.claimMu.Lock()
	defer p.claimMu.Unlock()
	size := 1 << (space.subnet.Addr().BitLen() - bits)
	if p.hasFree(space, list, nil, max(1, size/4)) {
		return true, nil
	}
	return m.claimLocked(ctx, p, space, bits, list)
}

// claimLocked creates the IPPoolBlock of a block nobody holds: one create, which the API server
// lets succeed once per name. After losing a race it picks another block.
func (m *blockMode) claimLocked(ctx context.Context, p *nodePool, space *poolSpace, bits int, list map[netip.Addr]*v1beta1.PodOwner) (bool, error) {
	poolObj, err := m.a.currentPool(ctx, p.name)
	if err != nil {
		return false, err
	}
	taken := map[netip.Prefix]bool{}
	var unused []*v1beta1.IPPoolBlock // naming this Node, unknown to it: a create whose answer was lost
	p.mu.Lock()
	for _, obj := range m.blocksOf(p.name) {
		if ref, ok := parseBlock(obj); ok {
			taken[ref.cidr] = true
			if _, known := p.blocks[obj.Name]; obj.Spec.NodeName == m.node && !known {
				unused = append(unused, obj)
			}
		}
	}
	for _, b := range p.blocks {
		taken[b.cidr] = true
	}
	p.mu.Unlock()
	for _, cached := range unused {
		// The cache may lag behind this Node's own change of the block (shared a moment ago):
		// only a quorum read says it is still this Node's, and with which holders.
		obj, err := m.a.client.CrdV1beta1().IPPoolBlocks().Get(ctx, cached.Name, metav1.GetOptions{})
		if err != nil || obj.Spec.NodeName != m.node {
			continue
		}
		p.mu.Lock()
		_, known := p.blocks[obj.Name]
		p.mu.Unlock()
		if known {
			continue
		}
		ref, _ := parseBlock(obj)
		b := &ownedBlock{name: obj.Name, cidr: ref.cidr, holders: holdersOf(obj.Status.IPAddresses), allocatable: -1}
		if err := m.store.save(b.record(p.name, m.node)); err != nil {
			return false, err
		}
		p.mu.Lock()
		p.add(b)
		p.mu.Unlock()
		m.claims.Add(1)
		klog.InfoS("Adopted an IPPoolBlock of this Node whose claim was not answered", "ippool", p.name, "ipPoolBlock", obj.Name)
		m.poolFilling(p.name) // as after a claim
		return true, nil
	}
	skip := func(b netip.Prefix) bool {
		if taken[b] {
			return true
		}
		usable := false
		space.blockAddrs(b, func(a netip.Addr) bool {
			_, listed := list[a]
			usable = !listed
			return !usable
		})
		return !usable
	}
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			// Lost a race: others claim right now, and this Node's cache lags behind them. Give
			// the watch a moment to bring their blocks before choosing again.
			time.Sleep(rand.N(time.Duration(min(attempt, 10)) * 20 * time.Millisecond))
		}
		// The first free block after each of a few random points, one of them at random: Nodes
		// claiming at once then rarely aim at the same block, even in a pool mostly claimed
		// (where the first free block after one point would be the same for many).
		var candidates []netip.Prefix
		for range claimCandidates {
			c, ok := space.nextBlock(space.addrAt(rand.Uint64()), bits, skip)
			if !ok {
				break
			}
			candidates = append(candidates, c)
		}
		if len(candidates) == 0 {
			return false, nil
		}
		cidr := candidates[rand.IntN(len(candidates))]
		obj := &v1beta1.IPPoolBlock{
			ObjectMeta: metav1.ObjectMeta{Name: BlockName(p.name, cidr), OwnerReferences: poolRef(poolObj)},
			Spec:       v1beta1.IPPoolBlockSpec{Pool: p.name, CIDR: cidr.String(), NodeName: m.node},
		}
		m.writes.Add(1)
		_, err := m.a.client.CrdV1beta1().IPPoolBlocks().Create(ctx, obj, metav1.CreateOptions{})
		switch {
		case apierrors.IsAlreadyExists(err):
			m.conflicts.Add(1)
			taken[cidr] = true
			for _, obj := range m.blocksOf(p.name) { // what the watch brought meanwhile
				if ref, ok := parseBlock(obj); ok {
					taken[ref.cidr] = true
				}
			}
			continue
		case err != nil:
			m.writeErrors.Add(1)
			// The create may have succeeded with its answer lost (a timeout): a block naming this
			// Node must not be left unused until the next restart.
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			live, gerr := m.a.client.CrdV1beta1().IPPoolBlocks().Get(rctx, obj.Name, metav1.GetOptions{})
			cancel()
			if gerr != nil || live.Spec.NodeName != m.node {
				return false, fmt.Errorf("claim IPPoolBlock %s of IPPool %q: %w", obj.Name, p.name, err)
			}
		}
		b := &ownedBlock{name: obj.Name, cidr: cidr, holders: map[netip.Addr]v1beta1.PodOwner{}, allocatable: -1}
		p.mu.Lock()
		err = m.store.save(b.record(p.name, m.node))
		if err == nil {
			p.add(b)
		}
		p.mu.Unlock()
		if err != nil {
			// The block stays claimed in the API; the next start adopts it.
			return false, err
		}
		m.claims.Add(1)
		klog.V(2).InfoS("Claimed an IPPoolBlock", "ippool", p.name, "ipPoolBlock", obj.Name, "cidr", cidr)
		// The watch may have brought the new block before it was added above, and the check it
		// started then did not see it as this Node's: check again, or a pool whose last block this
		// was would never be shared.
		m.poolFilling(p.name)
		return true, nil
	}
	return false, fmt.Errorf("claim a block of IPPool %q: %w", p.name, context.Cause(ctx))
}

// poolRef makes the pool the owner of its blocks: deleting the pool deletes them.
func poolRef(p *v1beta1.IPPool) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: v1beta1.SchemeGroupVersion.String(), Kind: "IPPool", Name: p.Name, UID: p.UID}}
}

// addrAt maps a number onto an address of the pool's ranges (for spreading claim scans).
func (s *poolSpace) addrAt(n uint64) netip.Addr {
	if len(s.ranges) == 0 {
		return netip.Addr{}
	}
	r := s.ranges[n%uint64(len(s.ranges))]
	size := rangeSize(r)
	return addN(r.first, (n/uint64(len(s.ranges)))%size)
}

// rangeSize is the number of addresses of a range, saturated at 2^63.
func rangeSize(r addrRange) uint64 {
	f, l := r.first.As16(), r.last.As16()
	for i := 0; i < 8; i++ {
		if f[i] != l[i] {
			return 1 << 63
		}
	}
	var lo, hi uint64
	for i := 8; i < 16; i++ {
		lo, hi = lo<<8|uint64(f[i]), hi<<8|uint64(l[i])
	}
	if hi-lo >= 1<<63-1 {
		return 1 << 63
	}
	return hi - lo + 1
}

// addN adds n to an address (no overflow check: callers stay inside a range).
func addN(a netip.Addr, n uint64) netip.Addr {
	b := a.As16()
	carry := n
	for i := 15; i >= 0 && carry > 0; i-- {
		s := uint64(b[i]) + carry&0xff
		b[i] = byte(s)
		carry = carry>>8 + s>>8
	}
	out := netip.AddrFrom16(b)
	if a.Is4() {
		return out.Unmap()
	}
	return out
}

// allocShared hands out an address of a shared block with a conditional write of the block.
func (m *blockMode) allocShared(ctx context.Context, pool string, space *poolSpace, list map[netip.Addr]*v1beta1.PodOwner, owner v1beta1.PodOwner) opOutcome {
	recent := m.recent(pool)
	p := m.pool(pool)
	p.sharedMu.Lock()
	defer p.sharedMu.Unlock()
	// Conflicts mean other Nodes are taking addresses of the same blocks: progress, so try the
	// other blocks and come round again until the request's deadline.
	var lastErr error
	for round := 0; ctx.Err() == nil; round++ {
		lastErr = nil
		shared := m.sharedOf(pool)
		rand.Shuffle(len(shared), func(i, j int) { shared[i], shared[j] = shared[j], shared[i] })
		for _, allowRecent := range []bool{false, true} {
			for _, obj := range shared {
				if out, done := m.tryShared(ctx, obj, space, list, recent, owner, allowRecent, &lastErr); done {
					return out
				}
			}
		}
		if lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		return opOutcome{err: &WriteConflictError{Pool: pool, Attempts: sharedWriteAttempts, Err: lastErr}}
	}
	return opOutcome{err: &PoolExhaustedError{Pool: pool, Total: space.total}}
}

// errBlockGone says an IPPoolBlock was deleted while it was being written.
var errBlockGone = errors.New("the IPPoolBlock is gone")

// tryShared tries to take a free address of one shared block. done is true when the request is
// answered (an address); a write that kept conflicting is left in *lastErr.
func (m *blockMode) tryShared(ctx context.Context, obj *v1beta1.IPPoolBlock, space *poolSpace, list map[netip.Addr]*v1beta1.PodOwner,
	recent map[netip.Addr]struct{}, owner v1beta1.PodOwner, allowRecent bool, lastErr *error) (opOutcome, bool) {
	if obj.Spec.NodeName != "" {
		return opOutcome{}, false
	}
	ref, ok := parseBlock(obj)
	if !ok {
		return opOutcome{}, false
	}
	var got netip.Addr
	before := m.writes.Load()
	defer func() { m.sharedWrites.Add(m.writes.Load() - before) }()
	_, err := m.updateShared(ctx, obj, func(b *v1beta1.IPPoolBlock) bool {
		got = netip.Addr{}
		if b.Spec.NodeName != "" {
			return false
		}
		held := holdersOf(b.Status.IPAddresses)
		space.blockAddrs(ref.cidr, func(a netip.Addr) bool {
			_, h := held[a]
			_, l := list[a]
			_, q := recent[a]
			if h || l || (q && !allowRecent) {
				return true
			}
			got = a
			return false
		})
		if !got.IsValid() {
			return false
		}
		held[got] = owner
		b.Status.IPAddresses = holderStates(held)
		b.Status.Used = len(b.Status.IPAddresses)
		return true
	})
	switch {
	case errors.Is(err, errBlockGone):
		return opOutcome{}, false
	case err != nil:
		*lastErr = err // others keep writing this block: try the next one
		return opOutcome{}, false
	case got.IsValid():
		klog.V(2).InfoS("Allocated from a shared IPPoolBlock", "ippool", obj.Spec.Pool, "ipPoolBlock", obj.Name, "address", got)
		return opOutcome{addr: got}, true
	}
	return opOutcome{}, false
}

// updateShared applies change to a block and writes it with its resourceVersion, re-reading the
// block after a conflict. change returns false when there is nothing to write; updateShared then
// returns the block as read. A block deleted meanwhile gives errBlockGone: nothing was written.
func (m *blockMode) updateShared(ctx context.Context, start *v1beta1.IPPoolBlock, change func(*v1beta1.IPPoolBlock) bool) (*v1beta1.IPPoolBlock, error) {
	cur := start
	for attempt := 1; ; attempt++ {
		b := cur.DeepCopy()
		if !change(b) {
			return cur, nil
		}
		m.writes.Add(1)
		written, err := m.a.client.CrdV1beta1().IPPoolBlocks().Update(ctx, b, metav1.UpdateOptions{})
		switch {
		case err == nil:
			return written, nil
		case apierrors.IsNotFound(err):
			m.writeErrors.Add(1)
			return nil, errBlockGone
		case !apierrors.IsConflict(err):
			m.writeErrors.Add(1)
			return nil, fmt.Errorf("update IPPoolBlock %s: %w", start.Name, err)
		}
		m.conflicts.Add(1)
		if attempt >= sharedWriteAttempts {
			return nil, fmt.Errorf("update IPPoolBlock %s: %w", start.Name, err)
		}
		time.Sleep(rand.N(time.Duration(attempt) * 5 * time.Millisecond))
		cur, err = m.a.client.CrdV1beta1().IPPoolBlocks().Get(ctx, start.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, errBlockGone
		}
		if err != nil {
			return nil, fmt.Errorf("re-read IPPoolBlock %s: %w", start.Name, err)
		}
	}
}

// claimStatic gives the owner a static address: in a block of the Node, locally; in a shared
// block, with a conditional write; in a block nobody holds, by creating it shared with the
// address recorded. An address in another Node's block cannot be handed out safely (that Node
// allocates inside it without asking the API server) and is refused with the Node's name.
func (m *blockMode) claimStatic(ctx context.Context, p *nodePool, space *poolSpace, list map[netip.Addr]*v1beta1.PodOwner, op poolOp) opOutcome {
	addr := op.addr
	switch {
	case !space.contains(addr):
		return opOutcome{err: &StaticAddressError{Pool: p.name, Address: addr, Reason: "outside the pool's ranges"}}
	case space.isReserved(addr):
		return opOutcome{err: &StaticAddressError{Pool: p.name, Address: addr, Reason: "reserved (network, broadcast or gateway address)"}}
	}
	if o, ok := list[addr]; ok {
		return opOutcome{err: &StaticAddressError{Pool: p.name, Address: addr, Reason: "in use by " + describeOwner(o)}}
	}
	cidr := blockOf(addr, blockBits(space.subnet, m.maxSize))
	name := BlockName(p.name, cidr)
	for attempt := 0; attempt < sharedWriteAttempts; attempt++ {
		p.mu.Lock()
		if b, ok := p.blocks[name]; ok && !b.lost {
			defer p.mu.Unlock()
			if o, held := b.holders[addr]; held {
				return opOutcome{err: &StaticAddressError{Pool: p.name, Address: addr, Reason: "in use by " + describeOwner(&o)}}
			}
			p.hold(b, addr, op.owner)
			if err := m.store.save(b.record(p.name, m.node)); err != nil {
				p.unhold(b, addr)
				return opOutcome{err: err}
			}
			m.scheduleSync(p, b)
			return opOutcome{addr: addr}
		}
		p.mu.Unlock()
		obj, err := m.lister.Get(name)
		if apierrors.IsNotFound(err) {
			obj, err = m.a.client.CrdV1beta1().IPPoolBlocks().Get(ctx, name, metav1.GetOptions{})
		}
		switch {
		case apierrors.IsNotFound(err):
			o := op.owner
			poolObj, err := m.a.currentPool(ctx, p.name)
			if err != nil {
				return opOutcome{err: err}
			}
			nb := &v1beta1.IPPoolBlock{
				ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: poolRef(poolObj)},
				Spec:       v1beta1.IPPoolBlockSpec{Pool: p.name, CIDR: cidr.String()},
				Status: v1beta1.IPPoolBlockStatus{Used: 1, IPAddresses: []v1beta1.IPAddressState{{IPAddress: addr.String(),
					Phase: v1beta1.IPAddressPhaseAllocated, Owner: v1beta1.IPAddressOwner{Pod: &o}}}},
			}
			m.writes.Add(1)
			_, err = m.a.client.CrdV1beta1().IPPoolBlocks().Create(ctx, nb, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				m.conflicts.Add(1)
				continue
			}
			if err != nil {
				m.writeErrors.Add(1)
				return opOutcome{err: fmt.Errorf("create shared IPPoolBlock %s for static address %s: %w", name, addr, err)}
			}
			return opOutcome{addr: addr}
		case err != nil:
			return opOutcome{err: fmt.Errorf("read IPPoolBlock %s: %w", name, err)}
		case obj.Spec.NodeName == m.node:
			// Ours, but not adopted yet (claimed by a request a moment ago): look again.
			time.Sleep(10 * time.Millisecond)
			continue
		case obj.Spec.NodeName != "":
			return opOutcome{err: &StaticAddressError{Pool: p.name, Address: addr,
				Reason: fmt.Sprintf("inside IPPoolBlock %s, which Node %s allocates from", name, obj.Spec.NodeName)}}
		}
		var inUse *v1beta1.PodOwner
		_, err = m.updateShared(ctx, obj, func(b *v1beta1.IPPoolBlock) bool {
			held := holdersOf(b.Status.IPAddresses)
			inUse = nil
			if o, ok := held[addr]; ok {
				inUse = &o
				return false
			}
			if b.Spec.NodeName != "" {
				return false
			}
			held[addr] = op.owner
			b.Status.IPAddresses = holderStates(held)
			b.Status.Used = len(b.Status.IPAddresses)
			return true
		})
		switch {
		case errors.Is(err, errBlockGone):
			continue // deleted as empty meanwhile: create it again
		case err != nil:
			return opOutcome{err: err}
		case inUse != nil:
			return opOutcome{err: &StaticAddressError{Pool: p.name, Address: addr, Reason: "in use by " + describeOwner(inUse)}}
		}
		return opOutcome{addr: addr}
	}
	return opOutcome{err: &WriteConflictError{Pool: p.name, Attempts: sharedWriteAttempts,
		Err: fmt.Errorf("IPPoolBlock %s kept changing", name)}}
}

// release frees the addresses whose owner matches, in the Node's blocks (locally) and in shared
// blocks (conditional writes). It returns the released addresses by pool.
func (m *blockMode) release(ctx context.Context, match func(*v1beta1.PodOwner) bool) (map[string][]netip.Addr, error) {
	// Until the Node's records are adopted its blocks are unknown here, and a release would find
	// nothing to free and report success: the first DEL after a restart (a spooled one) would leak.
	if err := m.ensureLoaded(ctx); err != nil {
		return nil, err
	}
	out := map[string][]netip.Addr{}
	var errs []error
	for _, p := range m.allPools() {
		p.mu.Lock()
		for _, b := range p.blocks {
			var freed []netip.Addr
			removed := map[netip.Addr]v1beta1.PodOwner{}
			for a, o := range b.holders {
				if match(&o) {
					freed = append(freed, a)
					removed[a] = o
				}
			}
			if len(freed) == 0 {
				continue
			}
			for _, a := range freed {
				p.unhold(b, a)
			}
			var err error
			if b.lost && len(b.holders) == 0 {
				err = m.store.remove(b.name)
				if err == nil {
					p.drop(b)
				}
			} else {
				err = m.store.save(b.record(p.name, m.node))
			}
			if err != nil {
				// Keep the holders: the record on disk still has them, and a retry finds them again.
				for a, o := range removed {
					p.hold(b, a, o)
				}
				errs = append(errs, err)
				continue
			}
			if !b.lost {
				m.scheduleSync(p, b)
			}
			out[p.name] = append(out[p.name], freed...)
			m.a.quarantine.add(p.name, freed, time.Now())
		}
		p.mu.Unlock()
	}
	var shared []*v1beta1.IPPoolBlock
	for _, pool := range m.informer.GetIndexer().ListIndexFuncValues(sharedIndex) {
		shared = append(shared, m.sharedOf(pool)...)
	}
	for _, obj := range shared {
		hit := false
		for _, e := range obj.Status.IPAddresses {
			if e.Owner.Pod != nil && match(e.Owner.Pod) {
				hit = true
				break
			}
		}
		if !hit {
			continue
		}
		var freed []netip.Addr
		m.sharedWrites.Add(1)
		_, err := m.updateShared(ctx, obj, func(b *v1beta1.IPPoolBlock) bool {
			freed = freed[:0]
			kept := b.Status.IPAddresses[:0:0]
			for _, e := range b.Status.IPAddresses {
				if e.Owner.Pod != nil && match(e.Owner.Pod) {
					if a, err := netip.ParseAddr(e.IPAddress); err == nil {
						freed = append(freed, a.Unmap())
					}
					continue
				}
				kept = append(kept, e)
			}
			if len(kept) == len(b.Status.IPAddresses) {
				return false
			}
			b.Status.IPAddresses = kept
			b.Status.Used = len(kept)
			return true
		})
		if errors.Is(err, errBlockGone) {
			continue // and its holders with it
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[obj.Spec.Pool] = append(out[obj.Spec.Pool], freed...)
		m.a.quarantine.add(obj.Spec.Pool, freed, time.Now())
	}
	return out, errors.Join(errs...)
}

// scheduleSync writes the block's holders to its status after the sync delay, so that a burst of
// allocations costs one write. Called with p.mu held.
func (m *blockMode) scheduleSync(p *nodePool, b *ownedBlock) {
	if b.syncPending {
		return
	}
	b.syncPending = true
	time.AfterFunc(m.delay, func() { m.syncBlock(p, b) })
}

// syncBlock copies an owned block's holders into its IPPoolBlock's status.
func (m *blockMode) syncBlock(p *nodePool, b *ownedBlock) {
	p.mu.Lock()
	b.syncPending = false
	if b.lost {
		p.mu.Unlock()
		return
	}
	want := holderStates(b.holders)
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), m.a.opts.Timeout)
	defer cancel()
	obj, err := m.lister.Get(b.name)
	p.mu.Lock()
	if last := b.written; last != nil && (err != nil || newerBlock(last, obj)) {
		obj, err = last, nil
	}
	p.mu.Unlock()
	if err != nil {
		obj, err = m.a.client.CrdV1beta1().IPPoolBlocks().Get(ctx, b.name, metav1.GetOptions{})
	}
	if err == nil {
		var written *v1beta1.IPPoolBlock
		written, err = m.updateShared(ctx, obj, func(o *v1beta1.IPPoolBlock) bool {
			if o.Spec.NodeName != m.node {
				return false
			}
			if slices.EqualFunc(o.Status.IPAddresses, want, sameEntry) {
				return false
			}
			o.Status.IPAddresses, o.Status.Used = want, len(want)
			return true
		})
		if errors.Is(err, errBlockGone) {
			p.mu.Lock()
			b.lost = true
			p.mu.Unlock()
			klog.ErrorS(err, "An IPPoolBlock of this Node was deleted: handing out nothing new from it", "ipPoolBlock", b.name)
			return
		}
		if err == nil && written != nil {
			p.mu.Lock()
			b.written = written
			if written.Spec.NodeName != m.node {
				b.lost = true
			}
			p.mu.Unlock()
		}
	}
	if err == nil {
		if live, gerr := m.lister.Get(b.name); gerr == nil && live.Spec.NodeName != m.node && live.Spec.NodeName != "" {
			err = fmt.Errorf("IPPoolBlock %s now names Node %s", b.name, live.Spec.NodeName)
		}
	}
	if err != nil {
		klog.V(2).InfoS("Could not report the holders of an IPPoolBlock; retrying", "ipPoolBlock", b.name, "err", err)
		p.mu.Lock()
		m.scheduleSync(p, b)
		p.mu.Unlock()
	}
}

// newerBlock reports whether x is a later version of the block than y.
func newerBlock(x, y *v1beta1.IPPoolBlock) bool {
	c, err := resourceversion.CompareResourceVersion(x.ResourceVersion, y.ResourceVersion)
	return err == nil && c > 0
}

// flush brings the status of every block of the Node up to date now.
func (m *blockMode) flush() {
	for _, p := range m.allPools() {
		p.mu.Lock()
		var pending []*ownedBlock
		for _, b := range p.blocks {
			// Every block, not only those waiting: a report that failed a moment ago is waiting
			// for its retry. A block whose status is current costs no write.
			if !b.lost {
				pending = append(pending, b)
			}
		}
		p.mu.Unlock()
		for _, b := range pending {
			m.syncBlock(p, b)
		}
	}
}

func sameEntry(x, y v1beta1.IPAddressState) bool {
	if x.IPAddress != y.IPAddress || x.Phase != y.Phase || (x.Owner.Pod == nil) != (y.Owner.Pod == nil) {
		return false
	}
	return x.Owner.Pod == nil || *x.Owner.Pod == *y.Owner.Pod
}

// poolFilling reacts to a new block of a pool: once no block of the pool is left to claim, the
// Node turns its blocks that still have free addresses into shared blocks, so that other Nodes can
// take the pool's last addresses (single-address allocation with a conditional write each).
func (m *blockMode) poolFilling(pool string) {
	m.mu.Lock()
	p, ok := m.pools[pool]
	m.mu.Unlock()
	if !ok {
		return
	}
	p.fillDirty.Store(true)
	if !p.converting.CompareAndSwap(false, true) {
		return // the running check looks again
	}
	go func() {
		for {
			for p.fillDirty.Swap(false) {
				m.checkFilling(p)
			}
			p.converting.Store(false)
			if !p.fillDirty.Load() || !p.converting.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

// checkFilling shares the Node's blocks of a pool that has no block left to claim.
func (m *blockMode) checkFilling(p *nodePool) {
	poolObj, err := m.a.lister.Get(p.name)
	if err != nil {
		return
	}
	space, err := m.a.space(poolObj)
	if err != nil {
		return
	}
	list := listHeld(poolObj)
	bits := blockBits(space.subnet, m.maxSize)
	blocks := m.blocksOf(p.name)
	if size := 1 << (space.subnet.Addr().BitLen() - bits); len(blocks)*size+len(list) < space.total {
		return // some allocatable address lies outside every block: a block is left to claim
	}
	taken := map[netip.Prefix]bool{}
	for _, obj := range blocks {
		if ref, ok := parseBlock(obj); ok {
			taken[ref.cidr] = true
		}
	}
	if _, free := space.nextBlock(netip.Addr{}, bits, func(b netip.Prefix) bool {
		if taken[b] {
			return true
		}
		usable := false
		space.blockAddrs(b, func(a netip.Addr) bool { _, l := list[a]; usable = !l; return !usable })
		return !usable
	}); free {
		return
	}
	m.shareBlocks(p, space, list)
}

// shareBlocks turns the Node's blocks with free addresses into shared blocks. It holds the pool's
// lock during the writes: no local allocation may happen in a block while it changes hands.
func (m *blockMode) shareBlocks(p *nodePool, space *poolSpace, list map[netip.Addr]*v1beta1.PodOwner) {
	ctx, cancel := context.WithTimeout(context.Background(), m.a.opts.Timeout)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, b := range p.blocks {
		if b.lost {
			continue
		}
		free := false
		space.blockAddrs(b.cidr, func(a netip.Addr) bool {
			_, h := b.holders[a]
			_, l := list[a]
			free = !h && !l
			return !free
		})
		if !free {
			continue
		}
		obj, err := m.lister.Get(name)
		if err != nil {
			obj, err = m.a.client.CrdV1beta1().IPPoolBlocks().Get(ctx, name, metav1.GetOptions{})
		}
		if err != nil {
			continue
		}
		want := holderStates(b.holders)
		shared := false
		m.sharedWrites.Add(1)
		_, err = m.updateShared(ctx, obj, func(o *v1beta1.IPPoolBlock) bool {
			if o.Spec.NodeName != m.node {
				return false
			}
			shared = false
			o.Spec.NodeName = ""
			o.Status.IPAddresses, o.Status.Used = want, len(want)
			shared = true
			return true
		})
		if err != nil || !shared {
			continue
		}
		if err := m.store.remove(name); err != nil {
			klog.ErrorS(err, "Could not remove the local record of a block now shared", "ipPoolBlock", name)
		}
		p.drop(b)
		klog.InfoS("Shared an IPPoolBlock: its pool has no block left to claim", "ippool", p.name, "ipPoolBlock", name,
			"holders", len(want))
	}
}

// allocations lists the holders the Node's records and the cached blocks know of.
func (m *blockMode) allocations(filter Filter) []Allocation {
	var out []Allocation
	for _, p := range m.allPools() {
		if filter.Pool != "" && filter.Pool != p.name {
			continue
		}
		p.mu.Lock()
		for _, b := range p.blocks {
			for a, o := range b.holders {
				al := Allocation{Pool: p.name, Address: a, Phase: v1beta1.IPAddressPhaseAllocated, Owner: ownerOf(&o)}
				if filter.accepts(al) {
					out = append(out, al)
				}
			}
		}
		p.mu.Unlock()
	}
	objs, _ := m.lister.List(everything)
	for _, obj := range objs {
		if obj.Spec.NodeName == m.node || (filter.Pool != "" && filter.Pool != obj.Spec.Pool) {
			continue
		}
		for _, e := range obj.Status.IPAddresses {
			a, err := netip.ParseAddr(e.IPAddress)
			if err != nil || e.Owner.Pod == nil {
				continue
			}
			al := Allocation{Pool: obj.Spec.Pool, Address: a.Unmap(), Phase: e.Phase, Owner: ownerOf(e.Owner.Pod)}
			if filter.accepts(al) {
				out = append(out, al)
			}
		}
	}
	return out
}
