package veth

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/vishvananda/netlink"
)

// disableIPv6Sysctl is the per-interface switch that removes IPv6 (and with it router
// solicitations, MLD reports and DAD probes) from an interface.
const disableIPv6Sysctl = "net/ipv6/conf/%s/disable_ipv6"

// readLink reports the link called name in the calling thread's network namespace; a missing link
// is not an error (exists is false).
func readLink(name string) (netlink.Link, linkState, error) {
	link, err := netlinksafe.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil, linkState{}, nil
		}
		return nil, linkState{}, fmt.Errorf("look up %s: %w", name, err)
	}
	attrs := link.Attrs()
	return link, linkState{
		exists:    true,
		kind:      link.Type(),
		index:     attrs.Index,
		peerIndex: attrs.ParentIndex,
		mtu:       attrs.MTU,
		mac:       attrs.HardwareAddr,
		up:        attrs.Flags&net.FlagUp != 0,
	}, nil
}

// readPodState reads the container end ifName and its addresses, routes and TX checksum
// offload, in the calling thread's network namespace (the Pod's).
func readPodState(ifName string) (podState, error) {
	link, state, err := readLink(ifName)
	if err != nil || !state.exists {
		return podState{link: state}, err
	}
	pod := podState{link: state}

	addrs, err := netlinksafe.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return pod, fmt.Errorf("list addresses of %s: %w", ifName, err)
	}
	for _, a := range addrs {
		pod.addrs = append(pod.addrs, normalizePrefix(*a.IPNet))
	}

	// Table UNSPEC with the table filter selects every table, not only the main one.
	filter := &netlink.Route{LinkIndex: state.index}
	routes, err := netlinksafe.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return pod, fmt.Errorf("list routes of %s: %w", ifName, err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue // not an IP route
		}
		pod.routes = append(pod.routes, routeState{dst: normalizePrefix(*r.Dst), gw: normalizeIP(r.Gw), table: r.Table})
	}

	// Only a veth can be ours; the offload state of anything else is of no interest.
	if state.kind == "veth" {
		if pod.txChecksum, err = txChecksum(ifName); err != nil {
			return pod, err
		}
	}
	return pod, nil
}

// readHostState reads the host end hostIfName in the calling thread's network namespace.
func readHostState(hostIfName string) (hostState, error) {
	_, state, err := readLink(hostIfName)
	if err != nil || !state.exists {
		return hostState{link: state}, err
	}
	host := hostState{link: state}
	value, err := sysctl.Sysctl(fmt.Sprintf(disableIPv6Sysctl, hostIfName))
	switch {
	case errors.Is(err, os.ErrNotExist):
		// The kernel runs without IPv6: there is nothing to disable.
	case err != nil:
		return host, fmt.Errorf("read IPv6 state of %s: %w", hostIfName, err)
	default:
		disabled := value == "1"
		host.ipv6Disabled = &disabled
	}
	return host, nil
}
