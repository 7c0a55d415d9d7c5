// Package ipam allocates addresses from IPPools (crd.antrea.io/v1beta1) for Pod interfaces.
//
// The API server holds all state: every address handed out is recorded in the pool's
// status.ipAddresses with its owner, so agents can restart and many agents can allocate from one
// pool at once. Writes are optimistic (UpdateStatus carrying the resourceVersion); a conflict is
// resolved by re-reading the pool from the API server and re-planning. Concurrent requests of one
// Allocator for one pool are queued and coalesced: while a status write is in flight new requests
// wait, and the next write carries all of them.
//
// Address choice is next-fit: scanning starts after the most recently allocated address of the pool
// (the last entry of status.ipAddresses) and wraps around, so a just-released address is reused only
// when nothing else is free. Addresses released recently (by this Allocator, or by anyone, as seen
// through the informer) are also skipped while other addresses are free, which covers the cases the
// scan position alone does not (the most recent allocation being the one released).
//
// Never allocated: the subnet's network address, its IPv4 broadcast address and the gateway,
// wherever they fall in the ranges (start/end ranges included). These rules, and how
// status.usage.total counts, come from pkg/apis/crd/validation, shared with the admission webhook.
//
// Use:
//
//	factory := externalversions.NewSharedInformerFactory(client, 0)
//	alloc, err := ipam.NewAllocator(client, factory.Crd().V1beta1().IPPools(), ipam.Options{})
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
package ipam
