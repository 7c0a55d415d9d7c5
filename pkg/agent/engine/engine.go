// Package engine attaches the secondary networks of one Pod sandbox and takes them away again:
// addresses from IPPools, a veth pair into the Pod, an OVS access port on the secondary bridge.
// An attach is all or nothing: on any failure everything this call made is rolled back, so a
// failed sandbox leaves no port, veth or address behind.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/agent/attach"
	"github.com/podvlan/podvlan/pkg/cni/netconf"
	"github.com/podvlan/podvlan/pkg/ipam"
	"github.com/podvlan/podvlan/pkg/ovs"
)

// Ports is what the engine needs of the OVS layer.
type Ports interface {
	CreateAccessPort(ctx context.Context, spec ovs.PortSpec) (ovs.PodPort, error)
	RecordAttachment(ctx context.Context, name string, rec ovs.AttachmentRecord) error
	DeletePort(ctx context.Context, name string) error
	DeletePortsOf(ctx context.Context, containerID string) ([]string, error)
	ListPodPorts(ctx context.Context, bridge string) ([]ovs.PodPort, error)
}

// Addresses is what the engine needs of the IPPool allocator.
type Addresses interface {
	Allocate(ctx context.Context, req ipam.Request) (*ipam.Result, error)
	Release(ctx context.Context, owner ipam.Owner) error
	ReleaseContainer(ctx context.Context, containerID string) error
}

// Sandbox identifies the Pod sandbox networks are attached to.
type Sandbox struct {
	PodNamespace string
	PodName      string
	PodUID       string
	ContainerID  string
	// NetNS is the sandbox's network namespace path; it may be empty on detach.
	NetNS string
}

// Network is one planned attachment: a network to attach under one interface name.
type Network struct {
	// Key names the network: "namespace/name" of its NetworkAttachmentDefinition, or the name of
	// a configuration that came on stdin.
	Key    string
	IfName string
	MTU    int
	// VLAN is the network's own vlan (0: from the IPPools, else untagged).
	VLAN int
	// MAC is the requested MAC of the Pod end; nil lets the kernel choose.
	MAC net.HardwareAddr
	// Pools are IPPool names; Static are addresses asked for explicitly.
	Pools  []string
	Static []ipam.StaticAddress
	Routes []netconf.Route
	DNS    types.DNS
	// DefaultRoute are gateways (at most one per family) through which the Pod's default route
	// goes instead of through its primary interface: the annotation's default-route.
	DefaultRoute []netip.Addr
	// WritesStatus says the agent writes the network-status entry of this attachment (on the
	// chained path; under Multus, Multus does). The port then records the entry, so that
	// reconciliation can write it again if the agent died before it was written.
	WritesStatus bool
}

func (n Network) wantsAddresses() bool { return len(n.Pools) > 0 || len(n.Static) > 0 }

// Attachment is an attached network.
type Attachment struct {
	Network Network
	// HostIfName is the host end of the veth, which is also the OVS port name.
	HostIfName string
	// MAC of the Pod end.
	MAC net.HardwareAddr
	// IPs are the Pod end's addresses.
	IPs []ipam.IPConfig
	// VLAN is the access VLAN of the port.
	VLAN   int
	OFPort int
}

// NetworkStatus is the attachment's entry of the Pod's k8s.v1.cni.cncf.io/network-status.
func (a Attachment) NetworkStatus() nadv1.NetworkStatus {
	s := nadv1.NetworkStatus{Name: a.Network.Key, Interface: a.Network.IfName, Mac: a.MAC.String(), Mtu: a.Network.MTU}
	for _, ip := range a.IPs {
		s.IPs = append(s.IPs, ip.Address.Addr().String())
		if ip.Gateway.IsValid() {
			s.Gateway = append(s.Gateway, ip.Gateway.String())
		}
	}
	return s
}

