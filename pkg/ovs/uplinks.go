package ovs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/ovs/vswitchd"
)

// MaxUplinks is the most physical interfaces a secondary bridge takes.
const MaxUplinks = 8

// MissingInterfacesError lists configured uplinks whose network device does not exist (yet).
// The other uplinks were attached; call EnsureUplinks again later.
type MissingInterfacesError struct {
	Bridge string
	Names  []string
}

// Error implements error.
func (e *MissingInterfacesError) Error() string {
	return fmt.Sprintf("uplinks of bridge %s not attached, no such network device: %s", e.Bridge, strings.Join(e.Names, ", "))
}

// ManagementInterfacesError lists configured uplinks that were refused because they carry the
// Node's own traffic (see ManagementInterfaces), with the reason for each.
type ManagementInterfacesError struct {
	Bridge  string
	Reasons map[string]string // interface name -> reason
}

// Error implements error.
func (e *ManagementInterfacesError) Error() string {
	parts := make([]string, 0, len(e.Reasons))
	for _, name := range slices.Sorted(maps.Keys(e.Reasons)) {
		parts = append(parts, fmt.Sprintf("%s (%s)", name, e.Reasons[name]))
	}
	return fmt.Sprintf("refusing to make the Node's management interface an uplink of bridge %s: %s",
		e.Bridge, strings.Join(parts, "; "))
}

// EnsureUplinks makes exactly ifaces the uplinks of bridge: each becomes a trunk port (all VLANs,
// tagged; VLAN 0 untagged) marked as ours, and uplinks we attached earlier that are no longer
// listed are removed. Ports we did not mark are never removed.
//
// It attaches what it can and reports the rest: a *MissingInterfacesError for devices that do
// not exist (retry later), a *ManagementInterfacesError for interfaces refused because they hold
// a node IP (WithNodeIPs) or a default route. Use errors.As to tell them apart.
func (c *Client) EnsureUplinks(ctx context.Context, bridge string, ifaces []string) error {
	return c.retryOnStaleCache(ctx, func() error { return c.ensureUplinks(ctx, bridge, ifaces) })
}

func (c *Client) ensureUplinks(ctx context.Context, bridge string, ifaces []string) error {
	if err := validateUplinkNames(bridge, ifaces); err != nil {
		return fmt.Errorf("ensure uplinks of %s: %w", bridge, err)
	}
	if err := c.checkConnected(); err != nil {
		return fmt.Errorf("ensure uplinks of %s: %w", bridge, err)
	}
	br, err := c.bridgeByName(ctx, bridge)
	if err != nil {
		return fmt.Errorf("ensure uplinks: %w", err)
	}
	management, err := ManagementInterfacesAt(c.opts.hostNetNS, c.opts.nodeIPs)
	if err != nil {
		return fmt.Errorf("ensure uplinks of %s: find the management interfaces: %w", bridge, err)
	}
	present, err := existingDevices(c.opts.hostNetNS, ifaces)
	if err != nil {
		return fmt.Errorf("ensure uplinks of %s: %w", bridge, err)
	}
	ports, err := c.portsByBridge(ctx)
	if err != nil {
		return fmt.Errorf("ensure uplinks of %s: %w", bridge, err)
	}
	plan := planUplinks(bridge, ifaces, management, present, ports)

	ops, err := c.uplinkOps(br, ports[bridge], plan)
	if err != nil {
		return fmt.Errorf("ensure uplinks of %s: %w", bridge, err)
	}
	var verdictErrs []error
	if len(ops) > 0 {
		verdictErrs, err = c.applyUplinkOps(ctx, ops, plan)
		if err != nil {
			return fmt.Errorf("ensure uplinks of %s: %w", bridge, err)
		}
	}
	for _, name := range plan.add {
		klog.InfoS("Attached uplink", "bridge", bridge, "interface", name)
	}
	for _, name := range plan.adopt {
		klog.InfoS("Adopted existing port as uplink", "bridge", bridge, "interface", name)
	}
	for _, name := range plan.remove {
		klog.InfoS("Detached uplink no longer configured", "bridge", bridge, "interface", name)
	}
	return errors.Join(append(plan.errors(bridge), verdictErrs...)...)
}

