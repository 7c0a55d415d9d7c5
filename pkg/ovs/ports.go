package ovs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/ovs/vswitchd"
)

// MaxVLAN is the highest VLAN ID an access port takes; 0 means untagged.
const MaxVLAN = 4094

// PortSpec is the access port of one Pod interface.
type PortSpec struct {
	Bridge string
	Name   string // the host-side veth, which must exist in vswitchd's network namespace
	VLAN   uint16 // 0 (untagged) .. MaxVLAN
	Owner  PortOwner
}

// Validate reports a malformed spec.
func (s PortSpec) Validate() error {
	var errs []error
	if err := validateInterfaceName(s.Bridge); err != nil {
		errs = append(errs, fmt.Errorf("bridge: %w", err))
	}
	if err := validateInterfaceName(s.Name); err != nil {
		errs = append(errs, fmt.Errorf("port: %w", err))
	}
	if s.Name == s.Bridge {
		errs = append(errs, fmt.Errorf("port %s has the bridge's name", s.Name))
	}
	if s.VLAN > MaxVLAN {
		errs = append(errs, fmt.Errorf("VLAN %d out of range 0..%d", s.VLAN, MaxVLAN))
	}
	if err := s.Owner.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("owner: %w", err))
	}
	return errors.Join(errs...)
}

// PodPort is one of our Pod access ports as OVSDB and vswitchd describe it.
type PodPort struct {
	Name   string
	Bridge string
	OFPort int // 0 while vswitchd has not (or could not) add it
	VLAN   uint16
	Owner  PortOwner
	Error  string // vswitchd's error column of the interface, if any
	// NetworkStatus is the network-status entry recorded by SetPortRecord (JSON), if any.
	NetworkStatus string
}

// PortConflictError means a port of the requested name exists but is not the requested one:
// another owner's, another VLAN, another bridge, or not ours at all.
type PortConflictError struct {
	Name   string
	Reason string
}

// Error implements error.
func (e *PortConflictError) Error() string {
	return fmt.Sprintf("port %s already exists: %s", e.Name, e.Reason)
}

// PortNotReadyError means vswitchd did not give the port's interface an OpenFlow port number;
// Reason carries vswitchd's error text when it left one.
type PortNotReadyError struct {
	Name   string
	Reason string
}

// Error implements error.
func (e *PortNotReadyError) Error() string {
	return fmt.Sprintf("port %s not ready: %s", e.Name, e.Reason)
}

// CreateAccessPort adds the host-side veth spec.Name to the bridge as an access port of spec.VLAN
// (tag and vlan_mode=access, also for VLAN 0, so that the Pod cannot send tagged frames) whose
// external_ids record the owner, all in one transaction. It returns once vswitchd has given the
// interface an OpenFlow port number; when vswitchd rejects it, or does not get there within the
// ready timeout or ctx, it removes the port again and returns a *PortNotReadyError with
// vswitchd's error text.
//
// It is idempotent: an identical existing port (same bridge, VLAN and owner) is success; a port
// of that name that differs is a *PortConflictError.
func (c *Client) CreateAccessPort(ctx context.Context, spec PortSpec) (PodPort, error) {
	var port PodPort
	err := c.retryOnStaleCache(ctx, func() error {
		var err error
		port, err = c.createAccessPort(ctx, spec)
		return err
	})
	return port, err
}

