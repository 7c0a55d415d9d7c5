// Package engine carries out planned attachments (package plan) on one Node: addresses from the
// IPPools, a veth pair into the Pod, an OVS access port on the secondary bridge; and takes them
// away again. An attach is all or nothing: on any failure everything this call made is rolled
// back, so a failed sandbox leaves no port, veth or address behind.
//
// The engine acts through three consumer-side interfaces, Kernel, Ports and Addresses, so that
// its steps and their rollback have unit tests with fakes; the real ones are Veth, *ovs.Client
// and *ipam.Allocator.
package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"

	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/veth"
	"github.com/podvlan/podvlan/pkg/ipam"
	"github.com/podvlan/podvlan/pkg/ovs"
)

// Ports is what the engine needs of the OVS layer (an *ovs.Client).
type Ports interface {
	CreateAccessPort(ctx context.Context, spec ovs.PortSpec) (ovs.PodPort, error)
	SetPortRecord(ctx context.Context, name string, rec ovs.PortRecord) error
	DeletePort(ctx context.Context, name string) error
	ListPodPorts(ctx context.Context, bridge string) ([]ovs.PodPort, error)
}

// Intents is what the engine needs of OVSDB to record attachments before anything is allocated
// (an *ovs.Client).
type Intents interface {
	RecordIntents(ctx context.Context, intents ...ovs.Intent) error
	DeleteIntents(ctx context.Context, keys ...string) error
	ListIntents(ctx context.Context) ([]ovs.Intent, error)
}

// Addresses is what the engine needs of the IPPool allocator (an *ipam.Allocator).
type Addresses interface {
	Allocate(ctx context.Context, req ipam.Request) (*ipam.Result, error)
	Release(ctx context.Context, owner ipam.Owner) error
	ReleaseContainer(ctx context.Context, containerID string) error
}

// Attached is an attachment as made: the plan, the addressing it got, and what the kernel and
// OVS gave it.
type Attached struct {
	plan.Attachment
	Addressing plan.Addressing
	// HostIfName is the host end of the veth, which is also the OVS port name.
	HostIfName string
	// MAC of the Pod end.
	MAC    net.HardwareAddr
	OFPort int
}

// NetworkStatus is the attachment's entry of the Pod's k8s.v1.cni.cncf.io/network-status.
func (a *Attached) NetworkStatus() nadv1.NetworkStatus {
	s := nadv1.NetworkStatus{Name: a.Network, Interface: a.IfName, Mac: a.MAC.String(), Mtu: a.MTU}
	for _, ip := range a.Addressing.IPs {
		s.IPs = append(s.IPs, ip.Address.Addr().Unmap().String())
		if ip.Gateway.IsValid() {
			s.Gateway = append(s.Gateway, ip.Gateway.Unmap().String())
		}
	}
	return s
}

// Result is the CNI result of the attachment (the Multus delegate way in answers with it).
func (a *Attached) Result(netns string) *current.Result {
	return a.Addressing.Result(&current.Interface{Name: a.IfName, Mac: a.MAC.String(), Sandbox: netns}, a.DNS)
}

// Options configure an Engine.
type Options struct {
	// Bridge is the secondary OVS bridge.
	Bridge string
	// DisableTXChecksum turns TX checksum offload off on Pod ends, as the OVS userspace datapath
	// (datapath_type=netdev) needs.
	DisableTXChecksum bool
	// Kernel makes the veth pairs; nil is Veth{}.
	Kernel Kernel
}

// Engine attaches and detaches networks. It is safe for concurrent use; calls for one container
// ID are serialized so that a DEL never runs in the middle of an ADD of the same sandbox.
type Engine struct {
	ports   Ports
	intents Intents
	addrs   Addresses
	kernel Kernel
	opts   Options
	locks  keyedMutex
	// kernelSlots bounds the kernel work (veth pairs, addresses) running at once. The kernel
	// serializes link changes on one lock anyway; more at once only adds OS threads (each step
	// holds one inside the Pod's namespace) and contention, and a burst of ADDs finishes later.
	kernelSlots chan struct{}
}