func validateUplinkNames(bridge string, ifaces []string) error {
	if len(ifaces) > MaxUplinks {
		return fmt.Errorf("%d uplinks configured, at most %d allowed", len(ifaces), MaxUplinks)
	}
	seen := map[string]bool{}
	for _, name := range ifaces {
		if err := validateInterfaceName(name); err != nil {
			return err
		}
		if name == bridge {
			return fmt.Errorf("uplink %s is the bridge's own interface", name)
		}
		if seen[name] {
			return fmt.Errorf("uplink %s listed twice", name)
		}
		seen[name] = true
	}
	return nil
}

// existingDevices reports which of names exist as network devices in the namespace at nsPath.
func existingDevices(nsPath string, names []string) (map[string]bool, error) {
	h, err := netlinkHandle(nsPath)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	present := map[string]bool{}
	for _, name := range names {
		_, err := h.LinkByName(name)
		var notFound netlink.LinkNotFoundError
		switch {
		case err == nil:
			present[name] = true
		case errors.As(err, &notFound):
		default:
			return nil, fmt.Errorf("look up network device %s: %w", name, err)
		}
	}
	return present, nil
}

// portsByBridge indexes the cached ports by the bridge that holds them.
func (c *Client) portsByBridge(ctx context.Context) (map[string]map[string]*vswitchd.Port, error) {
	var bridges []*vswitchd.Bridge
	if err := c.db.List(ctx, &bridges); err != nil {
		return nil, fmt.Errorf("list bridges: %w", err)
	}
	var ports []*vswitchd.Port
	if err := c.db.List(ctx, &ports); err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	byUUID := make(map[string]*vswitchd.Port, len(ports))
	for _, p := range ports {
		byUUID[p.UUID] = p
	}
	out := make(map[string]map[string]*vswitchd.Port, len(bridges))
	for _, b := range bridges {
		out[b.Name] = map[string]*vswitchd.Port{}
		for _, id := range b.Ports {
			if p, ok := byUUID[id]; ok {
				out[b.Name][p.Name] = p
			}
		}
	}
	return out, nil
}

// uplinkPlan is what EnsureUplinks changes, and what it reports instead of changing.
type uplinkPlan struct {
	add, adopt, remove []string
	keep               []string // already our uplinks
	missing            []string
	refused            map[string]string
	conflicts          []string
}

