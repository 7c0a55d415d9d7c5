package podnetworks

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/podvlan/podvlan/pkg/agent/engine/enginetest"
	"github.com/podvlan/podvlan/pkg/ovs"
)

// rigFixture is the controller over the real engine, whose kernel, ports and allocator are the
// engine's fakes sharing one World: what the controller leaves behind shows there.
func rigFixture(t *testing.T, hotplug bool) (*fixture, *enginetest.Rig) {
	f := newFixture(t, hotplug)
	rig := enginetest.NewRig()
	f.c.o.Attacher = rig.Engine
	f.c.o.Attachments = &PortAttachments{Ports: rig.Ports, Bridge: "br-sec"}
	return f, rig
}

func portsOf(rig *enginetest.Rig) []string {
	var out []string
	for _, p := range rig.World.Ports {
		out = append(out, p.Owner.IfName)
	}
	slices.Sort(out)
	return out
}

func TestHotplugOverTheEngineLeavesNothingBehind(t *testing.T) {
	f, rig := rigFixture(t, true)
	f.runningPod("vlan100")
	f.sync()
	f.wantCondition(corev1.ConditionTrue, ReasonAttached)
	if got := portsOf(rig); !reflect.DeepEqual(got, []string{"eth1"}) {
		t.Fatalf("ports = %v", got)
	}
	eth1 := rig.World.Ports[firstPort(rig, "eth1")]

	f.annotate("vlan100,networks/vlan200@net2")
	f.sync()
	if got := portsOf(rig); !reflect.DeepEqual(got, []string{"eth1", "net2"}) {
		t.Fatalf("ports = %v", got)
	}
	if again := rig.World.Ports[firstPort(rig, "eth1")]; !reflect.DeepEqual(again, eth1) {
		t.Errorf("eth1's port changed while net2 was added: %+v -> %+v", eth1, again)
	}

	f.annotate("vlan100")
	f.sync()
	if got := portsOf(rig); !reflect.DeepEqual(got, []string{"eth1"}) {
		t.Fatalf("ports after removing net2 = %v", got)
	}
	if left := rig.World.Leftovers(); strings.Contains(left, "net2") {
		t.Errorf("net2 left: %s", left)
	}

	f.annotate("")
	f.sync()
	if left := rig.World.Leftovers(); left != "" {
		t.Errorf("the annotation removed, left: %s", left)
	}
	f.wantCondition(corev1.ConditionTrue, ReasonNoNetworks)
}

func TestAnAttachCutShortIsMadeAgain(t *testing.T) {
	f, rig := rigFixture(t, false)
	f.runningPod("vlan100")
	f.sync()
	// As if the agent had stopped after making the port and before recording the attachment.
	name := firstPort(rig, "eth1")
	p := rig.World.Ports[name]
	p.NetworkStatus = ""
	rig.World.Ports[name] = p
	f.sync()
	again, ok := rig.World.Ports[name]
	if !ok || again.NetworkStatus == "" {
		t.Fatalf("port %s after the sync: %+v, want it made again with its record", name, again)
	}
	if !slices.Contains(rig.World.Log, "delete port "+name) {
		t.Errorf("the unfinished port was not removed first: log %v", rig.World.Log)
	}
	if left := rig.World.Leftovers(); strings.Count(left, "allocation") != 1 {
		t.Errorf("allocations: %s, want one", left)
	}
}

func firstPort(rig *enginetest.Rig, ifName string) string {
	var found ovs.PodPort
	for _, p := range rig.World.Ports {
		if p.Owner.IfName == ifName {
			found = p
		}
	}
	return found.Name
}
