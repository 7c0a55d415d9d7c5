// Package veth creates, checks and removes one secondary interface of a Pod in the kernel: a veth
// pair whose container end lives in the Pod's network namespace with the requested name, MTU, MAC,
// addresses and routes, and whose host end stays in the caller's network namespace, ready to be
// plugged into Open vSwitch by another package.
//
// The host namespace is the network namespace of the calling goroutine's thread: the agent's own
// namespace when called from ordinary code, or any namespace entered with ns.NetNS.Do (which is
// how tests keep their host ends out of the real host).
//
// The expected flow of an ADD is Prepare, then plugging HostIfName into the bridge beside
// Pair.Configure, then Pair.Announce once the port forwards. DEL is Delete; CHECK is Check;
// HostName gives the host end's name from the attachment key (container ID, interface name).
//
// Addresses and routes are installed exactly as given: a route without a next hop is on-link.
// Resolving next hops (the CNI rule "a route without one takes the first gateway of its family")
// is the planner's job (package plan), so that the CNI result, this package and CHECK agree.
//
// Log lines go to the logger found in the context (klog.FromContext), so callers attach the Pod
// and network keys once with klog.NewContext.
package veth

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/pkg/ifname"
)

// Limits on the MTU of a veth: 68 is the smallest MTU IPv4 allows, 65535 the largest a veth
// accepts, and IPv6 needs at least 1280 on any link it runs on.
const (
	minMTU     = 68
	maxMTU     = 65535
	minIPv6MTU = 1280
)

// Spec describes the secondary interface wanted in a Pod.
type Spec struct {
	// NetNSPath is the Pod's network namespace (CNI_NETNS).
	NetNSPath string
	// IfName is the interface name inside the Pod, e.g. "eth1" or "net1".
	IfName string
	// HostIfName is the name of the host end; use HostName.
	HostIfName string
	// MTU of both ends; 0 keeps the kernel's default (1500).
	MTU int
	// MAC of the container end; nil lets the kernel pick a random one.
	MAC net.HardwareAddr
	// IPs are assigned to the container end (addresses with their prefix length).
	IPs []net.IPNet
	// Routes are added in the Pod through the container end, each with its next hop as given
	// (none: on-link).
	Routes []*types.Route
	// DefaultGateways, at most one per address family, take over the Pod's default route of
	// their family: the default routes through other interfaces are removed, and one through
	// this interface and the gateway is added. Each gateway must lie in a subnet of IPs.
	DefaultGateways []net.IP
	// DisableTXChecksum turns TX checksum offload off on the container end. The OVS userspace
	// (netdev) datapath does not fill in checksums that a veth left to offload, so without this
	// TCP and UDP from the Pod arrive with bad checksums.
	DisableTXChecksum bool
}

// Interface is the state of an attached interface, as the kernel reports it.
type Interface struct {
	// Name is the interface name inside the Pod.
	Name string
	// Sandbox is the Pod's network namespace path.
	Sandbox string
	// ContainerIfIndex and ContainerMAC describe the container end (index inside the Pod).
	ContainerIfIndex int
	ContainerMAC     net.HardwareAddr
	// HostIfName, HostIfIndex and HostMAC describe the host end (index in the host namespace).
	HostIfName  string
	HostIfIndex int
	HostMAC     net.HardwareAddr
	// MTU is the MTU of the container end.
	MTU int
}

// Validate reports every problem of the spec in one error, each part starting with its field path,
// so that a user reading a Pod Event learns all of them at once.
func (s Spec) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if s.NetNSPath == "" {
		add("netnsPath: must not be empty")
	}
	if err := ifname.Validate(s.IfName); err != nil {
		add("ifName: %q %v", s.IfName, err)
	}
	if err := ifname.Validate(s.HostIfName); err != nil {
		add("hostIfName: %q %v", s.HostIfName, err)
	}
	if s.MTU != 0 && (s.MTU < minMTU || s.MTU > maxMTU) {
		add("mtu: %d is outside [%d, %d]", s.MTU, minMTU, maxMTU)
	}
	if len(s.MAC) > 0 {
		if err := validateMAC(s.MAC); err != nil {
			add("mac: %v", err)
		}
	}

	seen := map[string]int{}
	hasIPv6 := false
	for i, ipc := range s.IPs {
		family, err := prefixFamily(ipc)
		if err != nil {
			add("ips[%d]: %v", i, err)
			continue
		}
		hasIPv6 = hasIPv6 || family == 6
		key := ipc.IP.String()
		if j, dup := seen[key]; dup {
			add("ips[%d]: %s repeats ips[%d]", i, key, j)
		}
		seen[key] = i
	}
	if hasIPv6 && s.MTU != 0 && s.MTU < minIPv6MTU {
		add("mtu: %d is below %d, the minimum for IPv6 addresses", s.MTU, minIPv6MTU)
	}

	for i, r := range s.Routes {
		if r == nil {
			add("routes[%d]: must not be null", i)
			continue
		}
		family, err := prefixFamily(r.Dst)
		if err != nil {
			add("routes[%d].dst: %v", i, err)
			continue
		}
		if r.GW != nil && ipFamily(r.GW) != family {
			add("routes[%d].gw: %s is not an IPv%d address", i, r.GW, family)
		}
	}

	families := map[int]bool{}
	for i, gw := range s.DefaultGateways {
		family := ipFamily(gw)
		if family == 0 {
			add("defaultGateways[%d]: %q is not an IP address", i, gw)
			continue
		}
		if families[family] {
			add("defaultGateways[%d]: a second IPv%d default gateway", i, family)
		}
		families[family] = true
	}

	if len(problems) > 0 {
		return errors.New("invalid interface spec: " + strings.Join(problems, "; "))
	}
	return nil
}