func (c *Client) createAccessPort(ctx context.Context, spec PortSpec) (PodPort, error) {
	if err := spec.Validate(); err != nil {
		return PodPort{}, fmt.Errorf("create port %s: %w", spec.Name, err)
	}
	if err := c.checkConnected(); err != nil {
		return PodPort{}, fmt.Errorf("create port %s: %w", spec.Name, err)
	}
	existing, err := c.podPortByName(ctx, spec.Name)
	if err != nil {
		return PodPort{}, fmt.Errorf("create port %s: %w", spec.Name, err)
	}
	if existing != nil {
		if err := sameAccessPort(spec, existing); err != nil {
			return PodPort{}, err
		}
		if !slices.Equal(existing.Owner.Addresses, spec.Owner.Addresses) || !slices.Equal(existing.Owner.Gateways, spec.Owner.Gateways) {
			ids := map[string]string{AddressesKey: strings.Join(spec.Owner.Addresses, ","), GatewaysKey: strings.Join(spec.Owner.Gateways, ",")}
			if err := c.setExternalIDs(ctx, spec.Name, ids); err != nil {
				return PodPort{}, fmt.Errorf("create port %s: existing port: %w", spec.Name, err)
			}
		}
		ready, err := c.waitPortReady(ctx, spec.Name, nil)
		if err != nil {
			return PodPort{}, fmt.Errorf("create port %s: existing port: %w", spec.Name, err)
		}
		return ready, nil
	}
	br, err := c.bridgeByName(ctx, spec.Bridge)
	if err != nil {
		return PodPort{}, fmt.Errorf("create port %s: %w", spec.Name, err)
	}
	ovsRow, err := c.openvSwitchRow(ctx)
	if err != nil {
		return PodPort{}, fmt.Errorf("create port %s: %w", spec.Name, err)
	}
	ops, err := c.accessPortOps(br, spec)
	if err != nil {
		return PodPort{}, fmt.Errorf("create port %s: %w", spec.Name, err)
	}
	bump, err := c.bumpConfigOps(ovsRow)
	if err != nil {
		return PodPort{}, fmt.Errorf("create port %s: %w", spec.Name, err)
	}
	results, err := c.transact(ctx, append(ops, bump...))
	if err != nil {
		return PodPort{}, fmt.Errorf("create port %s: %w", spec.Name, err)
	}
	target, err := configTarget(results)
	if err != nil {
		return PodPort{}, fmt.Errorf("create port %s: %w", spec.Name, err)
	}
	ready, err := c.waitPortReady(ctx, spec.Name, &target)
	if err != nil {
		rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		if rbErr := c.removePorts(rbCtx, []string{spec.Name}); rbErr != nil {
			klog.ErrorS(rbErr, "Could not remove the port vswitchd did not bring up", "port", spec.Name,
				"pod", klog.KRef(spec.Owner.PodNamespace, spec.Owner.PodName))
		}
		return PodPort{}, fmt.Errorf("create port %s: %w", spec.Name, err)
	}
	klog.V(2).InfoS("Created access port", "port", spec.Name, "bridge", spec.Bridge, "vlan", spec.VLAN,
		"ofport", ready.OFPort, "pod", klog.KRef(spec.Owner.PodNamespace, spec.Owner.PodName),
		"interface", spec.Owner.IfName, "network", spec.Owner.Network)
	return ready, nil
}

func (c *Client) accessPortOps(br *vswitchd.Bridge, spec PortSpec) ([]ovsdb.Operation, error) {
	tag := int(spec.VLAN)
	access := vswitchd.PortVLANModeAccess
	iface := &vswitchd.Interface{UUID: "newiface", Name: spec.Name}
	port := &vswitchd.Port{
		UUID:        "newport",
		Name:        spec.Name,
		Interfaces:  []string{iface.UUID},
		Tag:         &tag,
		VLANMode:    &access,
		ExternalIDs: spec.Owner.externalIDs(),
	}
	ops, err := c.insertOps(iface, port)
	if err != nil {
		return nil, err
	}
	attach, err := c.db.Where(br).Mutate(br, model.Mutation{
		Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{port.UUID},
	})
	if err != nil {
		return nil, fmt.Errorf("build bridge ports mutation: %w", err)
	}
	return append(ops, attach...), nil
}

