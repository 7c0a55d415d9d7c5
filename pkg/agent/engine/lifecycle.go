package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/veth"
	"github.com/podvlan/podvlan/pkg/ovs"
)

// Allocate makes an IPAM-only attachment (addresses for another plugin's interface): its intent,
// then the addresses, then the intent marked committed, which records the sandbox until Release
// (there is no port to record it). On error nothing stays.
func (e *Engine) Allocate(ctx context.Context, sb plan.Sandbox, a plan.Attachment) (plan.Addressing, error) {
	unlock := e.locks.lock(sb.ContainerID)
	defer unlock()
	in := intentOf(sb, a)
	if err := e.intents.RecordIntents(ctx, in); err != nil {
		return plan.Addressing{}, err
	}
	res, err := e.addrs.Allocate(ctx, a.Request(sb))
	if err == nil {
		in.Committed = true
		if err = e.intents.RecordIntents(ctx, in); err != nil {
			err = errors.Join(err, e.addrs.Release(context.WithoutCancel(ctx), a.Owner(sb)))
		}
	}
	if err != nil {
		e.forgetIntents(ctx, []ovs.Intent{in})
		return plan.Addressing{}, fmt.Errorf("allocate addresses for %s of container %s: %w", a.IfName, sb.ContainerID, err)
	}
	return a.Addressing(res.IPs), nil
}

// Release removes an IPAM-only attachment: its addresses, then its intent.
func (e *Engine) Release(ctx context.Context, sb plan.Sandbox, ifName string) error {
	unlock := e.locks.lock(sb.ContainerID)
	defer unlock()
	if err := e.addrs.Release(ctx, plan.OwnerOf(sb, ifName)); err != nil {
		return fmt.Errorf("release addresses of %s of container %s: %w", ifName, sb.ContainerID, err)
	}
	if err := e.intents.DeleteIntents(ctx, ovs.IntentKey(sb.ContainerID, ifName)); err != nil {
		return fmt.Errorf("release addresses of %s of container %s: %w", ifName, sb.ContainerID, err)
	}
	return nil
}