// checkDefaultGateways reports a default gateway that no address of the interface can reach
// directly; it needs the addresses, so it runs when they are known (Configure).
func (s Spec) checkDefaultGateways() error {
	for _, gw := range s.DefaultGateways {
		onLink := false
		for _, ipc := range s.IPs {
			onLink = onLink || ipc.Contains(gw)
		}
		if !onLink {
			return fmt.Errorf("default-route gateway %s is not in a subnet of interface %s (addresses: %s)",
				gw, s.IfName, describeAddresses(s.IPs))
		}
	}
	return nil
}

func describeAddresses(ips []net.IPNet) string {
	if len(ips) == 0 {
		return "none"
	}
	out := make([]string, 0, len(ips))
	for _, ipc := range ips {
		out = append(out, ipc.String())
	}
	return strings.Join(out, ", ")
}

func validateMAC(mac net.HardwareAddr) error {
	switch {
	case len(mac) != 6:
		return fmt.Errorf("%s is not a 6-byte Ethernet address", mac)
	case mac[0]&1 == 1:
		return fmt.Errorf("%s is a multicast address", mac)
	case string(mac) == "\x00\x00\x00\x00\x00\x00":
		return fmt.Errorf("%s is the zero address", mac)
	}
	return nil
}

// ipFamily returns 4 or 6, or 0 for something that is not an IP address.
func ipFamily(ip net.IP) int {
	switch {
	case ip.To4() != nil:
		return 4
	case len(ip) == net.IPv6len:
		return 6
	}
	return 0
}

// prefixFamily returns the family of an address with prefix length, checking that the mask fits.
func prefixFamily(p net.IPNet) (int, error) {
	family := ipFamily(p.IP)
	if family == 0 {
		return 0, errors.New("missing or malformed IP address")
	}
	ones, bits := p.Mask.Size()
	if bits == 0 {
		return 0, fmt.Errorf("%s has no valid prefix length", p.IP)
	}
	if family == 4 && bits != 32 && !(bits == 128 && ones >= 96) {
		return 0, fmt.Errorf("%s has an IPv6 prefix length", p.IP)
	}
	if family == 6 && bits != 128 {
		return 0, fmt.Errorf("%s has an IPv4 prefix length", p.IP)
	}
	return family, nil
}

// normalized returns a copy of the spec with IPv4 addresses and masks in their 4-byte form, so
// that comparisons with what netlink reports are byte for byte. It expects a valid spec.
func (s Spec) normalized() Spec {
	out := s
	out.IPs = make([]net.IPNet, len(s.IPs))
	for i, ipc := range s.IPs {
		out.IPs[i] = normalizePrefix(ipc)
	}
	out.Routes = make([]*types.Route, len(s.Routes))
	for i, r := range s.Routes {
		c := *r
		c.Dst = normalizePrefix(r.Dst)
		c.GW = normalizeIP(r.GW)
		out.Routes[i] = &c
	}
	out.DefaultGateways = make([]net.IP, len(s.DefaultGateways))
	for i, gw := range s.DefaultGateways {
		out.DefaultGateways[i] = normalizeIP(gw)
	}
	return out
}

func normalizeIP(ip net.IP) net.IP {
	if ip == nil {
		return nil
	}
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}

func normalizePrefix(p net.IPNet) net.IPNet {
	ip := normalizeIP(p.IP)
	ones, bits := p.Mask.Size()
	if len(ip) == net.IPv4len && bits == 128 {
		ones -= 96
	}
	return net.IPNet{IP: ip, Mask: net.CIDRMask(ones, 8*len(ip))}
}
