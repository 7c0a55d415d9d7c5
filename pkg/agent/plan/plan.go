// Package plan decides which secondary networks a Pod sandbox gets: it reads the Pod's
// k8s.v1.cni.cncf.io/networks annotation (or a Multus delegate's configuration), resolves every
// element to its NetworkAttachmentDefinition and IPPools, and applies the contract's rules (VLAN
// precedence, MTU, address families, static addresses, route next hops, who writes the
// network-status). Its output, Attachment and Addressing, is the one model of an attachment: the
// engine carries it out, and the CNI result and CHECK are derived from it. It acts on nothing;
// errors are written for the Pod's user.
package plan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/cni/netconf"
	"github.com/podvlan/podvlan/pkg/cni/request"
	"github.com/podvlan/podvlan/pkg/cni/selection"
	"github.com/podvlan/podvlan/pkg/ipam"
)

// Lookup finds the objects a plan refers to; implementations read informer caches and fall back
// to the API server. A missing object is an error for which apierrors.IsNotFound is true.
type Lookup interface {
	NAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error)
	IPPool(ctx context.Context, name string) (*v1beta1.IPPool, error)
}

// Plan is what a Pod sandbox gets on the chained way in.
type Plan struct {
	// Attachments are this agent's networks, in annotation order.
	Attachments []Attachment
	// Foreign are the elements whose NetworkAttachmentDefinition belongs to another plugin
	// (Multus attaches those), as "namespace/name".
	Foreign []string
}

// ForPod resolves the annotation of a Pod in podNamespace, for the chained way in, where the
// agent writes the network-status. An empty annotation is an empty plan.
func ForPod(ctx context.Context, podNamespace, annotation string, lookup Lookup) (*Plan, error) {
	elements, err := selection.Parse(podNamespace, annotation)
	if err != nil {
		return nil, err
	}
	p := &Plan{}
	for i := range elements {
		e := &elements[i]
		a, ours, err := resolve(ctx, e, lookup)
		if err != nil {
			return nil, err
		}
		if !ours {
			p.Foreign = append(p.Foreign, e.NetworkKey())
			continue
		}
		a.Way, a.WritesStatus = Chained, true
		p.Attachments = append(p.Attachments, *a)
	}
	return p, nil
}

// OursIn returns the networks of the annotation ("namespace/name") that belong to this plugin,
// without resolving their IPPools: enough to tell a Pod that its networks cannot be served
// (feature gate off) before any pool is looked at.
func OursIn(ctx context.Context, podNamespace, annotation string, lookup Lookup) ([]string, error) {
	elements, err := selection.Parse(podNamespace, annotation)
	if err != nil {
		return nil, err
	}
	var ours []string
	for i := range elements {
		a := &elements[i]
		nad, err := lookup.NAD(ctx, a.Namespace, a.Name)
		if err != nil {
			continue // not knowable; the gate error is what the user needs to see first
		}
		if _, isOurs, _ := netconf.ParseNAD(a.Namespace, a.Name, nad.Spec.Config); isOurs {
			ours = append(ours, a.NetworkKey())
		}
	}
	return ours, nil
}

func resolve(ctx context.Context, a *selection.Element, lookup Lookup) (*Attachment, bool, error) {
	nad, err := lookup.NAD(ctx, a.Namespace, a.Name)
	if apierrors.IsNotFound(err) {
		return nil, false, fmt.Errorf("network %s (element %d of %s): NetworkAttachmentDefinition %s not found",
			a.NetworkKey(), a.Index, selection.AnnotationKey, a.NetworkKey())
	}
	if err != nil {
		return nil, false, fmt.Errorf("network %s: get NetworkAttachmentDefinition: %w", a.NetworkKey(), err)
	}
	network, ours, err := netconf.ParseNAD(a.Namespace, a.Name, nad.Spec.Config)
	if err != nil || !ours {
		return nil, ours, err
	}
	n, err := FromNetwork(ctx, network, lookup)
	if err != nil {
		return nil, true, err
	}
	n.IfName = a.Interface
	n.MAC = a.MAC
	n.DefaultRoute = a.DefaultRoute
	statics, err := StaticAddresses(ctx, network.Key(), a.IPs, n.Pools, lookup)
	if err != nil {
		return nil, true, err
	}
	n.Static = append(n.Static, statics...)
	return n, true, nil
}