// Options configure an Engine.
type Options struct {
	// Bridge is the secondary OVS bridge.
	Bridge string
	// DisableTXChecksum turns TX checksum offload off on Pod ends, as the OVS userspace datapath
	// (datapath_type=netdev) needs.
	DisableTXChecksum bool
	// Observe, when set, is told how long each network of a sandbox took to attach (verb "ADD")
	// or detach ("DEL"), by network key; the agent feeds its attach-duration histogram with it.
	Observe func(network, verb string, took time.Duration, err error)
}

// Engine attaches and detaches networks. It is safe for concurrent use; calls for one container
// ID are serialized so that a DEL never runs in the middle of an ADD of the same sandbox.
type Engine struct {
	ports Ports
	addrs Addresses
	opts  Options
	locks keyedMutex
	// kernel bounds the kernel work (veth pairs, addresses) running at once. The kernel
	// serializes link changes on one lock anyway; more at once only adds OS threads (each step
	// holds one inside the Pod's namespace) and contention, and a burst of ADDs finishes later.
	kernel chan struct{}
}

// New returns an Engine.
func New(ports Ports, addrs Addresses, opts Options) *Engine {
	return &Engine{ports: ports, addrs: addrs, opts: opts, kernel: make(chan struct{}, kernelSlots())}
}

// kernelSlots is how many kernel steps may run at once: enough to keep every CPU busy while
// others wait for the kernel's lock.
func kernelSlots() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

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

// Attach attaches every network to the sandbox and returns the attachments in the order of
// networks. The networks are independent of each other, so they are attached at the same time.
// Networks the sandbox already has (a repeated ADD) are returned as they are. On error nothing
// made by this call stays, and the error names the first network, in order, that failed.
func (e *Engine) Attach(ctx context.Context, sb Sandbox, networks []Network) ([]Attachment, error) {
	unlock := e.locks.lock(sb.ContainerID)
	defer unlock()
	results := make([]*Attachment, len(networks))
	errs := make([]error, len(networks))
	if len(networks) == 1 {
		results[0], errs[0] = e.attachOne(ctx, sb, networks[0])
	} else {
		var wg sync.WaitGroup
		for i, n := range networks {
			wg.Go(func() { results[i], errs[i] = e.attachOne(ctx, sb, n) })
		}
		wg.Wait()
	}
	attached := make([]Attachment, 0, len(networks))
	var failed *AttachError
	for i, n := range networks {
		switch {
		case errs[i] != nil && failed == nil:
			failed = &AttachError{Network: n.Key, IfName: n.IfName, Err: errs[i]}
		case errs[i] == nil:
			attached = append(attached, *results[i])
		}
	}
	if failed != nil {
		e.rollback(sb, attached)
		return nil, failed
	}
	return attached, nil
}

