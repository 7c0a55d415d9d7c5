package ovs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/ovs/vswitchd"
)

// Datapath types of a bridge.
const (
	// DatapathSystem is the kernel datapath (the openvswitch kernel module); production default.
	DatapathSystem = "system"
	// DatapathNetdev is the userspace datapath, for Nodes without the kernel module.
	DatapathNetdev = "netdev"
)

// localPortOFPort is the OpenFlow port number of a bridge's own internal interface.
const localPortOFPort = 65534

// BridgeConfig is the secondary bridge to ensure.
type BridgeConfig struct {
	Name         string
	DatapathType string // DatapathSystem when empty
	// MulticastSnooping makes the bridge forward multicast only to ports that joined the group.
	MulticastSnooping bool
}

// BridgeError means ovs-vswitchd stored the bridge but could not bring it up.
type BridgeError struct {
	Bridge       string
	DatapathType string
	Reason       string
}

// Error implements error.
func (e *BridgeError) Error() string {
	return fmt.Sprintf("ovs-vswitchd could not set up bridge %s (datapath_type %s): %s", e.Bridge, e.DatapathType, e.Reason)
}

// ErrBridgeNotFound is returned (wrapped) when an operation names a bridge that does not exist.
var ErrBridgeNotFound = errors.New("bridge not found")

// EnsureBridge creates the bridge, or adopts an existing one of that name, with the configured
// datapath type and our marks in external_ids, and returns once ovs-vswitchd runs it. When
// vswitchd cannot run it (e.g. datapath type system without the kernel module) it returns a
// *BridgeError, and a bridge it has just created is removed again.
func (c *Client) EnsureBridge(ctx context.Context, cfg BridgeConfig) error {
	return c.retryOnStaleCache(ctx, func() error { return c.ensureBridge(ctx, cfg) })
}

func (c *Client) ensureBridge(ctx context.Context, cfg BridgeConfig) error {
	if err := validateInterfaceName(cfg.Name); err != nil {
		return fmt.Errorf("ensure bridge: %w", err)
	}
	if cfg.DatapathType == "" {
		cfg.DatapathType = DatapathSystem
	}
	if err := c.checkConnected(); err != nil {
		return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
	}
	ovsRow, err := c.openvSwitchRow(ctx)
	if err != nil {
		return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
	}
	existing := &vswitchd.Bridge{Name: cfg.Name}
	switch err := c.db.Get(ctx, existing); {
	case errors.Is(err, client.ErrNotFound):
		existing = nil
	case err != nil:
		return fmt.Errorf("ensure bridge %s: look up: %w", cfg.Name, err)
	}

	var ops []ovsdb.Operation
	if existing == nil {
		ops, err = c.createBridgeOps(ovsRow, cfg)
	} else {
		ops, err = c.adoptBridgeOps(existing, cfg)
	}
	if err != nil {
		return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
	}
	bump, err := c.bumpConfigOps(ovsRow)
	if err != nil {
		return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
	}
	results, err := c.transact(ctx, append(ops, bump...))
	if err != nil {
		return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
	}
	target, err := configTarget(results)
	if err != nil {
		return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
	}

	waitCtx, cancel := c.readyContext(ctx)
	defer cancel()
	if err := c.waitConfigApplied(waitCtx, target); err != nil {
		return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
	}
	verdictErr := c.bridgeVerdict(ctx, cfg)
	if verdictErr != nil {
		if existing == nil {
			c.rollbackBridge(ctx, cfg.Name)
		}
		return verdictErr
	}
	if existing == nil {
		klog.InfoS("Created OVS bridge", "bridge", cfg.Name, "datapathType", cfg.DatapathType)
	} else {
		klog.V(2).InfoS("Ensured existing OVS bridge", "bridge", cfg.Name, "datapathType", cfg.DatapathType)
	}
	return nil
}

func (c *Client) createBridgeOps(ovsRow *vswitchd.OpenvSwitch, cfg BridgeConfig) ([]ovsdb.Operation, error) {
	iface := &vswitchd.Interface{UUID: "newiface", Name: cfg.Name, Type: "internal"}
	port := &vswitchd.Port{UUID: "newport", Name: cfg.Name, Interfaces: []string{iface.UUID}}
	bridge := &vswitchd.Bridge{
		UUID:                "newbridge",
		Name:                cfg.Name,
		DatapathType:        cfg.DatapathType,
		McastSnoopingEnable: cfg.MulticastSnooping,
		Ports:               []string{port.UUID},
		ExternalIDs:         ourMarks(RoleBridge),
	}
	ops, err := c.insertOps(iface, port, bridge)
	if err != nil {
		return nil, err
	}
	attach, err := c.db.Where(ovsRow).Mutate(ovsRow, model.Mutation{
		Field: &ovsRow.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: []string{bridge.UUID},
	})
	if err != nil {
		return nil, fmt.Errorf("build Open_vSwitch.bridges mutation: %w", err)
	}
	return append(ops, attach...), nil
}