// New returns an Engine.
func New(ports Ports, intents Intents, addrs Addresses, opts Options) *Engine {
	kernel := opts.Kernel
	if kernel == nil {
		kernel = Veth{}
	}
	return &Engine{ports: ports, intents: intents, addrs: addrs, kernel: kernel, opts: opts,
		kernelSlots: make(chan struct{}, kernelSlotCount())}
}

// kernelSlotCount is how many kernel steps may run at once: enough to keep every CPU busy while
// others wait for the kernel's lock.
func kernelSlotCount() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// inSlot runs f once one of the slots is free (or fails when ctx ends first).
func inSlot(ctx context.Context, slots chan struct{}, f func()) error {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-slots }()
	f()
	return nil
}

// AttachError says which network failed to attach and why; its text is shown to users.
type AttachError struct {
	Network string
	IfName  string
	Err     error
}

func (e *AttachError) Error() string {
	return fmt.Sprintf("attach network %s as %s: %v", e.Network, e.IfName, e.Err)
}

func (e *AttachError) Unwrap() error { return e.Err }

// Attach makes every attachment in the sandbox and returns them in order. They are independent
// of each other, so they are made at the same time. Attachments the sandbox already has (a
// repeated ADD) are returned as they are. On error nothing made by this call stays, and the error
// names the first attachment, in order, that failed.
//
// Before anything is allocated, the attachments' intents are recorded in OVSDB; they are deleted
// last, once the ports record the attachments or everything was rolled back. An agent killed in
// between leaves the intents, from which reconciliation (Abandon) removes what was made.
func (e *Engine) Attach(ctx context.Context, sb plan.Sandbox, attachments []plan.Attachment) ([]Attached, error) {
	unlock := e.locks.lock(sb.ContainerID)
	defer unlock()
	if len(attachments) == 0 {
		return nil, nil
	}
	intents := make([]ovs.Intent, 0, len(attachments))
	for _, a := range attachments {
		intents = append(intents, intentOf(sb, a))
	}
	if err := e.intents.RecordIntents(ctx, intents...); err != nil {
		return nil, &AttachError{Network: attachments[0].Network, IfName: attachments[0].IfName, Err: err}
	}
	defer e.forgetIntents(ctx, intents)
	results := make([]*Attached, len(attachments))
	errs := make([]error, len(attachments))
	var g errgroup.Group
	for i, a := range attachments {
		g.Go(func() error {
			results[i], errs[i] = e.attachOne(ctx, sb, a)
			return nil
		})
	}
	_ = g.Wait() // each attachment's error is in errs, to be reported in order
	attached := make([]Attached, 0, len(attachments))
	var failed *AttachError
	for i, a := range attachments {
		switch {
		case errs[i] != nil && failed == nil:
			failed = &AttachError{Network: a.Network, IfName: a.IfName, Err: errs[i]}
		case errs[i] == nil:
			attached = append(attached, *results[i])
		}
	}
	if failed != nil {
		e.rollback(ctx, sb, attached)
		return nil, failed
	}
	return attached, nil
}

// intentOf is the intent recorded before the attachment is made.
func intentOf(sb plan.Sandbox, a plan.Attachment) ovs.Intent {
	return ovs.Intent{ContainerID: sb.ContainerID, IfName: a.IfName, PodNamespace: sb.PodNamespace, PodName: sb.PodName,
		PodUID: sb.PodUID, NetNS: sb.NetNS, Network: a.Network, Pools: a.Pools, WantsAddresses: a.WantsAddresses(), Way: string(a.Way)}
}

// forgetIntents deletes intents once their attachments are committed or rolled back, also when
// the call's context ended. One left behind (OVSDB away) is harmless: reconciliation finds the
// attachment committed and deletes the intent only.
func (e *Engine) forgetIntents(ctx context.Context, intents []ovs.Intent) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	keys := make([]string, 0, len(intents))
	for _, in := range intents {
		keys = append(keys, in.Key())
	}
	if err := e.intents.DeleteIntents(ctx, keys...); err != nil {
		klog.FromContext(ctx).Error(err, "Could not delete attachment intents; reconciliation will", "intents", keys)
	}
}

