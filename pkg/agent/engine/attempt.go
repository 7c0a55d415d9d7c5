package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/veth"
	"github.com/podvlan/podvlan/pkg/ipam"
	"github.com/podvlan/podvlan/pkg/ovs"
)

// attempt is one attachment being made. Each step is a method that sets only its own fields;
// once a step has succeeded its undo is pushed, so a failure undoes exactly what was made, in
// reverse order. Steps that run at the same time are joined (errgroup) before their results are
// read or their undo is pushed.
type attempt struct {
	e      *Engine
	sb     plan.Sandbox
	a      plan.Attachment
	host   string // the host end of the veth, also the OVS port's name
	logger klog.Logger
	start  time.Time
	took   phaseTimes

	undo []undoStep

	// Set by allocate.
	allocated *ipam.Result
	// Set by prepareLink.
	link Link
	// Set by createPort.
	port ovs.PodPort
	// Set by configure.
	addressing plan.Addressing
	iface      *veth.Interface
}

// undoStep is the undo of one step that succeeded.
type undoStep struct {
	name string
	do   func(context.Context) error
}

// phaseTimes records when the steps of one attachment were done (since its start), for the log:
// they tell where an ADD's time goes.
type phaseTimes struct {
	allocate, veth, configure, port time.Duration
}

const rollbackTimeout = 30 * time.Second

// attachOne attaches one attachment. The steps overlap wherever one does not need the other:
//
//   - allocate (a write to the API server) runs beside everything up to configure;
//   - prepareLink (kernel work) comes first, then createPort (one OVSDB transaction, then the
//     wait for ovs-vswitchd), which needs the host end to exist;
//   - configure (the Pod end's addresses and routes), once the addresses are there, runs beside
//     the wait for ovs-vswitchd; record then writes the addresses on the port;
//   - announce comes last: before the port forwards, nobody would hear it.
//
// The veth is always made before the port, which reconciliation relies on (a port whose veth
// exists belongs to a live sandbox or to an ADD in progress). A pair left by an earlier attempt
// may have to be rebuilt, which must not happen under a port: then configure runs first and the
// port is made after it.
func (e *Engine) attachOne(ctx context.Context, sb plan.Sandbox, a plan.Attachment) (_ *Attached, err error) {
	t := &attempt{e: e, sb: sb, a: a, host: veth.HostName(sb.ContainerID, a.IfName), start: time.Now(),
		logger: klog.FromContext(ctx).WithValues("pod", klog.KRef(sb.PodNamespace, sb.PodName),
			"network", a.Network, "interface", a.IfName)}
	ctx = klog.NewContext(ctx, t.logger)
	defer func() {
		if err != nil {
			t.rollback(ctx)
		}
	}()
	defer t.closeLink()

	var allocation errgroup.Group
	allocation.Go(func() error { return t.allocate(ctx) })
	linkErr := t.prepareLink(ctx)
	var port errgroup.Group
	portFirst := linkErr == nil && !t.link.Existing()
	if portFirst {
		port.Go(func() error { return t.createPort(ctx, nil) })
	}

	allocErr := allocation.Wait()
	if allocErr == nil && t.allocated != nil {
		t.pushUndo("release addresses", t.releaseAddresses)
	}
	if linkErr == nil {
		t.pushUndo("delete veth pair", t.deleteLink)
	}
	stepErr := errors.Join(linkErr, allocErr)
	if stepErr == nil {
		stepErr = t.checkVLAN()
	}
	if stepErr == nil {
		stepErr = t.configure(ctx)
	}
	if portFirst {
		portErr := port.Wait()
		if portErr == nil {
			t.pushUndo("delete OVS port", t.deletePort)
		}
		stepErr = errors.Join(stepErr, portErr)
	} else if stepErr == nil {
		if err := t.createPort(ctx, &t.addressing); err != nil {
			return nil, err
		}
		t.pushUndo("delete OVS port", t.deletePort)
	}
	if stepErr != nil {
		return nil, stepErr
	}
	if err := t.record(ctx); err != nil {
		return nil, err
	}
	t.announce()
	return t.attached(), nil
}

// allocate gets the addresses from the IPPools.
func (t *attempt) allocate(ctx context.Context) error {
	if !t.a.WantsAddresses() {
		return nil
	}
	res, err := t.e.addrs.Allocate(ctx, t.a.Request(t.sb))
	t.took.allocate = time.Since(t.start)
	if err != nil {
		return fmt.Errorf("allocate addresses: %w", err)
	}
	t.allocated = res
	return nil
}

func (t *attempt) releaseAddresses(ctx context.Context) error {
	return t.e.addrs.Release(ctx, t.a.Owner(t.sb))
}

