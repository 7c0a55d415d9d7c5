package ovs

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ManagementInterfaces returns the interfaces of the caller's network namespace that carry the
// Node's own traffic, mapped to the reason: those holding one of nodeIPs or a default route (IPv4
// or IPv6, in any routing table), and the devices beneath them (bridge and bond members, the
// parent of a VLAN or macvlan device). Making one of them an OVS uplink would cut the Node off.
func ManagementInterfaces(nodeIPs []net.IP) (map[string]string, error) {
	return ManagementInterfacesAt("", nodeIPs)
}

// ManagementInterfacesAt is ManagementInterfaces for the network namespace at nsPath (the
// caller's own when empty).
func ManagementInterfacesAt(nsPath string, nodeIPs []net.IP) (map[string]string, error) {
	ips := make([]netip.Addr, 0, len(nodeIPs))
	for _, ip := range nodeIPs {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return nil, fmt.Errorf("invalid node IP %v", ip)
		}
		ips = append(ips, a.Unmap())
	}
	h, err := netlinkHandle(nsPath)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	facts, err := gatherLinkFacts(h)
	if err != nil {
		return nil, err
	}
	return managementReasons(facts, ips), nil
}

// netlinkHandle opens netlink in the namespace at nsPath, or in the caller's when it is empty.
func netlinkHandle(nsPath string) (*netlink.Handle, error) {
	if nsPath == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("open netlink: %w", err)
		}
		return h, nil
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("open netlink in %s: %w", nsPath, err)
	}
	return h, nil
}

// linkFacts is what managementReasons needs to know about the namespace's interfaces.
type linkFacts struct {
	links         []linkFact
	addrs         map[int][]netip.Addr // by link index
	defaultRoutes []defaultRoute
}

type linkFact struct {
	Index       int
	Name        string
	MasterIndex int // the bridge or bond it is enslaved to, 0 if none
	// LowerIndex is the device a VLAN/macvlan/ipvlan device sits on, 0 if none. (IFLA_LINK of a
	// veth names its peer, possibly in another namespace, so it is not recorded here.)
	LowerIndex int
}

type defaultRoute struct {
	LinkIndex int
	IPv6      bool
	Table     int
}

func gatherLinkFacts(h *netlink.Handle) (linkFacts, error) {
	links, err := h.LinkList()
	if err != nil {
		return linkFacts{}, fmt.Errorf("list links: %w", err)
	}
	facts := linkFacts{addrs: map[int][]netip.Addr{}}
	for _, l := range links {
		a := l.Attrs()
		f := linkFact{Index: a.Index, Name: a.Name, MasterIndex: a.MasterIndex}
		switch l.Type() {
		case "vlan", "macvlan", "macvtap", "ipvlan", "ipvtap":
			f.LowerIndex = a.ParentIndex
		}
		facts.links = append(facts.links, f)
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return linkFacts{}, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			facts.addrs[a.LinkIndex] = append(facts.addrs[a.LinkIndex], ip.Unmap())
		}
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return linkFacts{}, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if !isDefaultRoute(r) {
			continue
		}
		v6 := r.Family == netlink.FAMILY_V6
		if r.LinkIndex > 0 {
			facts.defaultRoutes = append(facts.defaultRoutes, defaultRoute{LinkIndex: r.LinkIndex, IPv6: v6, Table: r.Table})
		}
		for _, nh := range r.MultiPath {
			facts.defaultRoutes = append(facts.defaultRoutes, defaultRoute{LinkIndex: nh.LinkIndex, IPv6: v6, Table: r.Table})
		}
	}
	return facts, nil
}

func isDefaultRoute(r netlink.Route) bool {
	if r.Type != unix.RTN_UNICAST {
		return false
	}
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}

// managementReasons decides which interfaces carry the Node's traffic. An interface holding a
// node IP or a default route is one; so is every device beneath it, because taking a bridge
// member, bond slave or VLAN parent away takes the upper device's traffic with it.
func managementReasons(facts linkFacts, nodeIPs []netip.Addr) map[string]string {
	byIndex := map[int]linkFact{}
	for _, l := range facts.links {
		byIndex[l.Index] = l
	}
	direct := map[int][]string{}
	for _, l := range facts.links {
		for _, ip := range facts.addrs[l.Index] {
			if slices.Contains(nodeIPs, ip) {
				direct[l.Index] = append(direct[l.Index], "holds node IP "+ip.String())
			}
		}
	}
	for _, r := range facts.defaultRoutes {
		if _, ok := byIndex[r.LinkIndex]; !ok {
			continue
		}
		family := "IPv4"
		if r.IPv6 {
			family = "IPv6"
		}
		reason := "carries the " + family + " default route"
		if r.Table != unix.RT_TABLE_MAIN && r.Table != 0 {
			reason += fmt.Sprintf(" of routing table %d", r.Table)
		}
		if !slices.Contains(direct[r.LinkIndex], reason) {
			direct[r.LinkIndex] = append(direct[r.LinkIndex], reason)
		}
	}

	reasons := map[string]string{}
	queue := make([]int, 0, len(direct))
	for idx, rs := range direct {
		reasons[byIndex[idx].Name] = strings.Join(rs, " and ")
		queue = append(queue, idx)
	}
	sort.Ints(queue) // deterministic wording when a device sits beneath two management devices
	for len(queue) > 0 {
		upper := byIndex[queue[0]]
		queue = queue[1:]
		for _, l := range facts.links {
			var relation string
			switch {
			case l.MasterIndex == upper.Index && l.MasterIndex != 0:
				relation = "is a member of " + upper.Name
			case upper.LowerIndex == l.Index && upper.LowerIndex != 0:
				relation = "is the lower device of " + upper.Name
			default:
				continue
			}
			if _, seen := reasons[l.Name]; seen {
				continue
			}
			reasons[l.Name] = fmt.Sprintf("%s, which %s", relation, reasons[upper.Name])
			queue = append(queue, l.Index)
		}
	}
	return reasons
}