// sameAccessPort decides whether an existing port is the one spec asks for. A port that records
// no addresses yet is the one asked for with addresses: the attach that made it was interrupted
// before it could record them.
func sameAccessPort(spec PortSpec, existing *PodPort) error {
	owner := existing.Owner
	if len(owner.Addresses) == 0 {
		owner.Addresses, owner.Gateways = spec.Owner.Addresses, spec.Owner.Gateways
	}
	if owner.Way == "" {
		owner.Way = spec.Owner.Way // a port made before ports recorded their way in
	}
	switch {
	case !owner.Equal(spec.Owner):
		return &PortConflictError{Name: spec.Name, Reason: "it belongs to " + existing.Owner.String()}
	case existing.Bridge != spec.Bridge:
		return &PortConflictError{Name: spec.Name, Reason: "it is on bridge " + existing.Bridge}
	case existing.VLAN != spec.VLAN:
		return &PortConflictError{Name: spec.Name, Reason: fmt.Sprintf("it is an access port of VLAN %d", existing.VLAN)}
	}
	return nil
}

// PortRecord is what a port records of the Pod interface behind it, besides its owner.
type PortRecord struct {
	// Addresses are the interface's addresses in CIDR notation.
	Addresses []string
	// Gateways are the gateways of the addresses, at most one per family.
	Gateways []string
	// NetworkStatus is the interface's k8s.v1.cni.cncf.io/network-status entry (JSON), for the
	// agent to write the annotation again if it was lost; empty when the agent does not write one.
	NetworkStatus string
}

// SetPortRecord records the addresses, gateways and the network-status entry of the Pod
// interface behind one of our ports in its external_ids (empty values remove them). It does not
// wait for ovs-vswitchd, which has nothing to apply: the attach engine adds the port while the
// addresses are still being allocated, and records them once they are.
func (c *Client) SetPortRecord(ctx context.Context, name string, rec PortRecord) error {
	if err := errors.Join(validateAddresses(rec.Addresses), validateGateways(rec.Gateways)); err != nil {
		return fmt.Errorf("record on port %s: %w", name, err)
	}
	if err := c.checkConnected(); err != nil {
		return fmt.Errorf("record on port %s: %w", name, err)
	}
	ids := map[string]string{AddressesKey: strings.Join(rec.Addresses, ","), GatewaysKey: strings.Join(rec.Gateways, ","),
		NetworkStatusKey: rec.NetworkStatus}
	if err := c.retryOnStaleCache(ctx, func() error { return c.setExternalIDs(ctx, name, ids) }); err != nil {
		return fmt.Errorf("record on port %s: %w", name, err)
	}
	return nil
}

// setExternalIDs sets keys of one of our Pod ports' external_ids; an empty value removes the key.
func (c *Client) setExternalIDs(ctx context.Context, name string, ids map[string]string) error {
	port := &vswitchd.Port{Name: name}
	if err := c.db.Get(ctx, port); err != nil {
		return fmt.Errorf("find port: %w", err)
	}
	if _, ok := ownerFromExternalIDs(port.ExternalIDs); !ok {
		return &PortConflictError{Name: name, Reason: "it is not a Pod port of this agent"}
	}
	keys := slices.Sorted(maps.Keys(ids))
	set := map[string]string{}
	for _, k := range keys {
		if ids[k] != "" {
			set[k] = ids[k]
		}
	}
	mutations := []model.Mutation{{Field: &port.ExternalIDs, Mutator: ovsdb.MutateOperationDelete, Value: keys}}
	if len(set) > 0 {
		mutations = append(mutations, model.Mutation{Field: &port.ExternalIDs, Mutator: ovsdb.MutateOperationInsert, Value: set})
	}
	ops, err := c.db.Where(port).Mutate(port, mutations...)
	if err != nil {
		return fmt.Errorf("build external_ids mutation: %w", err)
	}
	_, err = c.transact(ctx, ops)
	return err
}