// rollback removes attachments this call made when another one failed, last first.
func (e *Engine) rollback(ctx context.Context, sb plan.Sandbox, attached []Attached) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	for i := len(attached) - 1; i >= 0; i-- {
		a := &attached[i]
		err := e.detachOne(ctx, sb, a.IfName, a.HostIfName)
		if a.WantsAddresses() {
			err = errors.Join(err, e.addrs.Release(ctx, a.Owner(sb)))
		}
		if err != nil {
			klog.FromContext(ctx).Error(err, "Rollback could not detach", "pod", klog.KRef(sb.PodNamespace, sb.PodName),
				"interface", a.IfName)
		}
	}
}

// Detach removes every attachment of the sandbox: OVS ports and veths found by container ID, and
// every address the container holds. Things already gone are no error, and an empty NetNS is
// fine (the kernel removed the Pod ends with the namespace).
func (e *Engine) Detach(ctx context.Context, sb plan.Sandbox) error {
	unlock := e.locks.lock(sb.ContainerID)
	defer unlock()
	ports, err := e.ports.ListPodPorts(ctx, e.opts.Bridge)
	if err != nil {
		return fmt.Errorf("detach container %s: %w", sb.ContainerID, err)
	}
	var mine []ovs.PodPort
	for _, p := range ports {
		if p.Owner.ContainerID == sb.ContainerID {
			mine = append(mine, p)
		}
	}
	// The ports go first, so that the bridge never forwards for an address that is free again;
	// then the veths and the addresses, which do not depend on each other, at the same time.
	errs := make([]error, 2*len(mine)+1)
	for i, p := range mine {
		errs[i] = e.ports.DeletePort(ctx, p.Name)
	}
	var g errgroup.Group
	for i, p := range mine {
		g.Go(func() error {
			errs[len(mine)+i] = e.kernel.Delete(ctx, sb.NetNS, p.Owner.IfName, p.Name)
			return nil
		})
	}
	g.Go(func() error {
		if err := e.addrs.ReleaseContainer(ctx, sb.ContainerID); err != nil {
			errs[2*len(mine)] = fmt.Errorf("release addresses of container %s: %w", sb.ContainerID, err)
		}
		return nil
	})
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return e.forgetContainerIntents(ctx, sb.ContainerID)
}

// forgetContainerIntents deletes the intents left for a container whose attachments and
// addresses are all gone (an ADD killed half way, then DEL): nothing is left for them to record.
func (e *Engine) forgetContainerIntents(ctx context.Context, containerID string) error {
	intents, err := e.intents.ListIntents(ctx)
	if err != nil {
		return fmt.Errorf("detach container %s: %w", containerID, err)
	}
	var keys []string
	for _, in := range intents {
		if in.ContainerID == containerID {
			keys = append(keys, in.Key())
		}
	}
	if err := e.intents.DeleteIntents(ctx, keys...); err != nil {
		return fmt.Errorf("detach container %s: %w", containerID, err)
	}
	return nil
}

