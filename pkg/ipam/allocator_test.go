package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

var ctx = context.Background()

func TestAllocateReturnsAddressWithTheSubnetData(t *testing.T) {
	c := newRealCluster(t)
	pool, net := c.v4Pool(t, 100, "1", cidr("0/28"))
	a := c.newAllocator(t, Options{})
	o := podOwner("c1", "net1")

	res, err := a.Allocate(ctx, Request{Owner: o, Pools: []string{pool}})
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	want := &Result{VLAN: 100, IPs: []IPConfig{{Pool: pool, Address: netip.MustParsePrefix(net + "2/24"),
		Gateway: netip.MustParseAddr(net + "1"), VLAN: 100}}}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	st := c.status(t, pool)
	wantEntry := v1beta1.IPAddressState{IPAddress: net + "2", Phase: v1beta1.IPAddressPhaseAllocated,
		Owner: v1beta1.IPAddressOwner{Pod: &v1beta1.PodOwner{Name: o.Name, Namespace: o.Namespace, UID: o.UID,
			ContainerID: o.ContainerID, IFName: o.IFName}}}
	if len(st.IPAddresses) != 1 || !reflect.DeepEqual(st.IPAddresses[0], wantEntry) {
		t.Fatalf("status entries %+v, want [%+v]", st.IPAddresses, wantEntry)
	}
	if st.Usage != (v1beta1.IPPoolUsage{Total: 14, Used: 1}) {
		t.Fatalf("usage %+v, want {14 1}: the /28 at the start of the /24 loses the subnet's network address and the gateway", st.Usage)
	}
}

func TestAllocateIsIdempotentPerInterface(t *testing.T) {
	c := newRealCluster(t)
	pool, _ := c.v4Pool(t, 0, "1", cidr("0/28"))
	a := c.newAllocator(t, Options{})
	first, err := a.Allocate(ctx, Request{Owner: podOwner("c1", "eth1"), Pools: []string{pool}})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		alloc     *Allocator
		owner     Owner
		wantSame  bool
		wantCount int
	}{
		{name: "the same interface again gets the same address", alloc: a, owner: podOwner("c1", "eth1"), wantSame: true, wantCount: 1},
		{name: "a restarted agent (new allocator) gets the same address", alloc: c.newAllocator(t, Options{}),
			owner: podOwner("c1", "eth1"), wantSame: true, wantCount: 1},
		{name: "another interface of the same container gets another address", alloc: a, owner: podOwner("c1", "eth2"), wantSame: false, wantCount: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.alloc.Allocate(ctx, Request{Owner: tc.owner, Pools: []string{pool}})
			if err != nil {
				t.Fatal(err)
			}
			if same := res.IPs[0].Address == first.IPs[0].Address; same != tc.wantSame {
				t.Fatalf("got %s after %s; same=%v, want %v", res.IPs[0].Address, first.IPs[0].Address, same, tc.wantSame)
			}
			if st := c.status(t, pool); len(st.IPAddresses) != tc.wantCount || st.Usage.Used != tc.wantCount {
				t.Fatalf("status holds %d entries (usage %+v), want %d", len(st.IPAddresses), st.Usage, tc.wantCount)
			}
		})
	}
}

func TestAllocateDualStack(t *testing.T) {
	c := newRealCluster(t)
	v4, net4 := c.v4Pool(t, 300, "1", cidr("0/28"))
	net6 := nextV6()
	v6 := c.createPool(t, "ipam-v6", v1beta1.IPPoolSpec{IPRanges: []v1beta1.IPRange{{CIDR: net6 + "/120"}},
		SubnetInfo: v1beta1.SubnetInfo{Gateway: net6 + "1", PrefixLength: 64, VLAN: 300}})
	a := c.newAllocator(t, Options{})

	res, err := a.Allocate(ctx, Request{Owner: podOwner("c1", "eth1"), Pools: []string{v4, v6}})
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	want := &Result{VLAN: 300, IPs: []IPConfig{
		{Pool: v4, Address: netip.MustParsePrefix(net4 + "2/24"), Gateway: netip.MustParseAddr(net4 + "1"), VLAN: 300},
		{Pool: v6, Address: netip.MustParsePrefix(net6 + "2/64"), Gateway: netip.MustParseAddr(net6 + "1"), VLAN: 300},
	}}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	for _, p := range []string{v4, v6} {
		if st := c.status(t, p); st.Usage.Used != 1 {
			t.Errorf("pool %s usage %+v, want one address used", p, st.Usage)
		}
	}
}