// attachOne attaches one network. The steps overlap wherever one does not need the other:
//
//   - the addresses (a write to the API server) run beside everything up to configuring the
//     Pod end;
//   - the veth pair (kernel work) comes first, then the OVS port (one OVSDB transaction, then
//     the wait for ovs-vswitchd to add it to the datapath), which needs the host end to exist;
//   - the Pod end's addresses and routes, once the addresses are there, run beside the wait for
//     ovs-vswitchd; the port records the addresses once both are done;
//   - the announcements come last: before the port forwards, nobody would hear them.
//
// The veth is always made before the port, which reconciliation relies on (a port whose veth
// exists belongs to a live sandbox or to an ADD in progress). On failure every step that
// succeeded is undone, in reverse order.
func (e *Engine) attachOne(ctx context.Context, sb Sandbox, n Network) (_ *Attachment, err error) {
	logger := klog.FromContext(ctx).WithValues("pod", klog.KRef(sb.PodNamespace, sb.PodName),
		"network", n.Key, "interface", n.IfName)
	ctx = klog.NewContext(ctx, logger)
	owner := ipam.Owner{Namespace: sb.PodNamespace, Name: sb.PodName, UID: sb.PodUID,
		ContainerID: sb.ContainerID, IFName: n.IfName}
	host := attach.HostVethName(sb.ContainerID, n.IfName)
	a := &Attachment{Network: n, HostIfName: host, VLAN: n.VLAN}
	start := time.Now()
	var took phaseTimes
	defer func() { e.observe(n.Key, "ADD", start, err) }()

	// Each step registers its undo; on failure they run in reverse order.
	var undo []func(context.Context)
	defer func() {
		if err == nil {
			return
		}
		rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i](rbCtx)
		}
	}()

	var (
		allocated = make(chan struct{})
		res       *ipam.Result
		allocErr  error
	)
	if n.wantsAddresses() {
		go func() {
			defer close(allocated)
			res, allocErr = e.addrs.Allocate(ctx, ipam.Request{Owner: owner, Pools: n.Pools, Static: n.Static, VLAN: n.VLAN})
			took.allocate = time.Since(start)
		}()
	} else {
		close(allocated)
	}
	// The allocation is waited for on every path, so that its undo is registered.
	waitAllocation := func() error {
		<-allocated
		if !n.wantsAddresses() || allocErr != nil {
			return allocErr
		}
		undo = append(undo, func(ctx context.Context) {
			if err := e.addrs.Release(ctx, owner); err != nil {
				logger.Error(err, "Rollback could not release addresses")
			}
		})
		return nil
	}

	var (
		pair    *attach.Pair
		pairErr error
	)
	if err := inSlot(ctx, e.kernel, func() {
		pair, pairErr = attach.Prepare(ctx, attach.Spec{NetNSPath: sb.NetNS, IfName: n.IfName, HostIfName: host,
			MTU: n.MTU, MAC: n.MAC, DisableTXChecksum: e.opts.DisableTXChecksum, DefaultGateways: plainAddrs(n.DefaultRoute)})
	}); err != nil {
		pairErr = fmt.Errorf("create interface %s: %w", n.IfName, err)
	}
	took.veth = time.Since(start)
	if pairErr != nil {
		if err := waitAllocation(); err != nil {
			return nil, errors.Join(pairErr, fmt.Errorf("allocate addresses: %w", err))
		}
		return nil, pairErr
	}
	defer pair.Close()
	undo = append(undo, func(ctx context.Context) {
		if err := attach.Delete(ctx, sb.NetNS, n.IfName, host); err != nil {
			logger.Error(err, "Rollback could not delete the veth pair")
		}
	})

	// The port. A pair left by an earlier attempt may have to be rebuilt, which must not happen
	// under a port being added: then the Pod end is configured first, and the port made after.
	var (
		port     ovs.PodPort
		portErr  error
		portDone = make(chan struct{})
	)
	spec := ovs.PortSpec{Bridge: e.opts.Bridge, Name: host, VLAN: uint16(n.VLAN),
		Owner: ovs.PortOwner{PodNamespace: sb.PodNamespace, PodName: sb.PodName, PodUID: sb.PodUID,
			ContainerID: sb.ContainerID, IfName: n.IfName, Network: n.Key}}
	createPort := func() {
		defer close(portDone)
		port, portErr = e.ports.CreateAccessPort(ctx, spec)
		took.port = time.Since(start)
	}
	existing := pair.Existing()
	if !existing {
		go createPort()
	}
	// waitPort waits for the port, registering its undo, and returns its error.
	waitPort := func() error {
		<-portDone
		if portErr != nil {
			return portErr
		}
		undo = append(undo, func(ctx context.Context) {
			if err := e.ports.DeletePort(ctx, host); err != nil {
				logger.Error(err, "Rollback could not delete the OVS port", "port", host)
			}
		})
		return nil
	}

	if err := waitAllocation(); err != nil {
		if !existing {
			err = errors.Join(fmt.Errorf("allocate addresses: %w", err), waitPort())
			return nil, err
		}
		return nil, fmt.Errorf("allocate addresses: %w", err)
	}
	if res != nil {
		a.IPs = res.IPs
		if res.VLAN != n.VLAN {
			err := fmt.Errorf("the IPPools' VLAN changed to %d while attaching (planned %d); retry the sandbox", res.VLAN, n.VLAN)
			if !existing {
				err = errors.Join(err, waitPort())
			}
			return nil, err
		}
	}
	ips, routes := kernelAddresses(a.IPs, n.Routes)
	var iface *attach.Interface
	var cfgErr error
	if err := inSlot(ctx, e.kernel, func() { iface, cfgErr = pair.Configure(ctx, ips, routes) }); err != nil {
		cfgErr = fmt.Errorf("configure interface %s: %w", n.IfName, err)
	}
	took.configure = time.Since(start)
	if existing {
		if cfgErr != nil {
			return nil, cfgErr
		}
		spec.Owner.Addresses = addressStrings(a.IPs)
		createPort()
	}
	if err := waitPort(); err != nil {
		return nil, errors.Join(cfgErr, err)
	}
	if cfgErr != nil {
		return nil, cfgErr
	}
	a.MAC, a.OFPort = iface.ContainerMAC, port.OFPort
	rec, err := a.record()
	if err != nil {
		return nil, err
	}
	if len(rec.Addresses) > 0 || rec.NetworkStatus != "" {
		if err := e.ports.RecordAttachment(ctx, host, rec); err != nil {
			return nil, err
		}
	}

	if err := pair.Announce(); err != nil {
		logger.V(2).Info("Could not announce the addresses", "err", err)
	}
	logger.V(2).Info("Attached network", "port", host, "vlan", a.VLAN, "ips", addressStrings(a.IPs),
		"took", time.Since(start), "allocate", took.allocate, "veth", took.veth, "configure", took.configure, "ovs", took.port)
	return a, nil
}

