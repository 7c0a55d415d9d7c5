package podnetworks

import (
	"fmt"
	"slices"
	"strings"

	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/cni/selection"
)

// Identity is what makes two attachments the same: the network ("namespace/name" of its
// NetworkAttachmentDefinition) and the interface name inside the Pod. An annotation entry whose
// identity the sandbox already has is never touched, whatever else changed about it (its MAC, its
// static addresses, the NetworkAttachmentDefinition's VLAN): re-plugging would cut the Pod's
// sessions on that interface, and the user did not ask for that interface to change.
type Identity struct {
	Network string
	IfName  string
}

// String is "eth1 (ns/vlan100)", for messages.
func (i Identity) String() string { return fmt.Sprintf("%s (%s)", i.IfName, i.Network) }

// Current is one attachment the Pod's sandbox has now, read from its OVS port.
type Current struct {
	Identity
	// Port is the OVS port, which is also the host end of the veth.
	Port string
	// Addresses are the Pod end's addresses the port records (CIDR notation).
	Addresses []string
	// Status is the network-status entry (JSON) the port records once the attachment is
	// complete (the chained way in and this controller record one); empty on the port of an
	// attachment that never finished.
	Status string
}

// Wanted is one element of the Pod's annotation, with what resolving it gave.
type Wanted struct {
	Identity
	Element selection.Element
	// Foreign is true when the NetworkAttachmentDefinition exists and belongs to another CNI
	// plugin: Multus attaches it, never this agent.
	Foreign bool
	// Network is the planned attachment when Err is nil and the network is ours.
	Network *plan.Attachment
	// Err says why the element cannot be attached now (its NetworkAttachmentDefinition or IPPool
	// is missing, its configuration is invalid, ...); it carries a condition reason.
	Err error
}

// Decision is what the controller does to one Pod's sandbox.
type Decision struct {
	// Keep are the current attachments the annotation still asks for; they are not touched.
	Keep []Current
	// Detach are the current attachments the annotation no longer asks for.
	Detach []Current
	// Attach are the annotation's entries of this agent that the sandbox lacks; Pending are
	// those of them that cannot be attached now (Err set), to be retried.
	Attach  []Wanted
	Pending []Wanted
	// AllOrNothing says the entries are attached in one step that fails as a whole: the first
	// attachment with hot-plug off, so that a network added later is never mistaken for a
	// change that the gate refuses.
	AllOrNothing bool
	// Refused is set when the annotation asks for a change the gate does not allow: what
	// would have been attached and detached. Nothing is done then.
	Refused *Change
}

// Change lists the differences between the annotation and the sandbox.
type Change struct {
	Add    []Identity
	Remove []Identity
}

// String is "add eth2 (ns/vlan200); remove eth1 (ns/vlan100)".
func (c Change) String() string {
	var parts []string
	if len(c.Add) > 0 {
		parts = append(parts, "add "+joinIdentities(c.Add))
	}
	if len(c.Remove) > 0 {
		parts = append(parts, "remove "+joinIdentities(c.Remove))
	}
	return strings.Join(parts, "; ")
}

func joinIdentities(ids []Identity) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return strings.Join(s, ", ")
}

// Changes reports whether the decision does anything to the sandbox.
func (d Decision) Changes() bool {
	return d.Refused == nil && (len(d.Detach) > 0 || len(d.Attach) > 0)
}

// Decide compares what the annotation asks for with what the Pod's current sandbox has.
//
//   - The sandbox has none of this agent's attachments yet: every entry of ours is attached, the
//     seed's "first time" rule, whatever the gates say. With hot-plug off it is all or nothing.
//   - Otherwise, with hot-plug on: attachments whose identity left the annotation are detached,
//     entries whose identity is new are attached, and the rest is kept as it is.
//   - Otherwise (hot-plug off) any difference is refused and nothing changes.
//
// Entries of other plugins (Foreign) are never this agent's business.
func Decide(wanted []Wanted, current []Current, hotplug bool) Decision {
	var d Decision
	wantedIDs := make(map[Identity]bool, len(wanted))
	for _, w := range wanted {
		wantedIDs[w.Identity] = true
	}
	currentIDs := make(map[Identity]bool, len(current))
	for _, c := range current {
		currentIDs[c.Identity] = true
		if wantedIDs[c.Identity] {
			d.Keep = append(d.Keep, c)
		} else {
			d.Detach = append(d.Detach, c)
		}
	}
	for _, w := range wanted {
		if currentIDs[w.Identity] || w.Foreign {
			continue
		}
		d.Attach = append(d.Attach, w)
	}
	first := len(current) == 0
	if !hotplug && !first && (len(d.Detach) > 0 || len(d.Attach) > 0) {
		change := &Change{}
		for _, w := range d.Attach {
			change.Add = append(change.Add, w.Identity)
		}
		for _, c := range d.Detach {
			change.Remove = append(change.Remove, c.Identity)
		}
		return Decision{Keep: current, Refused: change}
	}
	d.AllOrNothing = first && !hotplug
	ready := d.Attach[:0:0]
	for _, w := range d.Attach {
		if w.Err != nil {
			d.Pending = append(d.Pending, w)
		} else {
			ready = append(ready, w)
		}
	}
	if d.AllOrNothing && len(d.Pending) > 0 {
		// Nothing is attached until every entry can be.
		d.Pending = slices.Clone(d.Attach)
		ready = nil
	}
	d.Attach = ready
	return d
}
