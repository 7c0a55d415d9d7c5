package engine_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/podvlan/podvlan/pkg/agent/engine/enginetest"
	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/veth"
	"github.com/podvlan/podvlan/pkg/ipam"
	"github.com/podvlan/podvlan/pkg/ovs"
)

// intentChecking fails an allocation that no intent records: the order crash safety rests on.
type intentChecking struct {
	*enginetest.Addresses
	intents *enginetest.Intents
}

func (a *intentChecking) Allocate(ctx context.Context, req ipam.Request) (*ipam.Result, error) {
	list, _ := a.intents.ListIntents(ctx)
	if !slices.ContainsFunc(list, func(in ovs.Intent) bool { return in.Key() == ovs.IntentKey(req.Owner.ContainerID, req.Owner.IFName) }) {
		return nil, context.Canceled
	}
	return a.Addresses.Allocate(ctx, req)
}

func TestIntentsAreRecordedBeforeAllocatingAndDeletedLast(t *testing.T) {
	r := enginetest.NewRig()
	checking := &intentChecking{Addresses: r.Addresses, intents: r.Intents}
	r.Engine = engineWith(r, checking)
	a := vlan100("eth1")
	a.Way = plan.Chained
	if _, err := r.Engine.Attach(t.Context(), sandbox, []plan.Attachment{a}); err != nil {
		t.Fatalf("Attach() = %v", err)
	}
	if left := r.World.Leftovers(); strings.Contains(left, "intent") {
		t.Errorf("intent left after a committed ADD: %s", left)
	}
	if port := r.World.Ports[veth.HostName(sandbox.ContainerID, "eth1")]; port.Owner.Way != "chained" {
		t.Errorf("port records way %q, want chained", port.Owner.Way)
	}

	// No intent, no allocation: an unwritable OVSDB fails the ADD before anything is made.
	r = enginetest.NewRig()
	r.Intents.RecordErr = enginetest.ErrInjected
	if _, err := r.Engine.Attach(t.Context(), sandbox, []plan.Attachment{a}); err == nil {
		t.Fatal("Attach() succeeded without an intent")
	}
	if left := r.World.Leftovers(); left != "" {
		t.Errorf("left behind: %s", left)
	}
}

// crashed puts in the World what an agent killed in the middle of an ADD leaves.
func crashed(r *enginetest.Rig, in ovs.Intent, link, port bool, recorded bool) {
	host := veth.HostName(in.ContainerID, in.IfName)
	r.World.Intents[in.Key()] = in
	r.World.Allocs[in.ContainerID+"/"+in.IfName] = []ipam.IPConfig{{Address: netip.MustParsePrefix("10.1.0.5/24")}}
	if link {
		r.World.Links[host] = true
	}
	if port {
		p := ovs.PodPort{Name: host, OFPort: 3, Owner: ovs.PortOwner{ContainerID: in.ContainerID, IfName: in.IfName, Network: in.Network, Way: in.Way}}
		if recorded {
			p.Owner.Addresses = []string{"10.1.0.5/24"}
		}
		r.World.Ports[host] = p
	}
}

func TestAbandon(t *testing.T) {
	chained := ovs.Intent{ContainerID: "c1", IfName: "eth1", PodNamespace: "ns", PodName: "pod", NetNS: "/var/run/netns/gone",
		Network: "ns/vlan100", Pools: []string{"pool100"}, WantsAddresses: true, Way: ovs.WayChained}
	ipamOnly := ovs.Intent{ContainerID: "c1", IfName: "eth0", Network: "mv", Pools: []string{"pool100"}, WantsAddresses: true,
		Way: ovs.WayIPAMOnly, Committed: true}
	host := veth.HostName("c1", "eth1")
	tests := []struct {
		name      string
		intent    ovs.Intent
		link      bool
		port      bool
		recorded  bool
		wantLeft  string
		wantNoop  bool // the intent changed meanwhile: nothing is touched
		judgeAsIs func(ovs.Intent) ovs.Intent
	}{
		{name: "killed between intent and allocation: the allocation (if any) goes", intent: chained},
		{name: "killed between allocation and port: veth and allocation go", intent: chained, link: true},
		{name: "killed after the port, before its record: port, veth and allocation go", intent: chained, link: true, port: true},
		{name: "killed after the record, before deleting the intent: only the intent goes", intent: chained, link: true, port: true, recorded: true,
			wantLeft: "allocation c1/eth1, link " + host + ", port " + host},
		{name: "an IPAM-only attachment of a vanished sandbox: the allocation goes", intent: ipamOnly},
		{name: "an IPAM-only ADD that committed meanwhile is left alone", intent: ipamOnly, wantNoop: true,
			judgeAsIs: func(in ovs.Intent) ovs.Intent { in.Committed = false; return in }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := enginetest.NewRig()
			crashed(r, tt.intent, tt.link, tt.port, tt.recorded)
			before := r.World.Leftovers()
			judged := tt.intent
			if tt.judgeAsIs != nil {
				judged = tt.judgeAsIs(judged)
			}
			if err := r.Engine.Abandon(t.Context(), judged); err != nil {
				t.Fatalf("Abandon() = %v", err)
			}
			want := tt.wantLeft
			if tt.wantNoop {
				want = before
			}
			if left := r.World.Leftovers(); left != want {
				t.Errorf("left %q, want %q", left, want)
			}
		})
	}
}