// planUplinks decides the change from the configured uplinks, the management interfaces, the
// devices present and the current ports of every bridge.
func planUplinks(bridge string, desired []string, management map[string]string, present map[string]bool,
	portsByBridge map[string]map[string]*vswitchd.Port) uplinkPlan {
	plan := uplinkPlan{refused: map[string]string{}}
	mine := portsByBridge[bridge]
	wanted := map[string]bool{}
	for _, name := range desired {
		wanted[name] = true
		if reason, ok := management[name]; ok {
			// Neither attach nor detach: leave whatever carries the Node's traffic alone.
			plan.refused[name] = reason
			continue
		}
		if other := bridgeHolding(portsByBridge, name); other != "" && other != bridge {
			plan.conflicts = append(plan.conflicts, fmt.Sprintf("interface %s is already a port of bridge %s", name, other))
			continue
		}
		port, onBridge := mine[name]
		switch {
		case onBridge && isOurs(port.ExternalIDs, RoleUplink):
			plan.keep = append(plan.keep, name)
			if !present[name] {
				plan.missing = append(plan.missing, name) // vswitchd re-adds it when it appears
			}
		case onBridge && isOurs(port.ExternalIDs, RolePod):
			plan.conflicts = append(plan.conflicts, fmt.Sprintf("interface %s is a Pod port of bridge %s", name, bridge))
		case !present[name]:
			plan.missing = append(plan.missing, name)
		case onBridge:
			plan.adopt = append(plan.adopt, name)
		default:
			plan.add = append(plan.add, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(mine)) {
		if !wanted[name] && isOurs(mine[name].ExternalIDs, RoleUplink) {
			plan.remove = append(plan.remove, name)
		}
	}
	return plan
}

func bridgeHolding(portsByBridge map[string]map[string]*vswitchd.Port, port string) string {
	for _, b := range slices.Sorted(maps.Keys(portsByBridge)) {
		if _, ok := portsByBridge[b][port]; ok {
			return b
		}
	}
	return ""
}

func (p uplinkPlan) errors(bridge string) []error {
	var errs []error
	if len(p.refused) > 0 {
		errs = append(errs, &ManagementInterfacesError{Bridge: bridge, Reasons: p.refused})
	}
	if len(p.missing) > 0 {
		errs = append(errs, &MissingInterfacesError{Bridge: bridge, Names: p.missing})
	}
	for _, c := range p.conflicts {
		errs = append(errs, errors.New(c))
	}
	return errs
}

func (c *Client) uplinkOps(br *vswitchd.Bridge, current map[string]*vswitchd.Port, plan uplinkPlan) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	var newPorts, oldPorts []string
	trunk := vswitchd.PortVLANModeTrunk
	for i, name := range plan.add {
		iface := &vswitchd.Interface{UUID: fmt.Sprintf("uplinkiface%d", i), Name: name}
		port := &vswitchd.Port{
			UUID:        fmt.Sprintf("uplinkport%d", i),
			Name:        name,
			Interfaces:  []string{iface.UUID},
			VLANMode:    &trunk,
			ExternalIDs: ourMarks(RoleUplink),
		}
		inserts, err := c.insertOps(iface, port)
		if err != nil {
			return nil, fmt.Errorf("uplink %s: %w", name, err)
		}
		ops = append(ops, inserts...)
		newPorts = append(newPorts, port.UUID)
	}
	for _, name := range plan.adopt {
		port := current[name]
		marks := ourMarks(RoleUplink)
		mut, err := c.db.Where(port).Mutate(port,
			model.Mutation{Field: &port.ExternalIDs, Mutator: ovsdb.MutateOperationDelete, Value: mapKeys(marks)},
			model.Mutation{Field: &port.ExternalIDs, Mutator: ovsdb.MutateOperationInsert, Value: marks},
		)
		if err != nil {
			return nil, fmt.Errorf("build adoption of uplink %s: %w", name, err)
		}
		port.VLANMode, port.Tag, port.Trunks = &trunk, nil, nil
		upd, err := c.db.Where(port).Update(port, &port.VLANMode, &port.Tag, &port.Trunks)
		if err != nil {
			return nil, fmt.Errorf("build adoption of uplink %s: %w", name, err)
		}
		ops = append(append(ops, mut...), upd...)
	}
	for _, name := range plan.remove {
		oldPorts = append(oldPorts, current[name].UUID)
	}
	var mutations []model.Mutation
	if len(newPorts) > 0 {
		mutations = append(mutations, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: newPorts})
	}
	if len(oldPorts) > 0 {
		// Port and Interface rows are garbage-collected once no bridge references them.
		mutations = append(mutations, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationDelete, Value: oldPorts})
	}
	if len(mutations) > 0 {
		mut, err := c.db.Where(br).Mutate(br, mutations...)
		if err != nil {
			return nil, fmt.Errorf("build bridge ports mutation: %w", err)
		}
		ops = append(ops, mut...)
	}
	return ops, nil
}

// applyUplinkOps commits the change, waits for vswitchd and returns its verdict on each uplink
// attached or adopted.
func (c *Client) applyUplinkOps(ctx context.Context, ops []ovsdb.Operation, plan uplinkPlan) ([]error, error) {
	ovsRow, err := c.openvSwitchRow(ctx)
	if err != nil {
		return nil, err
	}
	bump, err := c.bumpConfigOps(ovsRow)
	if err != nil {
		return nil, err
	}
	results, err := c.transact(ctx, append(ops, bump...))
	if err != nil {
		return nil, err
	}
	target, err := configTarget(results)
	if err != nil {
		return nil, err
	}
	waitCtx, cancel := c.readyContext(ctx)
	defer cancel()
	if err := c.waitConfigApplied(waitCtx, target); err != nil {
		return nil, err
	}
	var errs []error
	for _, name := range slices.Concat(plan.add, plan.adopt) {
		iface := &vswitchd.Interface{Name: name}
		if err := c.db.Get(ctx, iface); err != nil {
			errs = append(errs, fmt.Errorf("uplink %s: read back: %w", name, err))
			continue
		}
		if iface.Ofport == nil || *iface.Ofport <= 0 {
			errs = append(errs, fmt.Errorf("uplink %s: ovs-vswitchd could not add it: %s", name, interfaceErrorText(iface)))
		}
	}
	return errs, nil
}

// interfaceErrorText is vswitchd's error column, or a note that it left none.
func interfaceErrorText(iface *vswitchd.Interface) string {
	if iface.Error != nil && *iface.Error != "" {
		return *iface.Error
	}
	return "no OpenFlow port number assigned and no error reported (see the ovs-vswitchd log)"
}
