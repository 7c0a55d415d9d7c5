package ipam

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

func owner(containerID, ifName string) v1beta1.PodOwner {
	return v1beta1.PodOwner{Name: "pod-" + containerID, Namespace: "ns", ContainerID: containerID, IFName: ifName}
}

// poolWith returns a 10.0.0.0/29 pool (allocatable .2-.6, gateway .1) holding the given addresses,
// in order, owned by containers c<address>.
func poolWith(held ...string) *v1beta1.IPPool {
	p := testPool("plan", "10.0.0.1", 29, cidr("10.0.0.0/29"))
	for _, a := range held {
		o := owner("c"+a, "eth1")
		p.Status.IPAddresses = append(p.Status.IPAddresses, v1beta1.IPAddressState{
			IPAddress: a, Phase: v1beta1.IPAddressPhaseAllocated, Owner: v1beta1.IPAddressOwner{Pod: &o}})
	}
	p.Status.Usage = v1beta1.IPPoolUsage{Total: 5, Used: len(held)}
	return p
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func heldAddresses(st v1beta1.IPPoolStatus) []string {
	var out []string
	for _, e := range st.IPAddresses {
		out = append(out, e.IPAddress)
	}
	return out
}

func releaseOwner(o v1beta1.PodOwner) poolOp {
	key := ownerKey(&o)
	return poolOp{kind: opRelease, match: func(p *v1beta1.PodOwner) bool { return ownerKey(p) == key }}
}

func TestPlanBatch(t *testing.T) {
	tests := []struct {
		name        string
		pool        *v1beta1.IPPool
		ops         []poolOp
		avoid       []netip.Addr
		wantAddrs   []string // outcome addresses (allocate/claim), "" for none
		wantErrs    []string // substring of each outcome's error, "" for none
		wantHeld    []string
		wantChanged bool
	}{
		{
			name:      "allocation in an empty pool takes the first allocatable address",
			pool:      poolWith(),
			ops:       []poolOp{{kind: opAllocate, owner: owner("a", "eth1")}},
			wantAddrs: []string{"10.0.0.2"}, wantErrs: []string{""},
			wantHeld: []string{"10.0.0.2"}, wantChanged: true,
		},
		{
			name:      "allocation continues after the most recently recorded address",
			pool:      poolWith("10.0.0.4"),
			ops:       []poolOp{{kind: opAllocate, owner: owner("a", "eth1")}},
			wantAddrs: []string{"10.0.0.5"}, wantErrs: []string{""},
			wantHeld: []string{"10.0.0.4", "10.0.0.5"}, wantChanged: true,
		},
		{
			name:      "allocation wraps around past the last range address",
			pool:      poolWith("10.0.0.6"),
			ops:       []poolOp{{kind: opAllocate, owner: owner("a", "eth1")}},
			wantAddrs: []string{"10.0.0.2"}, wantErrs: []string{""},
			wantHeld: []string{"10.0.0.6", "10.0.0.2"}, wantChanged: true,
		},
		{
			name:      "a repeated allocation for one interface returns its address without a write",
			pool:      poolWith("10.0.0.3"),
			ops:       []poolOp{{kind: opAllocate, owner: owner("c10.0.0.3", "eth1")}},
			wantAddrs: []string{"10.0.0.3"}, wantErrs: []string{""},
			wantHeld: []string{"10.0.0.3"}, wantChanged: false,
		},
		{
			name: "two interfaces of one container get two addresses",
			pool: poolWith(),
			ops: []poolOp{{kind: opAllocate, owner: owner("a", "eth1")}, {kind: opAllocate, owner: owner("a", "eth2")},
				{kind: opAllocate, owner: owner("a", "eth1")}},
			wantAddrs: []string{"10.0.0.2", "10.0.0.3", "10.0.0.2"}, wantErrs: []string{"", "", ""},
			wantHeld: []string{"10.0.0.2", "10.0.0.3"}, wantChanged: true,
		},
		{
			name:      "recently released addresses are skipped while others are free",
			pool:      poolWith(),
			avoid:     addrs("10.0.0.2", "10.0.0.3"),
			ops:       []poolOp{{kind: opAllocate, owner: owner("a", "eth1")}},
			wantAddrs: []string{"10.0.0.4"}, wantErrs: []string{""},
			wantHeld: []string{"10.0.0.4"}, wantChanged: true,
		},
		{
			name:      "when only recently released addresses are free the oldest released is taken",
			pool:      poolWith("10.0.0.2", "10.0.0.4", "10.0.0.6"),
			avoid:     addrs("10.0.0.5", "10.0.0.3"),
			ops:       []poolOp{{kind: opAllocate, owner: owner("a", "eth1")}},
			wantAddrs: []string{"10.0.0.5"}, wantErrs: []string{""},
			wantHeld: []string{"10.0.0.2", "10.0.0.4", "10.0.0.6", "10.0.0.5"}, wantChanged: true,
		},
		{
			name:      "a full pool is exhausted and the error names it",
			pool:      poolWith("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"),
			ops:       []poolOp{{kind: opAllocate, owner: owner("a", "eth1")}},
			wantAddrs: []string{""}, wantErrs: []string{`IPPool "plan" is exhausted`},
			wantHeld: []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}, wantChanged: false,
		},
		{
			name:      "a free static address is recorded",
			pool:      poolWith(),
			ops:       []poolOp{{kind: opClaim, owner: owner("a", "eth1"), addr: netip.MustParseAddr("10.0.0.5")}},
			wantAddrs: []string{"10.0.0.5"}, wantErrs: []string{""},
			wantHeld: []string{"10.0.0.5"}, wantChanged: true,
		},
		{
			name:      "a static gateway address is refused",
			pool:      poolWith(),
			ops:       []poolOp{{kind: opClaim, owner: owner("a", "eth1"), addr: netip.MustParseAddr("10.0.0.1")}},
			wantAddrs: []string{""}, wantErrs: []string{"reserved"},
			wantHeld: nil, wantChanged: false,
		},
		{
			name:      "a static address held by another Pod is refused naming the holder",
			pool:      poolWith("10.0.0.3"),
			ops:       []poolOp{{kind: opClaim, owner: owner("a", "eth1"), addr: netip.MustParseAddr("10.0.0.3")}},
			wantAddrs: []string{""}, wantErrs: []string{"in use by Pod ns/pod-c10.0.0.3"},
			wantHeld: []string{"10.0.0.3"}, wantChanged: false,
		},
		{
			name:      "a static address the interface already holds is returned without a write",
			pool:      poolWith("10.0.0.3"),
			ops:       []poolOp{{kind: opClaim, owner: owner("c10.0.0.3", "eth1"), addr: netip.MustParseAddr("10.0.0.3")}},
			wantAddrs: []string{"10.0.0.3"}, wantErrs: []string{""},
			wantHeld: []string{"10.0.0.3"}, wantChanged: false,
		},
		{
			name:      "a static address differing from the one the interface holds is refused",
			pool:      poolWith("10.0.0.3"),
			ops:       []poolOp{{kind: opClaim, owner: owner("c10.0.0.3", "eth1"), addr: netip.MustParseAddr("10.0.0.4")}},
			wantAddrs: []string{""}, wantErrs: []string{"already holds 10.0.0.3"},
			wantHeld: []string{"10.0.0.3"}, wantChanged: false,
		},
		{
			name:      "release removes the owner's entry and keeps the others in order",
			pool:      poolWith("10.0.0.4", "10.0.0.2", "10.0.0.6"),
			ops:       []poolOp{releaseOwner(owner("c10.0.0.2", "eth1"))},
			wantAddrs: []string{""}, wantErrs: []string{""},
			wantHeld: []string{"10.0.0.4", "10.0.0.6"}, wantChanged: true,
		},
		{
			name:      "releasing an unknown owner changes nothing",
			pool:      poolWith("10.0.0.4"),
			ops:       []poolOp{releaseOwner(owner("nobody", "eth1"))},
			wantAddrs: []string{""}, wantErrs: []string{""},
			wantHeld: []string{"10.0.0.4"}, wantChanged: false,
		},
		{
			name: "an address released in a batch is not handed out again by the same batch",
			pool: poolWith("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"),
			ops: []poolOp{releaseOwner(owner("c10.0.0.5", "eth1")),
				{kind: opAllocate, owner: owner("a", "eth1")}},
			wantAddrs: []string{"", "10.0.0.6"}, wantErrs: []string{"", ""},
			wantHeld: []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.6"}, wantChanged: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			space, err := newPoolSpace(tc.pool)
			if err != nil {
				t.Fatal(err)
			}
			before := tc.pool.DeepCopy()
			plan := planBatch(tc.pool, space, tc.ops, tc.avoid)
			if !reflect.DeepEqual(before, tc.pool) {
				t.Fatalf("planBatch modified the pool")
			}
			for i, out := range plan.outcomes {
				got := ""
				if out.addr.IsValid() {
					got = out.addr.String()
				}
				if got != tc.wantAddrs[i] {
					t.Errorf("op %d: address %q, want %q", i, got, tc.wantAddrs[i])
				}
				switch {
				case tc.wantErrs[i] == "" && out.err != nil:
					t.Errorf("op %d: unexpected error %v", i, out.err)
				case tc.wantErrs[i] != "" && (out.err == nil || !strings.Contains(out.err.Error(), tc.wantErrs[i])):
					t.Errorf("op %d: error %v, want one containing %q", i, out.err, tc.wantErrs[i])
				}
			}
			if got := heldAddresses(plan.status); !reflect.DeepEqual(got, tc.wantHeld) {
				t.Errorf("held %v, want %v", got, tc.wantHeld)
			}
			if plan.status.Usage.Used != len(plan.status.IPAddresses) || plan.status.Usage.Total != space.total {
				t.Errorf("usage %+v does not match %d entries and total %d", plan.status.Usage, len(plan.status.IPAddresses), space.total)
			}
			if plan.changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", plan.changed, tc.wantChanged)
			}
		})
	}
}

