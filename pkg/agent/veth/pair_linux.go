package veth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// Pair is one interface being attached in steps, so that a caller can overlap the kernel work
// with its own (allocating the addresses, waiting for the switch to plug the host end in):
//
//   - Prepare makes the veth pair without addresses: the container end in the Pod with its name,
//     MTU, MAC and offload setting, the host end in the calling thread's namespace, up, with IPv6
//     disabled.
//   - Configure gives the container end its addresses and routes, brings it up and verifies the
//     whole interface against the spec.
//   - Announce sends the gratuitous ARPs and unsolicited neighbour advertisements.
//   - Close releases what the Pair holds (it never removes the interface; Delete does).
//
// A Pair enters the Pod's network namespace once in Prepare and once in Configure: it keeps the
// namespace open and two sockets created inside it (for ethtool and for the announcements),
// which work from any thread. The host-side steps run in the calling thread's namespace, so call
// Prepare and Configure from threads in the same namespace (ordinary goroutines of the agent, or
// one goroutine inside ns.NetNS.Do). If Prepare or Configure fails, the pair is already removed.
type Pair struct {
	spec   Spec // normalized; IPs and Routes are set by Configure
	podNS  ns.NetNS
	logger klog.Logger
	// existing is an own pair found by Prepare, from an earlier attempt; Configure keeps it when
	// it is complete and rebuilds it otherwise.
	existing bool
	// ethtoolFD and packetFD are sockets in the Pod's namespace (-1 once closed).
	ethtoolFD, packetFD int
	// podIndex and podMAC identify the container end once Configure has verified it.
	podIndex int
	podMAC   net.HardwareAddr
}

// Prepare makes the veth pair of spec, whose IPs and Routes are ignored (Configure sets them).
// An own pair already there (a repeated ADD) is left as it is for Configure to judge; a foreign
// interface of that name in the Pod is an *ExistsError; a stale host end of an earlier attempt is
// replaced.
func Prepare(ctx context.Context, spec Spec) (_ *Pair, err error) {
	spec.IPs, spec.Routes = nil, nil
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("create interface %s: %w", spec.IfName, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create interface %s: %w", spec.IfName, err)
	}
	p := &Pair{spec: spec.normalized(), ethtoolFD: -1, packetFD: -1}
	p.logger = klog.FromContext(ctx).WithValues("interface", spec.IfName, "hostInterface", spec.HostIfName, "netns", spec.NetNSPath)
	if p.podNS, err = ns.GetNS(spec.NetNSPath); err != nil {
		return nil, fmt.Errorf("create interface %s: open Pod netns: %w", spec.IfName, err)
	}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()

	var pod podState
	err = p.podNS.Do(func(ns.NetNS) error {
		if err := p.openSockets(); err != nil {
			return err
		}
		var err error
		pod, err = readPodState(spec.IfName)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create interface %s: read interface in the Pod: %w", spec.IfName, err)
	}
	host, err := readHostState(spec.HostIfName)
	if err != nil {
		return nil, fmt.Errorf("create interface %s: read host interface: %w", spec.IfName, err)
	}
	switch {
	case ownPair(pod.link, host.link):
		p.existing = true
		return p, nil
	case pod.link.exists:
		return nil, fmt.Errorf("create interface %s: %w", spec.IfName, &ExistsError{IfName: spec.IfName, Kind: pod.link.kind})
	case host.link.exists:
		// The name is a hash of the container ID and interface name, so this is the host end of an
		// earlier attempt for this very attachment whose container end went away.
		p.logger.Info("Removing a stale host interface left by an earlier attempt")
		if err := deleteHostLink(spec.HostIfName); err != nil {
			return nil, fmt.Errorf("create interface %s: %w", spec.IfName, err)
		}
	}
	if err := p.makePair(); err != nil {
		return nil, p.failed(err)
	}
	return p, nil
}

// openSockets opens, in the calling thread's namespace (the Pod's), the sockets the later steps
// use from outside it.
func (p *Pair) openSockets() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open ethtool socket: %w", err)
	}
	p.ethtoolFD = fd
	// Protocol 0: the socket only sends, so it never queues the traffic it would otherwise see.
	if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
		return fmt.Errorf("open packet socket: %w", err)
	}
	p.packetFD = fd
	return nil
}

