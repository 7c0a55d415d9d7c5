package veth

import (
	"bytes"
	"fmt"
	"net"
)

// mainTable is the kernel's main routing table (RT_TABLE_MAIN), where routes without a table go.
const mainTable = 254

// linkState is what the kernel reports about one end of the pair.
type linkState struct {
	exists    bool
	kind      string // netlink link type: "veth", "dummy", ...
	index     int
	peerIndex int // a veth's peer index, valid in the peer's namespace
	mtu       int
	mac       net.HardwareAddr
	up        bool
}

// routeState is one route through the container end.
type routeState struct {
	dst   net.IPNet
	gw    net.IP
	table int
}

// podState is the container end and its layer-3 configuration, read inside the Pod.
type podState struct {
	link       linkState
	addrs      []net.IPNet
	routes     []routeState
	txChecksum bool
}

// hostState is the host end, read in the host namespace.
type hostState struct {
	link linkState
	// ipv6Disabled is nil when the host has no IPv6 at all (nothing to disable).
	ipv6Disabled *bool
}

// ownPair reports whether the two ends are the two halves of one veth pair: each one's peer index
// is the other one's index. This is how the package recognises an interface it made, so that it
// never touches a same-named interface someone else put in the Pod.
func ownPair(pod, host linkState) bool {
	return pod.exists && host.exists && pod.kind == "veth" && host.kind == "veth" &&
		pod.peerIndex == host.index && host.peerIndex == pod.index
}

// differences lists, in words a user can act on, how the observed pair differs from the spec; an
// empty list means the interface is as the spec wants it. The spec must be normalized.
func differences(spec Spec, pod podState, host hostState) []string {
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }

	switch {
	case !pod.link.exists:
		return []string{fmt.Sprintf("interface %s does not exist in the Pod", spec.IfName)}
	case pod.link.kind != "veth":
		return []string{fmt.Sprintf("interface %s in the Pod is a %s, not a veth", spec.IfName, pod.link.kind)}
	case !host.link.exists:
		return []string{fmt.Sprintf("host interface %s does not exist", spec.HostIfName)}
	case !ownPair(pod.link, host.link):
		return []string{fmt.Sprintf("the peer of interface %s is not host interface %s", spec.IfName, spec.HostIfName)}
	}

	if spec.MTU != 0 && pod.link.mtu != spec.MTU {
		add("MTU of %s is %d, want %d", spec.IfName, pod.link.mtu, spec.MTU)
	}
	if spec.MTU != 0 && host.link.mtu != spec.MTU {
		add("MTU of host interface %s is %d, want %d", spec.HostIfName, host.link.mtu, spec.MTU)
	}
	if len(spec.MAC) > 0 && !bytes.Equal(pod.link.mac, spec.MAC) {
		add("MAC of %s is %s, want %s", spec.IfName, pod.link.mac, spec.MAC)
	}
	if !pod.link.up {
		add("interface %s is down", spec.IfName)
	}
	if !host.link.up {
		add("host interface %s is down", spec.HostIfName)
	}
	if host.ipv6Disabled != nil && !*host.ipv6Disabled {
		add("IPv6 is enabled on host interface %s", spec.HostIfName)
	}
	if spec.DisableTXChecksum && pod.txChecksum {
		add("TX checksum offload is on for %s", spec.IfName)
	}
	for _, ipc := range spec.IPs {
		if !containsPrefix(pod.addrs, ipc) {
			add("address %s is missing on %s", ipc.String(), spec.IfName)
		}
	}
	for _, r := range spec.Routes {
		want := routeState{dst: r.Dst, gw: r.GW, table: mainTable}
		if r.Table != nil {
			want.table = *r.Table
		}
		if !containsRoute(pod.routes, want) {
			add("route %s is missing on %s", describeRoute(want), spec.IfName)
		}
	}
	for _, gw := range spec.DefaultGateways {
		bits := 32
		if gw.To4() == nil {
			bits = 128
		}
		want := routeState{dst: normalizePrefix(net.IPNet{IP: gw.Mask(net.CIDRMask(0, bits)), Mask: net.CIDRMask(0, bits)}),
			gw: gw, table: mainTable}
		if !containsRoute(pod.routes, want) {
			add("default route via %s is missing on %s", gw, spec.IfName)
		}
	}
	return diffs
}

func containsPrefix(list []net.IPNet, p net.IPNet) bool {
	for _, q := range list {
		if samePrefix(p, q) {
			return true
		}
	}
	return false
}

// samePrefix compares two normalized prefixes (IPv4 in its 4-byte form).
func samePrefix(a, b net.IPNet) bool {
	aOnes, aBits := a.Mask.Size()
	bOnes, bBits := b.Mask.Size()
	return a.IP.Equal(b.IP) && aOnes == bOnes && aBits == bBits
}

func containsRoute(list []routeState, want routeState) bool {
	for _, r := range list {
		if samePrefix(r.dst, want.dst) && r.table == want.table &&
			(want.gw == nil && r.gw == nil || want.gw.Equal(r.gw)) {
			return true
		}
	}
	return false
}

func describeRoute(r routeState) string {
	s := r.dst.String()
	if r.gw != nil {
		s += " via " + r.gw.String()
	}
	if r.table != mainTable {
		s += fmt.Sprintf(" table %d", r.table)
	}
	return s
}

// interfaceOf reports the state of an attached pair in the shape callers use.
func interfaceOf(spec Spec, pod podState, host hostState) *Interface {
	return &Interface{
		Name:             spec.IfName,
		Sandbox:          spec.NetNSPath,
		ContainerIfIndex: pod.link.index,
		ContainerMAC:     pod.link.mac,
		HostIfName:       spec.HostIfName,
		HostIfIndex:      host.link.index,
		HostMAC:          host.link.mac,
		MTU:              pod.link.mtu,
	}
}