// DetachInterfaces removes the named interfaces of the sandbox (whether or not an OVS port
// records them) and their addresses; for the Multus delegate way in, where one call owns one
// interface.
func (e *Engine) DetachInterfaces(ctx context.Context, sb plan.Sandbox, ifNames ...string) error {
	unlock := e.locks.lock(sb.ContainerID)
	defer unlock()
	var errs []error
	for _, name := range ifNames {
		if err := e.detachOne(ctx, sb, name, veth.HostName(sb.ContainerID, name)); err != nil {
			errs = append(errs, err)
		}
		if err := e.addrs.Release(ctx, plan.OwnerOf(sb, name)); err != nil {
			errs = append(errs, fmt.Errorf("release addresses of %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// detachOne removes the port first, so that the bridge never holds a port without its device.
func (e *Engine) detachOne(ctx context.Context, sb plan.Sandbox, ifName, host string) error {
	var errs []error
	if err := e.ports.DeletePort(ctx, host); err != nil {
		errs = append(errs, err)
	}
	if err := e.kernel.Delete(ctx, sb.NetNS, ifName, host); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Check verifies that every attachment is in the sandbox as planned: the OVS port with the right
// VLAN and owner, and the Pod end with its MTU, MAC, and the addresses and routes derived (by
// plan.Address, as at ADD) from what the port records.
func (e *Engine) Check(ctx context.Context, sb plan.Sandbox, attachments []plan.Attachment) error {
	ports, err := e.ports.ListPodPorts(ctx, e.opts.Bridge)
	if err != nil {
		return fmt.Errorf("check container %s: %w", sb.ContainerID, err)
	}
	byIfName := make(map[string]ovs.PodPort, len(attachments))
	for _, p := range ports {
		if p.Owner.ContainerID == sb.ContainerID {
			byIfName[p.Owner.IfName] = p
		}
	}
	var errs []error
	for _, a := range attachments {
		p, ok := byIfName[a.IfName]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("network %s: no OVS port for interface %s", a.Network, a.IfName))
			continue
		case p.Owner.Network != a.Network:
			errs = append(errs, fmt.Errorf("network %s: interface %s is attached to network %s", a.Network, a.IfName, p.Owner.Network))
		case a.VLAN != 0 && int(p.VLAN) != a.VLAN:
			errs = append(errs, fmt.Errorf("network %s: OVS port %s has VLAN %d, want %d", a.Network, p.Name, p.VLAN, a.VLAN))
		case p.OFPort <= 0:
			errs = append(errs, fmt.Errorf("network %s: OVS port %s is not up: %s", a.Network, p.Name, p.Error))
		}
		ips, err := plan.Recorded(p.Owner.Addresses, p.Owner.Gateways)
		if err != nil {
			errs = append(errs, fmt.Errorf("network %s: OVS port %s: %w", a.Network, p.Name, err))
			continue
		}
		if a.WantsAddresses() && len(ips) == 0 {
			errs = append(errs, fmt.Errorf("network %s: interface %s has no address recorded", a.Network, a.IfName))
		}
		x := a.Addressing(ips)
		spec := e.vethSpec(sb, a, p.Name)
		spec.IPs, spec.Routes = x.KernelIPs(), x.KernelRoutes()
		if err := e.kernel.Check(ctx, spec); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", a.Network, err))
		}
	}
	return errors.Join(errs...)
}

// vethSpec is the kernel's part of an attachment, without addresses and routes.
func (e *Engine) vethSpec(sb plan.Sandbox, a plan.Attachment, host string) veth.Spec {
	gws := make([]net.IP, 0, len(a.DefaultRoute))
	for _, gw := range a.DefaultRoute {
		gws = append(gws, plan.IP(gw))
	}
	return veth.Spec{NetNSPath: sb.NetNS, IfName: a.IfName, HostIfName: host, MTU: a.MTU, MAC: a.MAC,
		DisableTXChecksum: e.opts.DisableTXChecksum, DefaultGateways: gws}
}

// portOwner is what the attachment's port records of its owner.
func (e *Engine) portOwner(sb plan.Sandbox, a plan.Attachment) ovs.PortOwner {
	return ovs.PortOwner{PodNamespace: sb.PodNamespace, PodName: sb.PodName, PodUID: sb.PodUID,
		ContainerID: sb.ContainerID, IfName: a.IfName, Network: a.Network, Way: string(a.Way)}
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

// keyedMutex serializes work per key (a container ID) and forgets keys nobody holds.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	mu      sync.Mutex
	waiters int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.waiters++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		l.waiters--
		if l.waiters == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// Describe summarises attachments for an Event: "eth1 198.18.100.2/24 (ns/vlan100, VLAN 100)".
func Describe(attached []Attached) string {
	parts := make([]string, 0, len(attached))
	for _, a := range attached {
		addrs := strings.Join(a.Addressing.AddressStrings(), ",")
		if addrs == "" {
			addrs = "no address"
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s, VLAN %d)", a.IfName, addrs, a.Network, a.VLAN))
	}
	return "attached " + strings.Join(parts, "; ")
}