// Abandon removes what the attachment of an intent may have made, and the intent: reconciliation
// calls it for the intent of an ADD that did not finish, and for the committed intent of an
// IPAM-only attachment whose sandbox is gone. Under the sandbox's lock it first reads the intent
// again, because an ADD in progress deletes its own; and a chained or delegate attachment whose
// port was committed (it is up and records the addresses) is kept: only the intent goes.
func (e *Engine) Abandon(ctx context.Context, in ovs.Intent) error {
	unlock := e.locks.lock(in.ContainerID)
	defer unlock()
	current, err := e.intents.ListIntents(ctx)
	if err != nil {
		return fmt.Errorf("abandon intent %s: %w", in.Key(), err)
	}
	// Act only on the intent as it was judged: gone, or committed meanwhile (an IPAM-only ADD that
	// was in progress), it is no longer the caller's to remove.
	if !slices.ContainsFunc(current, func(c ovs.Intent) bool { return c.Key() == in.Key() && c.Committed == in.Committed }) {
		return nil
	}
	sb := plan.Sandbox{PodNamespace: in.PodNamespace, PodName: in.PodName, PodUID: in.PodUID, ContainerID: in.ContainerID, NetNS: in.NetNS}
	var errs []error
	if in.Way != ovs.WayIPAMOnly {
		host := veth.HostName(in.ContainerID, in.IfName)
		committed, err := e.portCommitted(ctx, host, in)
		if err != nil {
			return fmt.Errorf("abandon intent %s: %w", in.Key(), err)
		}
		if committed {
			return e.intents.DeleteIntents(ctx, in.Key())
		}
		errs = append(errs, e.detachOne(ctx, sb, in.IfName, host))
	}
	if in.WantsAddresses || len(in.Pools) > 0 {
		errs = append(errs, e.addrs.Release(ctx, plan.OwnerOf(sb, in.IfName)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("abandon intent %s: %w", in.Key(), err)
	}
	return e.intents.DeleteIntents(ctx, in.Key())
}

// portCommitted reports whether the intent's attachment was finished: its port is up and
// records the addresses it wanted.
func (e *Engine) portCommitted(ctx context.Context, host string, in ovs.Intent) (bool, error) {
	ports, err := e.ports.ListPodPorts(ctx, e.opts.Bridge)
	if err != nil {
		return false, err
	}
	for _, p := range ports {
		if p.Name == host && p.Owner.ContainerID == in.ContainerID {
			return p.OFPort > 0 && (len(p.Owner.Addresses) > 0 || !in.WantsAddresses), nil
		}
	}
	return false, nil
}

// Keep says whether CNI GC keeps the attachment (containerID, ifName): the call's
// cni.dev/valid-attachments.
type Keep func(containerID, ifName string) bool

// GC removes the attachments of one way in that keep does not keep, and returns them as
// "containerID/ifName" (a whole sandbox as its container ID). A GC never touches another way's
// attachments, nor, for delegate and IPAM-only, another network's:
//
//   - Chained: every chained port's sandbox is judged as a whole, since the runtime lists only
//     the primary interface (network is the primary's and not ours, so it is not compared).
//   - Delegate: each port of network (the name Multus passes) is judged by its interface.
//   - IPAMOnly: each committed IPAM-only intent of network is judged by its interface; its
//     addresses are released.
func (e *Engine) GC(ctx context.Context, way plan.Way, network string, keep Keep) ([]string, error) {
	var removed []string
	var errs []error
	switch way {
	case plan.Chained, plan.Delegate:
		ports, err := e.ports.ListPodPorts(ctx, e.opts.Bridge)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, p := range ports {
			if portWay(p.Owner) != way {
				continue
			}
			id := p.Owner.ContainerID
			sb := plan.Sandbox{PodNamespace: p.Owner.PodNamespace, PodName: p.Owner.PodName, PodUID: p.Owner.PodUID, ContainerID: id}
			if way == plan.Chained {
				if seen[id] || keep(id, "") {
					continue
				}
				seen[id] = true
				if err := e.detachWay(ctx, sb, plan.Chained); err != nil {
					errs = append(errs, err)
					continue
				}
				removed = append(removed, id)
				continue
			}
			if p.Owner.Network != network || keep(id, p.Owner.IfName) {
				continue
			}
			if err := e.DetachInterfaces(ctx, sb, p.Owner.IfName); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, id+"/"+p.Owner.IfName)
		}
	case plan.IPAMOnly:
		intents, err := e.intents.ListIntents(ctx)
		if err != nil {
			return nil, err
		}
		for _, in := range intents {
			if in.Way != ovs.WayIPAMOnly || !in.Committed || in.Network != network || keep(in.ContainerID, in.IfName) {
				continue
			}
			sb := plan.Sandbox{PodNamespace: in.PodNamespace, PodName: in.PodName, PodUID: in.PodUID, ContainerID: in.ContainerID}
			if err := e.Release(ctx, sb, in.IfName); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, in.ContainerID+"/"+in.IfName)
		}
	default:
		return nil, fmt.Errorf("garbage-collect: unknown way in %q", way)
	}
	return removed, errors.Join(errs...)
}

// detachWay removes the sandbox's ports of one way in, their veths and their addresses.
func (e *Engine) detachWay(ctx context.Context, sb plan.Sandbox, way plan.Way) error {
	unlock := e.locks.lock(sb.ContainerID)
	defer unlock()
	ports, err := e.ports.ListPodPorts(ctx, e.opts.Bridge)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range ports {
		if p.Owner.ContainerID != sb.ContainerID || portWay(p.Owner) != way {
			continue
		}
		errs = append(errs, e.detachOne(ctx, sb, p.Owner.IfName, p.Name), e.addrs.Release(ctx, plan.OwnerOf(sb, p.Owner.IfName)))
	}
	return errors.Join(errs...)
}

// portWay is the way in that made a port. Ports made before they recorded it are told apart by
// their network: the chained way in names a NetworkAttachmentDefinition ("namespace/name"), a
// Multus delegate's configuration carries the name alone.
func portWay(o ovs.PortOwner) plan.Way {
	if o.Way != "" {
		return plan.Way(o.Way)
	}
	if strings.Contains(o.Network, "/") {
		return plan.Chained
	}
	return plan.Delegate
}