// record is what the port records of the attachment.
func (a *Attachment) record() (ovs.AttachmentRecord, error) {
	rec := ovs.AttachmentRecord{Addresses: addressStrings(a.IPs)}
	if a.Network.WritesStatus {
		data, err := json.Marshal(a.NetworkStatus())
		if err != nil {
			return rec, fmt.Errorf("encode the network-status entry: %w", err)
		}
		rec.NetworkStatus = string(data)
	}
	return rec, nil
}

// phaseTimes records when the steps of one attachment were done (since its start), for the log:
// they tell where an ADD's time goes.
type phaseTimes struct {
	allocate, veth, configure, port time.Duration
}

const rollbackTimeout = 30 * time.Second

func (e *Engine) rollback(sb Sandbox, attached []Attachment) {
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	for i := len(attached) - 1; i >= 0; i-- {
		a := attached[i]
		err := e.detachOne(ctx, sb, a.Network.IfName, a.HostIfName)
		if a.Network.wantsAddresses() {
			owner := ipam.Owner{Namespace: sb.PodNamespace, Name: sb.PodName, UID: sb.PodUID, ContainerID: sb.ContainerID, IFName: a.Network.IfName}
			err = errors.Join(err, e.addrs.Release(ctx, owner))
		}
		if err != nil {
			klog.ErrorS(err, "Rollback could not detach", "pod", klog.KRef(sb.PodNamespace, sb.PodName),
				"interface", a.Network.IfName)
		}
	}
}

// observe reports one network's operation to Options.Observe, if set.
func (e *Engine) observe(network, verb string, start time.Time, err error) {
	if e.opts.Observe != nil && network != "" {
		e.opts.Observe(network, verb, time.Since(start), err)
	}
}