func TestPlanBatchRecordsOwnerAndPhase(t *testing.T) {
	pool := poolWith()
	space, _ := newPoolSpace(pool)
	o := v1beta1.PodOwner{Name: "web", Namespace: "prod", UID: "u-1", ContainerID: "c1", IFName: "net1"}
	plan := planBatch(pool, space, []poolOp{{kind: opAllocate, owner: o}}, nil)
	want := v1beta1.IPAddressState{IPAddress: "10.0.0.2", Phase: v1beta1.IPAddressPhaseAllocated,
		Owner: v1beta1.IPAddressOwner{Pod: &o}}
	if len(plan.status.IPAddresses) != 1 || !reflect.DeepEqual(plan.status.IPAddresses[0], want) {
		t.Fatalf("status entries %+v, want [%+v]", plan.status.IPAddresses, want)
	}
}

func TestPlanBatchCorrectsStaleUsage(t *testing.T) {
	pool := poolWith("10.0.0.3")
	pool.Status.Usage = v1beta1.IPPoolUsage{}
	space, _ := newPoolSpace(pool)
	plan := planBatch(pool, space, []poolOp{releaseOwner(owner("nobody", "eth1"))}, nil)
	if !plan.changed || plan.status.Usage != (v1beta1.IPPoolUsage{Total: 5, Used: 1}) {
		t.Fatalf("changed=%v usage=%+v; want a write of {5 1}", plan.changed, plan.status.Usage)
	}
}

func TestPlanBatchExhaustionIsTyped(t *testing.T) {
	pool := poolWith("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6")
	space, _ := newPoolSpace(pool)
	plan := planBatch(pool, space, []poolOp{{kind: opAllocate, owner: owner("a", "eth1")}}, nil)
	var exhausted *PoolExhaustedError
	if !errors.As(plan.outcomes[0].err, &exhausted) || exhausted.Pool != "plan" {
		t.Fatalf("got %v; want a PoolExhaustedError for pool plan", plan.outcomes[0].err)
	}
}