// waitPortReady waits until the interface has an OpenFlow port number. With a target, it fails
// as soon as vswitchd has applied that configuration and rejected the interface, instead of
// waiting for the deadline.
func (c *Client) waitPortReady(ctx context.Context, name string, target *int) (PodPort, error) {
	if target == nil {
		// Let vswitchd confirm once more, so that a rejected existing port fails fast too.
		ovsRow, err := c.openvSwitchRow(ctx)
		if err != nil {
			return PodPort{}, err
		}
		bump, err := c.bumpConfigOps(ovsRow)
		if err != nil {
			return PodPort{}, err
		}
		results, err := c.transact(ctx, bump)
		if err != nil {
			return PodPort{}, err
		}
		t, err := configTarget(results)
		if err != nil {
			return PodPort{}, err
		}
		target = &t
	}
	waitCtx, cancel := c.readyContext(ctx)
	defer cancel()
	var last *vswitchd.Interface
	err := c.waitUntil(waitCtx, func() (bool, error) {
		ovsRow, err := c.openvSwitchRow(waitCtx)
		if err != nil {
			return false, err
		}
		iface := &vswitchd.Interface{Name: name}
		switch err := c.db.Get(waitCtx, iface); {
		case errors.Is(err, client.ErrNotFound):
			// The transaction's update may not have reached the cache yet.
			if ovsRow.CurCfg >= *target {
				return false, &PortNotReadyError{Name: name, Reason: "the port vanished from OVSDB"}
			}
			return false, nil
		case err != nil:
			return false, err
		}
		last = iface
		return judgePort(name, iface, ovsRow.CurCfg >= *target)
	})
	if err != nil {
		var notReady *PortNotReadyError
		if errors.As(err, &notReady) || errors.Is(err, ErrNotConnected) || waitCtx.Err() == nil {
			return PodPort{}, err
		}
		reason := "ovs-vswitchd gave it no OpenFlow port number in time"
		if last != nil && last.Error != nil && *last.Error != "" {
			reason += ": " + *last.Error
		} else {
			reason += " (is ovs-vswitchd running?)"
		}
		return PodPort{}, &PortNotReadyError{Name: name, Reason: reason}
	}
	port, err := c.podPortByName(ctx, name)
	if err != nil {
		return PodPort{}, err
	}
	if port == nil {
		return PodPort{}, &PortNotReadyError{Name: name, Reason: "the port vanished from OVSDB"}
	}
	return *port, nil
}

// judgePort reads vswitchd's verdict on an interface: ready once it has an OpenFlow port
// number; failed when vswitchd, having applied our configuration (applied), left ofport -1 or an
// error.
func judgePort(name string, iface *vswitchd.Interface, applied bool) (bool, error) {
	if iface.Ofport != nil && *iface.Ofport > 0 {
		return true, nil
	}
	if !applied {
		return false, nil
	}
	if iface.Error != nil && *iface.Error != "" {
		return false, &PortNotReadyError{Name: name, Reason: "ovs-vswitchd: " + *iface.Error}
	}
	if iface.Ofport != nil && *iface.Ofport == -1 {
		return false, &PortNotReadyError{Name: name, Reason: "ovs-vswitchd could not add it (ofport -1, see its log)"}
	}
	return false, nil
}

