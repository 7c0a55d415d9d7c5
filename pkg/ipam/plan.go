package ipam

import (
	"fmt"
	"net/netip"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// opKind says what a pool operation does.
type opKind int

const (
	opAllocate opKind = iota // give the owner any free address
	opClaim                  // give the owner one given (static) address
	opRelease                // take back every address whose owner matches
)

// poolOp is one request against one pool's status.
type poolOp struct {
	kind  opKind
	owner v1beta1.PodOwner                   // opAllocate, opClaim
	addr  netip.Addr                         // opClaim
	match func(owner *v1beta1.PodOwner) bool // opRelease
}

// opOutcome is what an operation did.
type opOutcome struct {
	addr     netip.Addr   // opAllocate, opClaim: the address the owner holds
	existing bool         // opAllocate, opClaim: the owner already held it before
	released []netip.Addr // opRelease
	err      error
}

// batchPlan is the pool status after a batch of operations, and each operation's outcome.
type batchPlan struct {
	status   v1beta1.IPPoolStatus
	outcomes []opOutcome
	changed  bool         // status differs from the pool's current one
	released []netip.Addr // every address the batch frees
}

// ownerKey identifies an allocation: one interface of one Pod sandbox.
func ownerKey(o *v1beta1.PodOwner) string { return o.ContainerID + "\x00" + o.IFName }

// planBatch applies operations in order to the pool's current status and returns the new status.
// It never modifies pool. avoid lists recently released addresses, oldest first: they are handed
// out only when no other address is free, the oldest first.
func planBatch(pool *v1beta1.IPPool, space *poolSpace, ops []poolOp, avoid []netip.Addr) batchPlan {
	type entry struct {
		state v1beta1.IPAddressState
		addr  netip.Addr // invalid when the recorded text does not parse
		live  bool
	}
	cur := pool.Status.IPAddresses
	entries := make([]entry, 0, len(cur)+len(ops))
	byAddr := make(map[netip.Addr]int, len(cur)+len(ops))
	byOwner := make(map[string]int, len(cur)+len(ops))
	var cursor netip.Addr // the most recently allocated address: the scan starts after it
	for _, st := range cur {
		e := entry{state: st, live: true}
		if a, err := netip.ParseAddr(st.IPAddress); err == nil {
			e.addr = a.Unmap()
			if _, dup := byAddr[e.addr]; !dup {
				byAddr[e.addr] = len(entries)
			}
			if space.contains(e.addr) {
				cursor = e.addr
			}
			if st.Owner.Pod != nil {
				byOwner[ownerKey(st.Owner.Pod)] = len(entries)
			}
		}
		entries = append(entries, e)
	}
	avoid = append([]netip.Addr(nil), avoid...) // grows below; never the caller's array
	avoidSet := make(map[netip.Addr]struct{}, len(avoid))
	for _, a := range avoid {
		avoidSet[a] = struct{}{}
	}
	used := func(a netip.Addr) bool { _, ok := byAddr[a]; return ok }
	add := func(a netip.Addr, owner v1beta1.PodOwner) {
		o := owner
		byAddr[a] = len(entries)
		byOwner[ownerKey(&o)] = len(entries)
		entries = append(entries, entry{
			state: v1beta1.IPAddressState{IPAddress: a.String(), Phase: v1beta1.IPAddressPhaseAllocated,
				Owner: v1beta1.IPAddressOwner{Pod: &o}},
			addr: a, live: true,
		})
	}

	p := batchPlan{outcomes: make([]opOutcome, len(ops))}
	for i, op := range ops {
		out := &p.outcomes[i]
		switch op.kind {
		case opAllocate:
			if j, ok := byOwner[ownerKey(&op.owner)]; ok {
				out.addr, out.existing = entries[j].addr, true
				continue
			}
			a, ok := space.nextFree(cursor, func(a netip.Addr) bool {
				_, held := avoidSet[a]
				return held || used(a)
			})
			if !ok { // everything free was released recently: take the oldest of those
				for _, q := range avoid {
					if space.contains(q) && !space.isReserved(q) && !used(q) {
						a, ok = q, true
						break
					}
				}
			}
			if !ok {
				out.err = &PoolExhaustedError{Pool: pool.Name, Total: space.total}
				continue
			}
			add(a, op.owner)
			cursor, out.addr, p.changed = a, a, true
		case opClaim:
			if j, ok := byOwner[ownerKey(&op.owner)]; ok {
				if entries[j].addr == op.addr {
					out.addr, out.existing = op.addr, true
				} else {
					out.err = &StaticAddressError{Pool: pool.Name, Address: op.addr,
						Reason: fmt.Sprintf("the interface already holds %s", entries[j].state.IPAddress)}
				}
				continue
			}
			switch {
			case !space.contains(op.addr):
				out.err = &StaticAddressError{Pool: pool.Name, Address: op.addr, Reason: "outside the pool's ranges"}
			case space.isReserved(op.addr):
				out.err = &StaticAddressError{Pool: pool.Name, Address: op.addr,
					Reason: "reserved (network, broadcast or gateway address)"}
			case used(op.addr):
				out.err = &StaticAddressError{Pool: pool.Name, Address: op.addr,
					Reason: "in use by " + describeOwner(entries[byAddr[op.addr]].state.Owner.Pod)}
			default:
				add(op.addr, op.owner)
				out.addr, p.changed = op.addr, true
			}
		case opRelease:
			for j := range entries {
				e := &entries[j]
				if !e.live || e.state.Owner.Pod == nil || !op.match(e.state.Owner.Pod) {
					continue
				}
				e.live, p.changed = false, true
				delete(byOwner, ownerKey(e.state.Owner.Pod))
				if e.addr.IsValid() {
					if byAddr[e.addr] == j {
						delete(byAddr, e.addr)
					}
					out.released = append(out.released, e.addr)
					p.released = append(p.released, e.addr)
					// Within the batch too, a freed address goes to the back of the line.
					avoidSet[e.addr] = struct{}{}
					avoid = append(avoid, e.addr)
				}
			}
		}
	}

	live := make([]v1beta1.IPAddressState, 0, len(entries))
	for _, e := range entries {
		if e.live {
			live = append(live, e.state)
		}
	}
	if len(live) == 0 {
		live = nil
	}
	u := pool.Status.Usage
	p.status = v1beta1.IPPoolStatus{IPAddresses: live, Usage: v1beta1.IPPoolUsage{Total: space.total, Used: len(live) + u.InBlocks,
		InBlocks: u.InBlocks, Blocks: u.Blocks}}
	if p.status.Usage != pool.Status.Usage {
		p.changed = true
	}
	return p
}

func describeOwner(o *v1beta1.PodOwner) string {
	if o == nil {
		return "an owner that is not a Pod"
	}
	return fmt.Sprintf("Pod %s/%s (container %s, interface %q)", o.Namespace, o.Name, o.ContainerID, o.IFName)
}