// FromNetwork turns a validated network configuration into an attachment without interface
// name, checking it against the IPPools it references. It serves the annotation path and the
// Multus delegate path alike.
func FromNetwork(ctx context.Context, network *netconf.Network, lookup Lookup) (*Attachment, error) {
	n := &Attachment{Network: network.Key(), MTU: network.MTU, VLAN: network.VLAN}
	var pools []netconf.Pool
	if network.IPAM != nil {
		for _, name := range network.IPAM.IPPools {
			pool, err := lookup.IPPool(ctx, name)
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("network %s: ipam.ippools: IPPool %q not found", network.Key(), name)
			}
			if err != nil {
				return nil, fmt.Errorf("network %s: get IPPool %q: %w", network.Key(), name, err)
			}
			p, err := netconf.PoolFromIPPool(pool)
			if err != nil {
				return nil, fmt.Errorf("network %s: %w", network.Key(), err)
			}
			pools = append(pools, p)
		}
		n.Pools = network.IPAM.IPPools
		for _, s := range network.IPAM.Addresses {
			n.Static = append(n.Static, ipam.StaticAddress{Address: s.Address, Gateway: s.Gateway})
		}
		n.Routes = network.IPAM.Routes
		n.DNS = network.IPAM.DNS
	}
	vlan, err := network.ResolveWithPools(pools)
	if err != nil {
		return nil, err
	}
	n.VLAN = vlan
	return n, nil
}

// ForDelegate plans the one attachment of a Multus delegate call: the network on stdin under
// ifName, with the MAC and addresses Multus passes (runtimeConfig first, then CNI_ARGS). Multus
// writes the network-status, so the agent does not.
func ForDelegate(ctx context.Context, network *netconf.Network, ifName string, mac net.HardwareAddr, ips []request.IP, lookup Lookup) (*Attachment, error) {
	a, err := FromNetwork(ctx, network, lookup)
	if err != nil {
		return nil, err
	}
	a.IfName, a.MAC, a.Way = ifName, mac, Delegate
	statics, err := StaticAddresses(ctx, a.Network, ips, a.Pools, lookup)
	if err != nil {
		return nil, err
	}
	a.Static = append(a.Static, statics...)
	return a, nil
}

// ForIPAMOnly plans the addresses of interface ifName for another plugin whose configuration
// (named network) has ipam.type antrea: the pools and static addresses of its ipam section and the
// addresses CNI_ARGS asks for, which must carry their prefix length.
func ForIPAMOnly(network string, conf *netconf.IPAM, ifName string, argIPs []request.IP) (*Attachment, error) {
	if conf == nil {
		return nil, errors.New("ipam: Required value")
	}
	a := &Attachment{Network: network, IfName: ifName, Pools: conf.IPPools, Routes: conf.Routes, DNS: conf.DNS, Way: IPAMOnly}
	for _, s := range conf.Addresses {
		a.Static = append(a.Static, ipam.StaticAddress{Address: s.Address, Gateway: s.Gateway})
	}
	for _, ip := range argIPs {
		if !ip.HasPrefix() {
			return nil, fmt.Errorf("CNI_ARGS IP=%s: write the address with its prefix length", ip.Addr)
		}
		a.Static = append(a.Static, ipam.StaticAddress{Address: ip.Prefix()})
	}
	return a, nil
}

// StaticAddresses turns requested ips (the annotation's, or Multus's runtimeConfig) into
// addresses with a prefix length: a bare address takes the prefix length of the referenced pool
// it falls in.
func StaticAddresses(ctx context.Context, network string, ips []request.IP, pools []string, lookup Lookup) ([]ipam.StaticAddress, error) {
	out := make([]ipam.StaticAddress, 0, len(ips))
	for i, ip := range ips {
		if ip.HasPrefix() {
			out = append(out, ipam.StaticAddress{Address: ip.Prefix()})
			continue
		}
		prefix, ok := poolPrefixFor(ctx, ip.Addr, pools, lookup)
		if !ok {
			return nil, fmt.Errorf("network %s: ips[%d] %s has no prefix length and lies in none of the network's IPPools; write it as address/prefix",
				network, i, ip.Addr)
		}
		out = append(out, ipam.StaticAddress{Address: prefix})
	}
	return out, nil
}

func poolPrefixFor(ctx context.Context, addr netip.Addr, pools []string, lookup Lookup) (netip.Prefix, bool) {
	for _, name := range pools {
		pool, err := lookup.IPPool(ctx, name)
		if err != nil {
			continue
		}
		gw, err := netip.ParseAddr(pool.Spec.SubnetInfo.Gateway)
		if err != nil {
			continue
		}
		subnet, err := gw.Prefix(int(pool.Spec.SubnetInfo.PrefixLength))
		if err == nil && subnet.Contains(addr) {
			return netip.PrefixFrom(addr, subnet.Bits()), true
		}
	}
	return netip.Prefix{}, false
}
