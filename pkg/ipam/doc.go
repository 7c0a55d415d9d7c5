// Package ipam allocates addresses from IPPools (crd.antrea.io/v1beta1) for Pod interfaces.
//
// # Per-Node address blocks (Options.NodeName set: the agent)
//
// A pool's subnet is cut into aligned blocks (blockBits: at least 64 blocks, at most
// Options.BlockSize addresses each, from the immutable subnet only, so every agent cuts alike). A
// Node claims a block by creating its IPPoolBlock object, whose name is derived from the pool and
// the CIDR (BlockName): one API write, which the API server lets succeed for one Node only. The
// Node then hands out the block's addresses itself, recording each holder in a Node-local file
// (one per block, replaced by an atomic rename, under Options.StateDir) before it answers; the
// ADD path makes no API request while the Node's blocks have a free address. Holders are copied
// into the block's status after Options.BlockSyncDelay, one write per burst, for kubectl and the
// controller.
//
// Why a file and not OVSDB external_ids: IPAM-only and Multus-delegate Nodes may run without the
// secondary bridge, and this package must not depend on pkg/ovs. The file needs no fsync: it must
// outlive the agent process, and the page cache does; a reboot loses it together with every
// sandbox that held one of its addresses (the directory is on the Node's /var/run), and the agent
// then starts from the holders the blocks last reported, which the reconciler releases.
//
// Demand: when the free addresses of the Node's blocks fall below a quarter of a block, the next
// block is claimed in the background. When no block of the pool is left to claim, every Node turns
// its blocks that still have room into shared blocks (spec.nodeName emptied, holders written in
// the same conditional write), and anyone allocates inside a shared block with a conditional write
// of it: single-address allocation, so that the pool fills to its last address.
//
// Safety: a Node allocates only inside blocks that name it, and stops as soon as its cache or a
// write shows a block no longer does (the controller takes back blocks of deleted Nodes only, never
// of NotReady ones). After a restart the Node re-reads its records and the blocks naming it;
// records are written before answers, so nothing is handed out twice.
//
// Addresses recorded in a pool's status.ipAddresses (by the previous version, which allocated there,
// or by an Allocator without a Node) are honoured: never handed out from a block, returned to a
// repeated request of their owner, released from the list.
//
// # Status entries (no NodeName: tools, tests, the previous scheme)
//
// Every address handed out is an entry of the pool's status.ipAddresses with its owner. Writes are
// optimistic (UpdateStatus carrying the resourceVersion); a conflict is resolved by re-reading the
// pool from the API server and re-planning. Concurrent requests of one Allocator for one pool are
// queued and coalesced: while a status write is in flight new requests wait, and the next write
// carries all of them. Address choice is next-fit from the last entry.
//
// In both schemes addresses released recently are handed out again only when nothing else is free,
// and never allocated are the subnet's network address, its IPv4 broadcast address and the
// gateway, wherever they fall in the ranges. These rules, and how status.usage.total counts, come
// from pkg/apis/crd/validation, shared with the admission webhook.
//
// Use:
//
//	factory := externalversions.NewSharedInformerFactory(client, 0)
//	alloc, err := ipam.NewAllocator(client, factory.Crd().V1beta1().IPPools(), ipam.Options{
//		NodeName: node, Blocks: factory.Crd().V1beta1().IPPoolBlocks(), StateDir: "/var/run/antrea/ipam"})
//	factory.Start(stop)
//	factory.WaitForCacheSync(stop)
//	res, err := alloc.Allocate(ctx, ipam.Request{
//		Owner: ipam.Owner{Namespace: ns, Name: pod, UID: uid, ContainerID: id, IFName: "net1"},
//		Pools: []string{"vlan100-ipv4", "vlan100-ipv6"}, // from the NAD's ipam.ippools
//		VLAN:  nadVLAN,                                   // the NAD's vlan, 0 when unset
//	})
//	// res.IPs: address/prefix, gateway, pool, VLAN per family; res.VLAN: the VLAN to tag.
//	err = alloc.Release(ctx, owner)            // CNI DEL of one interface
//	err = alloc.ReleaseContainer(ctx, id)      // CNI DEL of a whole sandbox
//	list, err := alloc.Allocations(ipam.Filter{Match: onThisNode}) // reconciliation, GC
//	alloc.FlushBlocks()                        // on shutdown: report pending holders now
package ipam