// Detach removes every network attached to the sandbox: OVS ports and veths found by container
// ID, and every address the container holds. Things already gone are no error, and an empty
// NetNS is fine (the kernel removed the Pod ends with the namespace).
func (e *Engine) Detach(ctx context.Context, sb Sandbox) (err error) {
	start := time.Now()
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
	// The networks are detached together: each is reported with the time of the whole.
	defer func() {
		for _, p := range mine {
			e.observe(p.Owner.Network, "DEL", start, err)
		}
	}()
	// The ports go first, so that the bridge never forwards for an address that is free again;
	// then the veths and the addresses, which do not depend on each other, at the same time.
	errs := make([]error, 2*len(mine)+1)
	for i, p := range mine {
		errs[i] = e.ports.DeletePort(ctx, p.Name)
	}
	var wg sync.WaitGroup
	for i, p := range mine {
		wg.Go(func() { errs[len(mine)+i] = attach.Delete(ctx, sb.NetNS, p.Owner.IfName, p.Name) })
	}
	if err := e.addrs.ReleaseContainer(ctx, sb.ContainerID); err != nil {
		errs[2*len(mine)] = fmt.Errorf("release addresses of container %s: %w", sb.ContainerID, err)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// DetachAllExcept detaches every sandbox that has a port on the bridge and is not in keep, and
// returns their container IDs. It serves CNI GC and reconciliation.
func (e *Engine) DetachAllExcept(ctx context.Context, keep map[string]bool) ([]string, error) {
	ports, err := e.ports.ListPodPorts(ctx, e.opts.Bridge)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var removed []string
	var errs []error
	for _, p := range ports {
		id := p.Owner.ContainerID
		if keep[id] || seen[id] {
			continue
		}
		seen[id] = true
		sb := Sandbox{PodNamespace: p.Owner.PodNamespace, PodName: p.Owner.PodName, PodUID: p.Owner.PodUID, ContainerID: id}
		if err := e.Detach(ctx, sb); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, id)
	}
	return removed, errors.Join(errs...)
}

// DetachInterfaces removes the named interfaces of the sandbox (whether or not an OVS port
// records them) and their addresses; for the Multus delegate path, where one call owns one
// interface.
func (e *Engine) DetachInterfaces(ctx context.Context, sb Sandbox, ifNames ...string) error {
	unlock := e.locks.lock(sb.ContainerID)
	defer unlock()
	var errs []error
	for _, name := range ifNames {
		if err := e.detachOne(ctx, sb, name, attach.HostVethName(sb.ContainerID, name)); err != nil {
			errs = append(errs, err)
		}
		owner := ipam.Owner{Namespace: sb.PodNamespace, Name: sb.PodName, UID: sb.PodUID, ContainerID: sb.ContainerID, IFName: name}
		if err := e.addrs.Release(ctx, owner); err != nil {
			errs = append(errs, fmt.Errorf("release addresses of %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// detachOne removes the port first, so that the bridge never holds a port without its device.
func (e *Engine) detachOne(ctx context.Context, sb Sandbox, ifName, host string) error {
	var errs []error
	if err := e.ports.DeletePort(ctx, host); err != nil {
		errs = append(errs, err)
	}
	if err := attach.Delete(ctx, sb.NetNS, ifName, host); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Check verifies that every network is attached to the sandbox as planned: the OVS port with
// the right VLAN and owner, and the Pod end with its MTU, MAC and the addresses the port records.
func (e *Engine) Check(ctx context.Context, sb Sandbox, networks []Network) error {
	ports, err := e.ports.ListPodPorts(ctx, e.opts.Bridge)
	if err != nil {
		return fmt.Errorf("check container %s: %w", sb.ContainerID, err)
	}
	byIfName := make(map[string]ovs.PodPort, len(networks))
	for _, p := range ports {
		if p.Owner.ContainerID == sb.ContainerID {
			byIfName[p.Owner.IfName] = p
		}
	}
	var errs []error
	for _, n := range networks {
		p, ok := byIfName[n.IfName]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("network %s: no OVS port for interface %s", n.Key, n.IfName))
			continue
		case p.Owner.Network != n.Key:
			errs = append(errs, fmt.Errorf("network %s: interface %s is attached to network %s", n.Key, n.IfName, p.Owner.Network))
		case n.VLAN != 0 && int(p.VLAN) != n.VLAN:
			errs = append(errs, fmt.Errorf("network %s: OVS port %s has VLAN %d, want %d", n.Key, p.Name, p.VLAN, n.VLAN))
		case p.OFPort <= 0:
			errs = append(errs, fmt.Errorf("network %s: OVS port %s is not up: %s", n.Key, p.Name, p.Error))
		}
		ips, err := parseAddresses(p.Owner.Addresses)
		if err != nil {
			errs = append(errs, fmt.Errorf("network %s: OVS port %s: %w", n.Key, p.Name, err))
			continue
		}
		if n.wantsAddresses() && len(ips) == 0 {
			errs = append(errs, fmt.Errorf("network %s: interface %s has no address recorded", n.Key, n.IfName))
		}
		spec := attach.Spec{NetNSPath: sb.NetNS, IfName: n.IfName, HostIfName: p.Name, MTU: n.MTU, MAC: n.MAC,
			DisableTXChecksum: e.opts.DisableTXChecksum, DefaultGateways: plainAddrs(n.DefaultRoute)}
		// The port records addresses but not gateways, so routes via "the pool's gateway" are
		// not checked here.
		var explicitRoutes []netconf.Route
		for _, r := range n.Routes {
			if r.GW.IsValid() {
				explicitRoutes = append(explicitRoutes, r)
			}
		}
		spec.IPs, spec.Routes = kernelAddresses(ips, explicitRoutes)
		if err := attach.Check(ctx, spec); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", n.Key, err))
		}
	}
	return errors.Join(errs...)
}

// parseAddresses reads the addresses an OVS port records; gateways are not recorded there, so
// only the addresses themselves are checked.
func parseAddresses(recorded []string) ([]ipam.IPConfig, error) {
	out := make([]ipam.IPConfig, 0, len(recorded))
	for _, s := range recorded {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("recorded address %q: %w", s, err)
		}
		out = append(out, ipam.IPConfig{Address: p})
	}
	return out, nil
}

// kernelAddresses turns allocated addresses and configured routes into what the Pod end gets.
// A route without a next hop goes through the gateway of its family.
func kernelAddresses(ips []ipam.IPConfig, routes []netconf.Route) ([]attach.IPConfig, []*types.Route) {
	out := make([]attach.IPConfig, 0, len(ips))
	gateways := map[bool]netip.Addr{}
	for _, ip := range ips {
		c := attach.IPConfig{Address: *prefixToIPNet(ip.Address)}
		if ip.Gateway.IsValid() {
			c.Gateway = net.IP(ip.Gateway.AsSlice())
			if _, seen := gateways[ip.Gateway.Is6()]; !seen {
				gateways[ip.Gateway.Is6()] = ip.Gateway
			}
		}
		out = append(out, c)
	}
	var rs []*types.Route
	for _, r := range routes {
		route := &types.Route{Dst: *prefixToIPNet(r.Dst.Masked())}
		gw := r.GW
		if !gw.IsValid() {
			gw = gateways[r.Dst.Addr().Is6()]
		}
		if gw.IsValid() {
			route.GW = net.IP(gw.AsSlice())
		}
		rs = append(rs, route)
	}
	return out, rs
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	addr := p.Addr().Unmap()
	return &net.IPNet{IP: net.IP(addr.AsSlice()), Mask: net.CIDRMask(p.Bits(), addr.BitLen())}
}

func plainAddrs(addrs []netip.Addr) []net.IP {
	out := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, net.IP(a.AsSlice()))
	}
	return out
}

func addressStrings(ips []ipam.IPConfig) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.Address.String())
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
func Describe(attached []Attachment) string {
	parts := make([]string, 0, len(attached))
	for _, a := range attached {
		addrs := strings.Join(addressStrings(a.IPs), ",")
		if addrs == "" {
			addrs = "no address"
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s, VLAN %d)", a.Network.IfName, addrs, a.Network.Key, a.VLAN))
	}
	return "attached " + strings.Join(parts, "; ")
}