// DeletePort removes one of our ports, with its interface, from whichever bridge holds it. A port
// that does not exist is success; a port we did not create is refused.
func (c *Client) DeletePort(ctx context.Context, name string) error {
	if err := c.checkConnected(); err != nil {
		return fmt.Errorf("delete port %s: %w", name, err)
	}
	port := &vswitchd.Port{Name: name}
	switch err := c.db.Get(ctx, port); {
	case errors.Is(err, client.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("delete port %s: look up: %w", name, err)
	}
	if !isOurs(port.ExternalIDs, RolePod) {
		return fmt.Errorf("delete port %s: not a Pod port managed by podvlan", name)
	}
	if err := c.removePorts(ctx, []string{name}); err != nil {
		return fmt.Errorf("delete port %s: %w", name, err)
	}
	klog.V(2).InfoS("Deleted access port", "port", name)
	return nil
}

// ListPodPorts returns our Pod ports on bridge (on every bridge when empty), sorted by name.
func (c *Client) ListPodPorts(ctx context.Context, bridge string) ([]PodPort, error) {
	if err := c.checkConnected(); err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	ports, err := c.podPorts(ctx, bridge)
	if err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	return ports, nil
}

// removePorts detaches the named ports from their bridges in one transaction; the Port and
// Interface rows are then garbage-collected by ovsdb-server. Names without a port are skipped.
func (c *Client) removePorts(ctx context.Context, names []string) error {
	portsByBridge, err := c.portsByBridge(ctx)
	if err != nil {
		return err
	}
	var ops []ovsdb.Operation
	for bridgeName, ports := range portsByBridge {
		var uuids []string
		for _, name := range names {
			if p, ok := ports[name]; ok {
				uuids = append(uuids, p.UUID)
			}
		}
		if len(uuids) == 0 {
			continue
		}
		br := &vswitchd.Bridge{Name: bridgeName}
		mut, err := c.db.Where(br).Mutate(br, model.Mutation{
			Field: &br.Ports, Mutator: ovsdb.MutateOperationDelete, Value: uuids,
		})
		if err != nil {
			return fmt.Errorf("build bridge ports mutation: %w", err)
		}
		ops = append(ops, mut...)
	}
	if len(ops) == 0 {
		return nil
	}
	_, err = c.transact(ctx, ops)
	return err
}

// podPortByName returns our Pod port of that name, nil when no port has it, and a
// *PortConflictError when a port of that name exists but is not one of our Pod ports.
func (c *Client) podPortByName(ctx context.Context, name string) (*PodPort, error) {
	port := &vswitchd.Port{Name: name}
	switch err := c.db.Get(ctx, port); {
	case errors.Is(err, client.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("look up port %s: %w", name, err)
	}
	owner, ok := ownerFromExternalIDs(port.ExternalIDs)
	if !ok {
		return nil, &PortConflictError{Name: name, Reason: "it is not a Pod port managed by podvlan"}
	}
	var bridges []*vswitchd.Bridge
	if err := c.db.WhereCache(func(b *vswitchd.Bridge) bool { return slices.Contains(b.Ports, port.UUID) }).
		List(ctx, &bridges); err != nil {
		return nil, fmt.Errorf("find the bridge of port %s: %w", name, err)
	}
	p := podPortFromRows(port, owner, c.interfacesOf(ctx, port))
	if len(bridges) > 0 {
		p.Bridge = bridges[0].Name
	}
	return &p, nil
}

// podPorts lists our Pod ports on bridge, or on every bridge when it is empty.
func (c *Client) podPorts(ctx context.Context, bridge string) ([]PodPort, error) {
	portsByBridge, err := c.portsByBridge(ctx)
	if err != nil {
		return nil, err
	}
	if bridge != "" {
		if _, ok := portsByBridge[bridge]; !ok {
			return nil, fmt.Errorf("%w: %s", ErrBridgeNotFound, bridge)
		}
	}
	var out []PodPort
	for bridgeName, ports := range portsByBridge {
		if bridge != "" && bridgeName != bridge {
			continue
		}
		for _, port := range ports {
			owner, ok := ownerFromExternalIDs(port.ExternalIDs)
			if !ok {
				continue
			}
			p := podPortFromRows(port, owner, c.interfacesOf(ctx, port))
			p.Bridge = bridgeName
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b PodPort) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (c *Client) interfacesOf(ctx context.Context, port *vswitchd.Port) []*vswitchd.Interface {
	var out []*vswitchd.Interface
	for _, id := range port.Interfaces {
		iface := &vswitchd.Interface{UUID: id}
		if err := c.db.Get(ctx, iface); err == nil {
			out = append(out, iface)
		}
	}
	return out
}

// podPortFromRows summarises a Port row and its interface (Pod ports have exactly one).
func podPortFromRows(port *vswitchd.Port, owner PortOwner, ifaces []*vswitchd.Interface) PodPort {
	p := PodPort{Name: port.Name, Owner: owner, NetworkStatus: port.ExternalIDs[NetworkStatusKey]}
	if port.Tag != nil && *port.Tag >= 0 && *port.Tag <= MaxVLAN {
		p.VLAN = uint16(*port.Tag)
	}
	for _, iface := range ifaces {
		if iface.Name != port.Name {
			continue
		}
		if iface.Ofport != nil && *iface.Ofport > 0 {
			p.OFPort = *iface.Ofport
		}
		if iface.Error != nil {
			p.Error = *iface.Error
		}
	}
	return p
}