// makePair creates the pair from the host side, the container end going straight into the Pod
// with its name, MTU and MAC, then prepares the host end and the container end's offloads. The
// container end stays down until Configure.
func (p *Pair) makePair() error {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: p.spec.HostIfName, MTU: p.spec.MTU},
		PeerName:      p.spec.IfName,
		PeerNamespace: netlink.NsFd(int(p.podNS.Fd())),
		PeerMTU:       uint32(p.spec.MTU),
	}
	if len(p.spec.MAC) > 0 {
		veth.PeerHardwareAddr = p.spec.MAC
	}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create veth pair: an interface named %s (host) or %s (Pod) appeared meanwhile: %w",
				p.spec.HostIfName, p.spec.IfName, err)
		}
		return fmt.Errorf("create veth pair: %w", err)
	}
	if err := prepareHostEnd(p.spec); err != nil {
		return err
	}
	if p.spec.DisableTXChecksum {
		if err := setTXChecksumAt(p.ethtoolFD, p.spec.IfName, false); err != nil {
			return err
		}
	}
	return nil
}

// failed removes the pair after a failed step and returns the step's error, wrapped the way every
// error of Create reads.
func (p *Pair) failed(err error) error {
	if rbErr := removePair(p.logger, p.podNS, p.spec.IfName, p.spec.HostIfName); rbErr != nil {
		p.logger.Error(rbErr, "Rolling back a failed interface creation failed")
		err = errors.Join(err, fmt.Errorf("roll back: %w", rbErr))
	}
	return fmt.Errorf("create interface %s (host end %s): %w", p.spec.IfName, p.spec.HostIfName, err)
}

// Configure gives the container end its addresses and routes (a route without a gateway goes
// through the first gateway of its family among ips), brings it up, waits for IPv6 duplicate
// address detection, and verifies the whole interface against the spec. An own pair found by
// Prepare is returned as it is when it already matches, and rebuilt otherwise.
func (p *Pair) Configure(ctx context.Context, ips []net.IPNet, routes []*types.Route) (*Interface, error) {
	spec := p.spec
	spec.IPs, spec.Routes = ips, routes
	if err := spec.Validate(); err != nil {
		return nil, p.failed(err)
	}
	if err := spec.checkDefaultGateways(); err != nil {
		return nil, p.failed(err)
	}
	if err := ctx.Err(); err != nil {
		return nil, p.failed(err)
	}
	p.spec = spec.normalized()
	if p.existing {
		p.existing = false
		pod, host, err := readPair(p.podNS, p.spec)
		if err != nil {
			return nil, fmt.Errorf("create interface %s: %w", spec.IfName, err)
		}
		diffs := differences(p.spec, pod, host)
		if len(diffs) == 0 {
			p.logger.V(2).Info("Interface already attached")
			p.podIndex, p.podMAC = pod.link.index, pod.link.mac
			return interfaceOf(p.spec, pod, host), nil
		}
		p.logger.Info("Recreating an interface an earlier attempt left incomplete", "differences", diffs)
		if err := removePair(p.logger, p.podNS, p.spec.IfName, p.spec.HostIfName); err != nil {
			return nil, fmt.Errorf("create interface %s: remove the incomplete one: %w", spec.IfName, err)
		}
		if err := p.makePair(); err != nil {
			return nil, p.failed(err)
		}
	}

	var pod podState
	err := p.podNS.Do(func(ns.NetNS) error {
		if err := configureContainerEnd(p.spec); err != nil {
			return err
		}
		var err error
		pod, err = readPodState(p.spec.IfName)
		return err
	})
	if err != nil {
		return nil, p.failed(err)
	}
	host, err := readHostState(p.spec.HostIfName)
	if err != nil {
		return nil, p.failed(err)
	}
	// Read back what the kernel made rather than trusting each step: this also catches a
	// concurrent change of either end while it was being configured.
	if diffs := differences(p.spec, pod, host); len(diffs) > 0 {
		return nil, p.failed(fmt.Errorf("interface differs from the spec after configuration: %s", strings.Join(diffs, "; ")))
	}
	p.podIndex, p.podMAC = pod.link.index, pod.link.mac
	p.logger.Info("Created interface", "mac", pod.link.mac.String(), "mtu", pod.link.mtu)
	return interfaceOf(p.spec, pod, host), nil
}

// Existing reports whether Prepare found an own pair of an earlier attempt, which Configure keeps
// or rebuilds (until Configure has run).
func (p *Pair) Existing() bool { return p.existing }

// Announce sends a gratuitous ARP or an unsolicited neighbour advertisement for every address
// Configure gave the container end, through the socket Prepare opened in the Pod: call it once
// the host end forwards, since nobody hears what is sent before.
func (p *Pair) Announce() error {
	if p.packetFD < 0 || p.podIndex == 0 || len(p.spec.IPs) == 0 {
		return nil
	}
	ips := make([]net.IP, 0, len(p.spec.IPs))
	for _, ipc := range p.spec.IPs {
		ips = append(ips, ipc.IP)
	}
	if err := sendAnnouncementsOn(p.packetFD, p.podIndex, p.podMAC, ips); err != nil {
		return fmt.Errorf("announce addresses of %s: %w", p.spec.IfName, err)
	}
	return nil
}