func TestReservedAddressesAreNeverAllocated(t *testing.T) {
	c := newRealCluster(t)
	tests := []struct {
		name     string
		spec     func() (v1beta1.IPPoolSpec, []string) // spec and its reserved addresses
		wantUsed int
	}{
		{
			name: "an IPv4 start/end range over a whole /28 subnet with the gateway inside",
			spec: func() (v1beta1.IPPoolSpec, []string) {
				n := nextV4()
				return v1beta1.IPPoolSpec{IPRanges: []v1beta1.IPRange{{Start: n + "0", End: n + "15"}},
					SubnetInfo: v1beta1.SubnetInfo{Gateway: n + "9", PrefixLength: 28}}, []string{n + "0", n + "9", n + "15"}
			},
			wantUsed: 13,
		},
		{
			name: "an IPv4 CIDR equal to a /29 subnet",
			spec: func() (v1beta1.IPPoolSpec, []string) {
				n := nextV4()
				return v1beta1.IPPoolSpec{IPRanges: []v1beta1.IPRange{{CIDR: n + "8/29"}},
					SubnetInfo: v1beta1.SubnetInfo{Gateway: n + "14", PrefixLength: 29}}, []string{n + "8", n + "14", n + "15"}
			},
			wantUsed: 5,
		},
		{
			name: "an IPv6 CIDR equal to a /124 subnet",
			spec: func() (v1beta1.IPPoolSpec, []string) {
				n := nextV6()
				return v1beta1.IPPoolSpec{IPRanges: []v1beta1.IPRange{{CIDR: n + "/124"}},
					SubnetInfo: v1beta1.SubnetInfo{Gateway: n + "1", PrefixLength: 124}}, []string{n, n + "1"}
			},
			wantUsed: 14,
		},
	}
	a := c.newAllocator(t, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, reserved := tc.spec()
			pool := c.createPool(t, "ipam-reserved", spec)
			got := map[netip.Addr]bool{}
			for i := 0; ; i++ {
				res, err := a.Allocate(ctx, Request{Owner: podOwner(fmt.Sprintf("c%d", i), "eth1"), Pools: []string{pool}})
				var exhausted *PoolExhaustedError
				if errors.As(err, &exhausted) {
					if exhausted.Pool != pool || !strings.Contains(err.Error(), pool) {
						t.Fatalf("exhaustion error %q does not name pool %s", err, pool)
					}
					break
				}
				if err != nil {
					t.Fatalf("allocate %d: %v", i, err)
				}
				got[res.IPs[0].Address.Addr()] = true
			}
			for _, r := range reserved {
				if got[netip.MustParseAddr(r)] {
					t.Errorf("reserved address %s was allocated", r)
				}
			}
			st := c.status(t, pool)
			if len(got) != tc.wantUsed || st.Usage != (v1beta1.IPPoolUsage{Total: tc.wantUsed, Used: tc.wantUsed}) {
				t.Fatalf("allocated %d, usage %+v; want %d of %d", len(got), st.Usage, tc.wantUsed, tc.wantUsed)
			}
		})
	}
}

