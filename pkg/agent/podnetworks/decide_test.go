package podnetworks

import (
	"errors"
	"reflect"
	"testing"

	"github.com/podvlan/podvlan/pkg/agent/plan"
)

func want(network, ifName string) Wanted {
	return Wanted{Identity: Identity{network, ifName}, Network: &plan.Attachment{Network: network, IfName: ifName}}
}

func wantMissing(network, ifName string) Wanted {
	return Wanted{Identity: Identity{network, ifName}, Err: WithReason(ReasonNADNotFound, errors.New("not found"))}
}

func wantForeign(network, ifName string) Wanted {
	return Wanted{Identity: Identity{network, ifName}, Foreign: true}
}

func have(network, ifName string) Current {
	return Current{Identity: Identity{network, ifName}, Port: "p-" + ifName, Status: "{}"}
}

// brief is a decision reduced to identities, for comparing.
type brief struct {
	Keep, Detach, Attach, Pending []Identity
	AllOrNothing                  bool
	Refused                       *Change
}

func briefOf(d Decision) brief {
	ids := func(ws []Wanted) []Identity {
		var out []Identity
		for _, w := range ws {
			out = append(out, w.Identity)
		}
		return out
	}
	var b brief
	for _, c := range d.Keep {
		b.Keep = append(b.Keep, c.Identity)
	}
	for _, c := range d.Detach {
		b.Detach = append(b.Detach, c.Identity)
	}
	b.Attach, b.Pending, b.AllOrNothing, b.Refused = ids(d.Attach), ids(d.Pending), d.AllOrNothing, d.Refused
	return b
}

func TestDecide(t *testing.T) {
	v100 := Identity{"ns/vlan100", "eth1"}
	v200 := Identity{"networks/vlan200", "net2"}
	tests := []struct {
		name    string
		wanted  []Wanted
		current []Current
		hotplug bool
		want    brief
	}{
		{
			name:   "first annotation of a running Pod is attached with hot-plug off, all or nothing",
			wanted: []Wanted{want("ns/vlan100", "eth1"), want("networks/vlan200", "net2")},
			want:   brief{Attach: []Identity{v100, v200}, AllOrNothing: true},
		},
		{
			name:   "first annotation with a missing network attaches nothing with hot-plug off",
			wanted: []Wanted{want("ns/vlan100", "eth1"), wantMissing("networks/vlan200", "net2")},
			want:   brief{Pending: []Identity{v100, v200}, AllOrNothing: true},
		},
		{
			name:    "first annotation with a missing network attaches the others with hot-plug on",
			wanted:  []Wanted{want("ns/vlan100", "eth1"), wantMissing("networks/vlan200", "net2")},
			hotplug: true,
			want:    brief{Attach: []Identity{v100}, Pending: []Identity{v200}},
		},
		{
			name:    "an unchanged annotation changes nothing",
			wanted:  []Wanted{want("ns/vlan100", "eth1")},
			current: []Current{have("ns/vlan100", "eth1")},
			want:    brief{Keep: []Identity{v100}},
		},
		{
			name:    "an entry kept whose NetworkAttachmentDefinition is gone is still kept",
			wanted:  []Wanted{wantMissing("ns/vlan100", "eth1")},
			current: []Current{have("ns/vlan100", "eth1")},
			want:    brief{Keep: []Identity{v100}},
		},
		{
			name:    "hot-plug attaches an added entry and keeps the others",
			wanted:  []Wanted{want("ns/vlan100", "eth1"), want("networks/vlan200", "net2")},
			current: []Current{have("ns/vlan100", "eth1")},
			hotplug: true,
			want:    brief{Keep: []Identity{v100}, Attach: []Identity{v200}},
		},
		{
			name:    "hot-plug detaches a removed entry",
			wanted:  []Wanted{want("ns/vlan100", "eth1")},
			current: []Current{have("ns/vlan100", "eth1"), have("networks/vlan200", "net2")},
			hotplug: true,
			want:    brief{Keep: []Identity{v100}, Detach: []Identity{v200}},
		},
		{
			name:    "hot-plug detaches everything when the annotation is removed",
			current: []Current{have("ns/vlan100", "eth1"), have("networks/vlan200", "net2")},
			hotplug: true,
			want:    brief{Detach: []Identity{v100, v200}},
		},
		{
			name:    "hot-plug replaces an interface given to another network",
			wanted:  []Wanted{want("networks/vlan200", "eth1")},
			current: []Current{have("ns/vlan100", "eth1")},
			hotplug: true,
			want:    brief{Detach: []Identity{v100}, Attach: []Identity{{"networks/vlan200", "eth1"}}},
		},
		{
			name:    "hot-plug keeps retrying an added entry whose network is missing",
			wanted:  []Wanted{want("ns/vlan100", "eth1"), wantMissing("networks/vlan200", "net2")},
			current: []Current{have("ns/vlan100", "eth1")},
			hotplug: true,
			want:    brief{Keep: []Identity{v100}, Pending: []Identity{v200}},
		},
		{
			name:    "without hot-plug an added entry is refused",
			wanted:  []Wanted{want("ns/vlan100", "eth1"), want("networks/vlan200", "net2")},
			current: []Current{have("ns/vlan100", "eth1")},
			want:    brief{Keep: []Identity{v100}, Refused: &Change{Add: []Identity{v200}}},
		},
		{
			name:    "without hot-plug the annotation's removal is refused",
			current: []Current{have("ns/vlan100", "eth1")},
			want:    brief{Keep: []Identity{v100}, Refused: &Change{Remove: []Identity{v100}}},
		},
		{
			name:    "without hot-plug a replaced entry is refused both ways",
			wanted:  []Wanted{want("networks/vlan200", "net2")},
			current: []Current{have("ns/vlan100", "eth1")},
			want:    brief{Keep: []Identity{v100}, Refused: &Change{Add: []Identity{v200}, Remove: []Identity{v100}}},
		},
		{
			name:    "another plugin's entry added is no change of ours",
			wanted:  []Wanted{want("ns/vlan100", "eth1"), wantForeign("ns/macvlan", "eth2")},
			current: []Current{have("ns/vlan100", "eth1")},
			want:    brief{Keep: []Identity{v100}},
		},
		{
			name:   "another plugin's entries alone ask for nothing",
			wanted: []Wanted{wantForeign("ns/macvlan", "eth1")},
			want:   brief{AllOrNothing: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.wanted, tt.current, tt.hotplug)
			if got := briefOf(d); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide() = %+v, want %+v", got, tt.want)
			}
			if d.Changes() != (tt.want.Refused == nil && (len(tt.want.Attach) > 0 || len(tt.want.Detach) > 0)) {
				t.Errorf("Changes() = %v", d.Changes())
			}
		})
	}
}

func TestChangeString(t *testing.T) {
	c := Change{Add: []Identity{{"networks/vlan200", "net2"}}, Remove: []Identity{{"ns/vlan100", "eth1"}, {"ns/x", "eth3"}}}
	want := "add net2 (networks/vlan200); remove eth1 (ns/vlan100), eth3 (ns/x)"
	if got := c.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