// Close releases the Pod namespace and the sockets. It is safe to call more than once.
func (p *Pair) Close() {
	if p.ethtoolFD >= 0 {
		_ = unix.Close(p.ethtoolFD)
		p.ethtoolFD = -1
	}
	if p.packetFD >= 0 {
		// Closing a packet socket waits for an RCU grace period (about 10 ms); nothing needs to
		// wait for that, least of all the CNI answer.
		go func(fd int) { _ = unix.Close(fd) }(p.packetFD)
		p.packetFD = -1
	}
	if p.podNS != nil {
		_ = p.podNS.Close()
		p.podNS = nil
	}
}

// prepareHostEnd disables IPv6 on the host end, so that the Node sends no router solicitations,
// MLD reports or DAD probes into the Pod's VLAN, makes sure its MTU is the spec's, and brings it
// up.
func prepareHostEnd(spec Spec) error {
	_, err := sysctl.Sysctl(fmt.Sprintf(disableIPv6Sysctl, spec.HostIfName), "1")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disable IPv6 on host interface %s: %w", spec.HostIfName, err)
	}
	link, state, err := readLink(spec.HostIfName)
	if err != nil {
		return err
	}
	if !state.exists {
		return fmt.Errorf("host interface %s vanished after its creation", spec.HostIfName)
	}
	if spec.MTU != 0 && state.mtu != spec.MTU {
		if err := netlink.LinkSetMTU(link, spec.MTU); err != nil {
			return fmt.Errorf("set MTU of host interface %s to %d: %w", spec.HostIfName, spec.MTU, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set host interface %s up: %w", spec.HostIfName, err)
	}
	return nil
}

// takeDefaultRoutes runs in the Pod's namespace: for each default gateway of the spec, the
// default routes of its family through other interfaces (the primary plugin's) are removed, and
// one through this interface and the gateway replaces them. A Pod has one default route per
// family; two would make the kernel pick one by metric, or spread connections over both.
func takeDefaultRoutes(spec Spec) error {
	if len(spec.DefaultGateways) == 0 {
		return nil
	}
	link, err := netlinksafe.LinkByName(spec.IfName)
	if err != nil {
		return fmt.Errorf("set the default route: %w", err)
	}
	for _, gw := range spec.DefaultGateways {
		family, bits := netlink.FAMILY_V4, 32
		if gw.To4() == nil {
			family, bits = netlink.FAMILY_V6, 128
		}
		everywhere := &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, bits)}
		if family == netlink.FAMILY_V6 {
			everywhere.IP = net.IPv6zero
		}
		routes, err := netlinksafe.RouteListFiltered(family, &netlink.Route{Table: mainTable}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return fmt.Errorf("list the default routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst != nil && r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask) && r.LinkIndex != link.Attrs().Index {
				if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
					return fmt.Errorf("remove the default route through interface index %d: %w", r.LinkIndex, err)
				}
			}
		}
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: everywhere, Gw: gw, Table: mainTable}
		if err := netlink.RouteReplace(route); err != nil {
			return fmt.Errorf("set the default route via %s on %s: %w", gw, spec.IfName, err)
		}
	}
	return nil
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

// configureContainerEnd runs in the Pod's namespace: addresses, routes, link up, then the wait
// until IPv6 addresses have left the tentative state (an address is not usable, nor may it be
// announced, while it is tentative).
func configureContainerEnd(spec Spec) error {
	result := &current.Result{Interfaces: []*current.Interface{{Name: spec.IfName}}}
	hasIPv6 := false
	for _, ipc := range spec.IPs {
		// No gateway: ConfigureIface would send routes without a next hop through it, and the
		// routes come with their next hops resolved (package plan).
		result.IPs = append(result.IPs, &current.IPConfig{Interface: current.Int(0), Address: ipc})
		hasIPv6 = hasIPv6 || ipc.IP.To4() == nil
	}
	result.Routes = spec.Routes
	if err := ipam.ConfigureIface(spec.IfName, result); err != nil {
		return fmt.Errorf("configure addresses and routes: %w", err)
	}
	if err := takeDefaultRoutes(spec); err != nil {
		return err
	}
	if hasIPv6 {
		// ConfigureIface waits for DAD only when there is an IPv6 gateway, and it gets none.
		if err := ip.SettleAddresses(spec.IfName, dadTimeout); err != nil {
			return fmt.Errorf("wait for IPv6 duplicate address detection: %w", err)
		}
	}
	return nil
}