// prepareLink makes the veth pair, without addresses, in one of the kernel slots.
func (t *attempt) prepareLink(ctx context.Context) error {
	spec := t.e.vethSpec(t.sb, t.a, t.host)
	var err error
	if slotErr := inSlot(ctx, t.e.kernelSlots, func() { t.link, err = t.e.kernel.Prepare(ctx, spec) }); slotErr != nil {
		err = fmt.Errorf("create interface %s: %w", t.a.IfName, slotErr)
	}
	t.took.veth = time.Since(t.start)
	return err
}

func (t *attempt) deleteLink(ctx context.Context) error {
	return t.e.kernel.Delete(ctx, t.sb.NetNS, t.a.IfName, t.host)
}

func (t *attempt) closeLink() {
	if t.link != nil {
		t.link.Close()
	}
}

// checkVLAN refuses addresses whose pools moved to another VLAN since the plan was made: the
// port would put the Pod on a VLAN where its addresses do not belong.
func (t *attempt) checkVLAN() error {
	if t.allocated != nil && t.allocated.VLAN != t.a.VLAN {
		return fmt.Errorf("the IPPools' VLAN changed to %d while attaching (planned %d); retry the sandbox", t.allocated.VLAN, t.a.VLAN)
	}
	return nil
}

// createPort adds the host end to the bridge as an access port of the attachment's VLAN. When
// the addresses are known already (an earlier attempt's pair), the port records them at once.
func (t *attempt) createPort(ctx context.Context, known *plan.Addressing) error {
	spec := ovs.PortSpec{Bridge: t.e.opts.Bridge, Name: t.host, VLAN: uint16(t.a.VLAN), Owner: t.e.portOwner(t.sb, t.a)}
	if known != nil {
		spec.Owner.Addresses, spec.Owner.Gateways = known.AddressStrings(), addrStrings(known.Gateways())
	}
	port, err := t.e.ports.CreateAccessPort(ctx, spec)
	t.took.port = time.Since(t.start)
	if err != nil {
		return err
	}
	t.port = port
	return nil
}

func (t *attempt) deletePort(ctx context.Context) error { return t.e.ports.DeletePort(ctx, t.host) }

// configure gives the Pod end its addresses and routes, in one of the kernel slots.
func (t *attempt) configure(ctx context.Context) error {
	var ips []ipam.IPConfig
	if t.allocated != nil {
		ips = t.allocated.IPs
	}
	t.addressing = t.a.Addressing(ips)
	var err error
	slotErr := inSlot(ctx, t.e.kernelSlots, func() {
		t.iface, err = t.link.Configure(ctx, t.addressing.KernelIPs(), t.addressing.KernelRoutes())
	})
	if slotErr != nil {
		err = fmt.Errorf("configure interface %s: %w", t.a.IfName, slotErr)
	}
	t.took.configure = time.Since(t.start)
	if err != nil {
		t.iface = nil
	}
	return err
}

// record writes on the port what reconciliation and CHECK read back: the addresses, their
// gateways and, where the agent writes it, the network-status entry.
func (t *attempt) record(ctx context.Context) error {
	rec := ovs.PortRecord{Addresses: t.addressing.AddressStrings(), Gateways: addrStrings(t.addressing.Gateways())}
	if t.a.WritesStatus {
		data, err := json.Marshal(t.attached().NetworkStatus())
		if err != nil {
			return fmt.Errorf("encode the network-status entry: %w", err)
		}
		rec.NetworkStatus = string(data)
	}
	if len(rec.Addresses) == 0 && rec.NetworkStatus == "" {
		return nil
	}
	return t.e.ports.SetPortRecord(ctx, t.host, rec)
}

// announce tells the segment the Pod's addresses; a failure only costs the neighbours a lookup.
func (t *attempt) announce() {
	if err := t.link.Announce(); err != nil {
		t.logger.V(2).Info("Could not announce the addresses", "err", err)
	}
	t.logger.V(2).Info("Attached network", "port", t.host, "vlan", t.a.VLAN, "ips", t.addressing.AddressStrings(),
		"took", time.Since(t.start), "allocate", t.took.allocate, "veth", t.took.veth, "configure", t.took.configure, "ovs", t.took.port)
}

func (t *attempt) attached() *Attached {
	return &Attached{Attachment: t.a, Addressing: t.addressing, HostIfName: t.host, MAC: t.iface.ContainerMAC, OFPort: t.port.OFPort}
}

func (t *attempt) pushUndo(name string, do func(context.Context) error) {
	t.undo = append(t.undo, undoStep{name: name, do: do})
}

// rollback runs the undo of every step that succeeded, last first, with a context of its own:
// the caller's may be what ended.
func (t *attempt) rollback(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	for i := len(t.undo) - 1; i >= 0; i-- {
		if err := t.undo[i].do(ctx); err != nil {
			t.logger.Error(err, "Rollback step failed", "step", t.undo[i].name)
		}
	}
}