func TestRelease(t *testing.T) {
	c := newRealCluster(t)
	a := c.newAllocator(t, Options{})
	tests := []struct {
		name     string
		release  func(pool string) error
		wantHeld []string // container/ifname of the remaining owners
	}{
		{name: "releasing an interface frees only its address",
			release:  func(string) error { return a.Release(ctx, podOwner("c1", "eth1")) },
			wantHeld: []string{"c1/eth2", "c2/eth1"}},
		{name: "releasing twice succeeds",
			release: func(string) error {
				if err := a.Release(ctx, podOwner("c1", "eth1")); err != nil {
					return err
				}
				return a.Release(ctx, podOwner("c1", "eth1"))
			},
			wantHeld: []string{"c1/eth2", "c2/eth1"}},
		{name: "releasing an unknown owner succeeds and changes nothing",
			release:  func(string) error { return a.Release(ctx, podOwner("nobody", "eth1")) },
			wantHeld: []string{"c1/eth1", "c1/eth2", "c2/eth1"}},
		{name: "releasing a container frees all its interfaces",
			release:  func(string) error { return a.ReleaseContainer(ctx, "c1") },
			wantHeld: []string{"c2/eth1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool, _ := c.v4Pool(t, 0, "1", cidr("0/28"))
			for _, o := range []Owner{podOwner("c1", "eth1"), podOwner("c1", "eth2"), podOwner("c2", "eth1")} {
				if _, err := a.Allocate(ctx, Request{Owner: o, Pools: []string{pool}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.release(pool); err != nil {
				t.Fatalf("release: %v", err)
			}
			st := c.status(t, pool)
			var held []string
			for _, owner := range heldBy(st) {
				held = append(held, owner)
			}
			sort.Strings(held)
			if !reflect.DeepEqual(held, tc.wantHeld) || st.Usage.Used != len(tc.wantHeld) {
				t.Fatalf("held %v (usage %+v), want %v", held, st.Usage, tc.wantHeld)
			}
		})
	}
}

func TestStaticAddresses(t *testing.T) {
	c := newRealCluster(t)
	a := c.newAllocator(t, Options{})
	tests := []struct {
		name string
		// run gets the referenced pool and its subnet prefix, and another pool and its prefix.
		run func(t *testing.T, pool, net, other, otherNet string)
	}{
		{name: "a free static address inside the referenced pool is that pool's address",
			run: func(t *testing.T, pool, net, _, _ string) {
				res, err := a.Allocate(ctx, Request{Owner: podOwner("c1", "eth1"), Pools: []string{pool},
					Static: []StaticAddress{{Address: netip.MustParsePrefix(net + "7/24")}}})
				if err != nil {
					t.Fatal(err)
				}
				want := []IPConfig{{Pool: pool, Address: netip.MustParsePrefix(net + "7/24"), Gateway: netip.MustParseAddr(net + "1")}}
				if !reflect.DeepEqual(res.IPs, want) {
					t.Fatalf("IPs %+v, want %+v", res.IPs, want)
				}
				if held := heldBy(c.status(t, pool)); !reflect.DeepEqual(held, map[netip.Addr]string{netip.MustParseAddr(net + "7"): "c1/eth1"}) {
					t.Fatalf("pool holds %v, want only the static address", held)
				}
			}},
		{name: "a static address outside every pool is returned and not recorded",
			run: func(t *testing.T, pool, net, _, _ string) {
				static := StaticAddress{Address: netip.MustParsePrefix("192.0.2.10/24"), Gateway: netip.MustParseAddr("192.0.2.1")}
				res, err := a.Allocate(ctx, Request{Owner: podOwner("c1", "eth1"), Pools: []string{pool}, Static: []StaticAddress{static}})
				if err != nil {
					t.Fatal(err)
				}
				want := []IPConfig{{Pool: pool, Address: netip.MustParsePrefix(net + "2/24"), Gateway: netip.MustParseAddr(net + "1")},
					{Address: static.Address, Gateway: static.Gateway}}
				if !reflect.DeepEqual(res.IPs, want) {
					t.Fatalf("IPs %+v, want %+v", res.IPs, want)
				}
				if held := heldBy(c.status(t, pool)); len(held) != 1 {
					t.Fatalf("pool holds %v, want only the dynamic address", held)
				}
			}},
		{name: "a static address inside a pool the network does not reference is recorded there",
			run: func(t *testing.T, pool, _, other, otherNet string) {
				_, err := a.Allocate(ctx, Request{Owner: podOwner("c1", "eth1"), Pools: []string{pool},
					Static: []StaticAddress{{Address: netip.MustParsePrefix(otherNet + "9/24")}}})
				if err != nil {
					t.Fatal(err)
				}
				if held := heldBy(c.status(t, other)); held[netip.MustParseAddr(otherNet+"9")] != "c1/eth1" {
					t.Fatalf("other pool holds %v, want the static address recorded for c1/eth1", held)
				}
			}},
		{name: "a static gateway address is refused and nothing stays allocated",
			run: func(t *testing.T, pool, net, _, _ string) {
				_, err := a.Allocate(ctx, Request{Owner: podOwner("c1", "eth1"), Pools: []string{pool},
					Static: []StaticAddress{{Address: netip.MustParsePrefix(net + "1/24")}}})
				var se *StaticAddressError
				if !errors.As(err, &se) || se.Pool != pool || !strings.Contains(err.Error(), "reserved") {
					t.Fatalf("got %v; want a StaticAddressError naming %s and the reservation", err, pool)
				}
				if held := heldBy(c.status(t, pool)); len(held) != 0 {
					t.Fatalf("pool holds %v after a refused request", held)
				}
			}},
		{name: "a static address held by another Pod is refused naming the holder",
			run: func(t *testing.T, pool, net, _, _ string) {
				if _, err := a.Allocate(ctx, Request{Owner: podOwner("c1", "eth1"), Pools: []string{pool}}); err != nil {
					t.Fatal(err)
				}
				_, err := a.Allocate(ctx, Request{Owner: podOwner("c2", "eth1"), Pools: []string{pool},
					Static: []StaticAddress{{Address: netip.MustParsePrefix(net + "2/24")}}})
				var se *StaticAddressError
				if !errors.As(err, &se) || !strings.Contains(err.Error(), "pod-c1") {
					t.Fatalf("got %v; want a StaticAddressError naming Pod pod-c1", err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool, net := c.v4Pool(t, 0, "1", cidr("0/28"))
			other, otherNet := c.v4Pool(t, 0, "1", cidr("0/28"))
			waitFor(t, "the allocator's cache to see the new pools", func() bool {
				_, e1 := a.lister.Get(pool)
				_, e2 := a.lister.Get(other)
				return e1 == nil && e2 == nil
			})
			tc.run(t, pool, net, other, otherNet)
		})
	}
}

func TestRequestErrorsAreTypedAndNameThePool(t *testing.T) {
	c := newRealCluster(t)
	a := c.newAllocator(t, Options{})
	v4a, _ := c.v4Pool(t, 10, "1", cidr("0/28"))
	v4b, _ := c.v4Pool(t, 20, "1", cidr("0/28"))
	n6 := nextV6()
	v6 := c.createPool(t, "ipam-v6", v1beta1.IPPoolSpec{IPRanges: []v1beta1.IPRange{{CIDR: n6 + "/120"}},
		SubnetInfo: v1beta1.SubnetInfo{Gateway: n6 + "1", PrefixLength: 64, VLAN: 30}})
	full, _ := c.v4Pool(t, 0, "1", v1beta1.IPRange{Start: "2", End: "2"})
	if _, err := a.Allocate(ctx, Request{Owner: podOwner("holder", "eth1"), Pools: []string{full}}); err != nil {
		t.Fatal(err)
	}
	n6b := nextV6()
	fullV6 := c.createPool(t, "ipam-v6full", v1beta1.IPPoolSpec{IPRanges: []v1beta1.IPRange{{Start: n6b + "2", End: n6b + "2"}},
		SubnetInfo: v1beta1.SubnetInfo{Gateway: n6b + "1", PrefixLength: 64, VLAN: 10}})
	if _, err := a.Allocate(ctx, Request{Owner: podOwner("holder6", "eth1"), Pools: []string{fullV6}}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		req      Request
		check    func(error) bool
		wantPool string
	}{
		{name: "a missing pool", req: Request{Pools: []string{v4a, "no-such-pool"}},
			check: func(err error) bool { var e *PoolNotFoundError; return errors.As(err, &e) }, wantPool: "no-such-pool"},
		{name: "two pools of one family", req: Request{Pools: []string{v4a, v4b}},
			check: func(err error) bool { var e *PoolFamilyError; return errors.As(err, &e) }, wantPool: v4b},
		{name: "pools with conflicting VLANs", req: Request{Pools: []string{v4a, v6}},
			check: func(err error) bool { var e *VLANConflictError; return errors.As(err, &e) }, wantPool: v6},
		{name: "an exhausted pool", req: Request{Pools: []string{full}},
			check: func(err error) bool { var e *PoolExhaustedError; return errors.As(err, &e) }, wantPool: full},
		{name: "an exhausted second family rolls back the first", req: Request{Pools: []string{v4a, fullV6}},
			check: func(err error) bool { var e *PoolExhaustedError; return errors.As(err, &e) }, wantPool: fullV6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Owner = podOwner("c-"+strings.ReplaceAll(tc.name, " ", "-"), "eth1")
			_, err := a.Allocate(ctx, tc.req)
			if err == nil || !tc.check(err) || !strings.Contains(err.Error(), tc.wantPool) {
				t.Fatalf("got %v; want the typed error naming %s", err, tc.wantPool)
			}
			allocs, lerr := a.Allocations(Filter{ContainerID: tc.req.Owner.ContainerID})
			if lerr != nil || len(allocs) != 0 {
				t.Fatalf("after the failed request the owner holds %+v (%v); want nothing", allocs, lerr)
			}
		})
	}

	t.Run("the network's own VLAN settles conflicting pool VLANs", func(t *testing.T) {
		res, err := a.Allocate(ctx, Request{Owner: podOwner("vlan-override", "eth1"), Pools: []string{v4a, v6}, VLAN: 42})
		if err != nil || res.VLAN != 42 {
			t.Fatalf("got %+v, %v; want VLAN 42", res, err)
		}
	})
}

func TestJustReleasedAddressIsNotReusedWhileOthersAreFree(t *testing.T) {
	c := newRealCluster(t)
	tests := []struct {
		name string
		// sameAgent: the release and the next allocation come from one allocator; otherwise from two.
		sameAgent bool
	}{
		{name: "on one agent", sameAgent: true},
		{name: "across agents", sameAgent: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool, _ := c.v4Pool(t, 0, "1", cidr("0/28"))
			releaser := c.newAllocator(t, Options{})
			allocator := releaser
			if !tc.sameAgent {
				allocator = c.newAllocator(t, Options{})
			}
			var released []netip.Addr
			for _, id := range []string{"a", "b"} {
				res, err := releaser.Allocate(ctx, Request{Owner: podOwner(id, "eth1"), Pools: []string{pool}})
				if err != nil {
					t.Fatal(err)
				}
				released = append(released, res.IPs[0].Address.Addr())
			}
			// Release the most recent allocation first: then nothing in the pool's status remembers it.
			for _, id := range []string{"b", "a"} {
				if err := releaser.Release(ctx, podOwner(id, "eth1")); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the allocating agent to learn of the releases", func() bool {
				return len(allocator.quarantine.recent(pool, time.Now())) == len(released)
			})
			res, err := allocator.Allocate(ctx, Request{Owner: podOwner("c", "eth1"), Pools: []string{pool}})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range released {
				if res.IPs[0].Address.Addr() == r {
					t.Fatalf("got %s, released a moment ago, while 11 other addresses are free", r)
				}
			}
		})
	}
}

func TestAllocationsFilter(t *testing.T) {
	c := newRealCluster(t)
	a := c.newAllocator(t, Options{})
	pool, _ := c.v4Pool(t, 0, "1", cidr("0/28"))
	for _, o := range []Owner{podOwner("c1", "eth1"), podOwner("c1", "eth2"), podOwner("c2", "eth1")} {
		if _, err := a.Allocate(ctx, Request{Owner: o, Pools: []string{pool}}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		filter Filter
		want   []string
	}{
		{name: "by pool", filter: Filter{Pool: pool}, want: []string{"c1/eth1", "c1/eth2", "c2/eth1"}},
		{name: "by namespace", filter: Filter{Pool: pool, Namespace: "ns-c2"}, want: []string{"c2/eth1"}},
		{name: "by container", filter: Filter{Pool: pool, ContainerID: "c1"}, want: []string{"c1/eth1", "c1/eth2"}},
		{name: "by pod UID", filter: Filter{Pool: pool, UID: "uid-c2"}, want: []string{"c2/eth1"}},
		{name: "by predicate", filter: Filter{Pool: pool, Match: func(al Allocation) bool { return al.Owner.IFName == "eth2" }},
			want: []string{"c1/eth2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			allocs, err := a.Allocations(tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, al := range allocs {
				got = append(got, al.Owner.ContainerID+"/"+al.Owner.IFName)
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestEightAgentsAllocateOnePoolAtOnce is the concurrency guarantee: 8 allocators, each with its
// own client, connection and informer (8 Nodes), make 1,000 allocations at once on one pool of
// 1,024 addresses. No address may be handed out twice, no request may fail, and the pool's status
// must record exactly the addresses handed out, each with its owner. Releasing them all, again at
// once from all agents, must leave the pool empty.
func TestEightAgentsAllocateOnePoolAtOnce(t *testing.T) {
	const agents, allocations = 8, 1000
	c := newRealCluster(t)
	pool := c.createPool(t, "ipam-eight", v1beta1.IPPoolSpec{IPRanges: []v1beta1.IPRange{{CIDR: wideV4 + "/22"}},
		SubnetInfo: v1beta1.SubnetInfo{Gateway: strings.TrimSuffix(wideV4, "0") + "1", PrefixLength: 22}})
	allocators := make([]*Allocator, agents)
	for i := range allocators {
		allocators[i] = c.newAllocator(t, Options{})
	}
	waitFor(t, "every allocator to see the pool", func() bool {
		for _, a := range allocators {
			if _, err := a.lister.Get(pool); err != nil {
				return false
			}
		}
		return true
	})

	owners := make([]Owner, allocations)
	got := make([]netip.Addr, allocations)
	errs := make([]error, allocations)
	var wg sync.WaitGroup
	for i := range allocations {
		owners[i] = podOwner(fmt.Sprintf("ctr-%04d", i), "net1")
		wg.Go(func() {
			res, err := allocators[i%agents].Allocate(ctx, Request{Owner: owners[i], Pools: []string{pool}})
			if err == nil {
				got[i] = res.IPs[0].Address.Addr()
			}
			errs[i] = err
		})
	}
	wg.Wait()

	want := map[netip.Addr]string{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("allocation %d failed: %v", i, err)
		}
		if prev, dup := want[got[i]]; dup {
			t.Fatalf("address %s handed out to %s and to %s", got[i], prev, owners[i].ContainerID)
		}
		want[got[i]] = owners[i].ContainerID + "/net1"
	}
	st := c.status(t, pool)
	if held := heldBy(st); !reflect.DeepEqual(held, want) {
		t.Fatalf("status records %d addresses that differ from the %d handed out", len(held), len(want))
	}
	if st.Usage != (v1beta1.IPPoolUsage{Total: 1021, Used: allocations}) {
		t.Fatalf("usage %+v, want {1021 %d}", st.Usage, allocations)
	}
	var writes, conflicts uint64
	for _, a := range allocators {
		s := a.Stats()
		writes += s.Writes
		conflicts += s.Conflicts
	}
	t.Logf("%d allocations by %d agents: %d status writes, %d conflicts retried", allocations, agents, writes, conflicts)

	for i := range allocations {
		wg.Go(func() { errs[i] = allocators[i%agents].Release(ctx, owners[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("release %d failed: %v", i, err)
		}
	}
	if st := c.status(t, pool); len(st.IPAddresses) != 0 || st.Usage != (v1beta1.IPPoolUsage{Total: 1021, Used: 0}) {
		t.Fatalf("after releasing everything the pool holds %d entries, usage %+v", len(st.IPAddresses), st.Usage)
	}
}