// adoptBridgeOps marks an existing bridge as ours and sets its datapath type. Map "insert"
// mutations never overwrite a key, so our keys are deleted and inserted again.
func (c *Client) adoptBridgeOps(existing *vswitchd.Bridge, cfg BridgeConfig) ([]ovsdb.Operation, error) {
	marks := ourMarks(RoleBridge)
	var ops []ovsdb.Operation
	if !isOurs(existing.ExternalIDs, RoleBridge) {
		klog.InfoS("Adopting existing OVS bridge", "bridge", cfg.Name)
		mut, err := c.db.Where(existing).Mutate(existing,
			model.Mutation{Field: &existing.ExternalIDs, Mutator: ovsdb.MutateOperationDelete, Value: mapKeys(marks)},
			model.Mutation{Field: &existing.ExternalIDs, Mutator: ovsdb.MutateOperationInsert, Value: marks},
		)
		if err != nil {
			return nil, fmt.Errorf("build external_ids mutation: %w", err)
		}
		ops = append(ops, mut...)
	}
	if existing.McastSnoopingEnable != cfg.MulticastSnooping {
		existing.McastSnoopingEnable = cfg.MulticastSnooping
		upd, err := c.db.Where(existing).Update(existing, &existing.McastSnoopingEnable)
		if err != nil {
			return nil, fmt.Errorf("build mcast_snooping_enable update: %w", err)
		}
		ops = append(ops, upd...)
	}
	if normalizedDatapath(existing.DatapathType) != cfg.DatapathType {
		klog.InfoS("Changing the datapath type of OVS bridge", "bridge", cfg.Name,
			"from", normalizedDatapath(existing.DatapathType), "to", cfg.DatapathType)
		existing.DatapathType = cfg.DatapathType
		upd, err := c.db.Where(existing).Update(existing, &existing.DatapathType)
		if err != nil {
			return nil, fmt.Errorf("build datapath_type update: %w", err)
		}
		ops = append(ops, upd...)
	}
	return ops, nil
}

// bridgeVerdict reads, after vswitchd applied the configuration, whether it runs the bridge.
func (c *Client) bridgeVerdict(ctx context.Context, cfg BridgeConfig) error {
	ovsRow, err := c.openvSwitchRow(ctx)
	if err != nil {
		return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
	}
	bridge := &vswitchd.Bridge{Name: cfg.Name}
	if err := c.db.Get(ctx, bridge); err != nil {
		return fmt.Errorf("ensure bridge %s: read back: %w", cfg.Name, err)
	}
	local := &vswitchd.Interface{Name: cfg.Name}
	if err := c.db.Get(ctx, local); err != nil {
		if !errors.Is(err, client.ErrNotFound) {
			return fmt.Errorf("ensure bridge %s: read back local interface: %w", cfg.Name, err)
		}
		local = nil
	}
	return judgeBridge(cfg, bridge, local, ovsRow.DatapathTypes)
}

// judgeBridge decides from the rows vswitchd updated whether it runs the bridge. vswitchd gives
// the bridge's own internal interface OpenFlow port 65534 once the datapath is open; without one
// (a bridge made by someone else may lack it) a filled datapath_version tells the same.
func judgeBridge(cfg BridgeConfig, bridge *vswitchd.Bridge, local *vswitchd.Interface, supported []string) error {
	fail := func(reason string) error {
		if len(supported) > 0 && !slices.Contains(supported, cfg.DatapathType) {
			reason += fmt.Sprintf("; this ovs-vswitchd supports datapath types [%s] only", strings.Join(supported, ", "))
			if cfg.DatapathType == DatapathSystem {
				reason += " (is the openvswitch kernel module loaded?)"
			}
		}
		return &BridgeError{Bridge: cfg.Name, DatapathType: cfg.DatapathType, Reason: reason}
	}
	if local != nil {
		if local.Error != nil && *local.Error != "" {
			return fail(*local.Error)
		}
		if local.Ofport != nil && *local.Ofport == localPortOFPort {
			return nil
		}
		return fail("its local port got no OpenFlow port number, so its datapath did not open (see the ovs-vswitchd log)")
	}
	if bridge.DatapathVersion != "" {
		return nil
	}
	return fail("no datapath version was reported, so its datapath did not open (see the ovs-vswitchd log)")
}

// rollbackBridge removes a bridge we created and vswitchd rejected; Bridge, Port and Interface
// rows are garbage-collected once Open_vSwitch no longer references the bridge.
func (c *Client) rollbackBridge(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	err := func() error {
		ovsRow, err := c.openvSwitchRow(ctx)
		if err != nil {
			return err
		}
		bridge := &vswitchd.Bridge{Name: name}
		if err := c.db.Get(ctx, bridge); err != nil {
			return err
		}
		ops, err := c.db.Where(ovsRow).Mutate(ovsRow, model.Mutation{
			Field: &ovsRow.Bridges, Mutator: ovsdb.MutateOperationDelete, Value: []string{bridge.UUID},
		})
		if err != nil {
			return err
		}
		_, err = c.transact(ctx, ops)
		return err
	}()
	if err != nil {
		klog.ErrorS(err, "Could not remove the bridge vswitchd rejected", "bridge", name)
	}
}

// bridgeByName returns the bridge from the cache, or an error wrapping ErrBridgeNotFound.
func (c *Client) bridgeByName(ctx context.Context, name string) (*vswitchd.Bridge, error) {
	bridge := &vswitchd.Bridge{Name: name}
	if err := c.db.Get(ctx, bridge); err != nil {
		if errors.Is(err, client.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrBridgeNotFound, name)
		}
		return nil, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	return bridge, nil
}

func normalizedDatapath(t string) string {
	if t == "" {
		return DatapathSystem
	}
	return t
}

func mapKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
