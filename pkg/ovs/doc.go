// Package ovs is everything the agent does to Open vSwitch: it keeps the secondary bridge and its
// uplinks in shape and creates, lists and deletes the access ports of Pod interfaces.
//
// It talks OVSDB through one long-lived libovsdb client whose monitor cache mirrors the
// Open_vSwitch, Bridge, Port and Interface tables; reads come from that cache and every change is
// a single transaction built from the typed models in pkg/ovs/vswitchd. It never runs ovs-vsctl.
//
// A committed transaction only means ovsdb-server stored the rows: ovs-vswitchd may still fail to
// realise them (a missing device, an unsupported datapath type). So every change also bumps
// Open_vSwitch.next_cfg, waits until vswitchd reports that configuration as applied (cur_cfg), and
// then reads vswitchd's verdict from the rows themselves (ofport, error).
//
// Rows this package creates carry external_ids that mark them as ours (podvlan-owner) and, for
// Pod ports, record the owning Pod, so that the agent can reconcile after a restart without any
// state of its own.
package ovs