func TestGCTouchesOnlyItsWayInAndNetwork(t *testing.T) {
	r := enginetest.NewRig()
	chained := vlan100("eth1")
	chained.Way = plan.Chained
	delegate := plan.Attachment{Network: "vlan100", IfName: "net1", VLAN: 100, Pools: []string{"pool100"}, Way: plan.Delegate}
	otherDelegate := plan.Attachment{Network: "vlan200", IfName: "net2", VLAN: 200, Way: plan.Delegate}
	ipamOnly := plan.Attachment{Network: "mv", IfName: "eth0", Pools: []string{"pool100"}, Way: plan.IPAMOnly}
	sb := func(id string) plan.Sandbox { s := sandbox; s.ContainerID = id; return s }
	for _, id := range []string{"a", "b"} {
		if _, err := r.Engine.Attach(t.Context(), sb(id), []plan.Attachment{chained}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Engine.Attach(t.Context(), sb(id), []plan.Attachment{delegate}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Engine.Attach(t.Context(), sb(id), []plan.Attachment{otherDelegate}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Engine.Allocate(t.Context(), sb(id), ipamOnly); err != nil {
			t.Fatal(err)
		}
	}
	keepA := func(containerID, _ string) bool { return containerID == "a" }
	all := r.World.Leftovers()
	count := func() map[string]int {
		m := map[string]int{}
		for _, item := range strings.Split(r.World.Leftovers(), ", ") {
			m[strings.Fields(item)[0]]++
		}
		return m
	}
	start := count()

	removed, err := r.Engine.GC(t.Context(), plan.IPAMOnly, "mv", keepA)
	if err != nil || !slices.Equal(removed, []string{"b/eth0"}) {
		t.Fatalf("IPAM-only GC removed %v, %v; want b/eth0", removed, err)
	}
	if got := count(); got["port"] != start["port"] || got["link"] != start["link"] || got["allocation"] != start["allocation"]-1 {
		t.Errorf("IPAM-only GC touched ports or links: before %v after %v (%s)", start, got, all)
	}

	removed, err = r.Engine.GC(t.Context(), plan.Delegate, "vlan100", keepA)
	if err != nil || !slices.Equal(removed, []string{"b/net1"}) {
		t.Fatalf("delegate GC removed %v, %v; want b/net1", removed, err)
	}
	if left := r.World.Leftovers(); !strings.Contains(left, veth.HostName("b", "net2")) || !strings.Contains(left, veth.HostName("b", "eth1")) {
		t.Errorf("delegate GC of vlan100 removed another network's or the chained port: %s", left)
	}

	removed, err = r.Engine.GC(t.Context(), plan.Chained, "k8s-pod-network", keepA)
	if err != nil || !slices.Equal(removed, []string{"b"}) {
		t.Fatalf("chained GC removed %v, %v; want b", removed, err)
	}
	if left := r.World.Leftovers(); strings.Contains(left, veth.HostName("b", "eth1")) || !strings.Contains(left, veth.HostName("b", "net2")) {
		t.Errorf("chained GC: left %s; want b's chained port gone and its delegate port kept", left)
	}
}

func TestDELAfterAKilledADDLeavesNoIntent(t *testing.T) {
	r := enginetest.NewRig()
	in := ovs.Intent{ContainerID: "c1", IfName: "eth1", Network: "ns/vlan100", Pools: []string{"pool100"}, WantsAddresses: true, Way: ovs.WayChained}
	crashed(r, in, true, true, false)
	if err := r.Engine.Detach(t.Context(), plan.Sandbox{ContainerID: "c1", NetNS: "/var/run/netns/pod"}); err != nil {
		t.Fatal(err)
	}
	if left := r.World.Leftovers(); left != "" {
		t.Errorf("left after DEL: %s", left)
	}
}
