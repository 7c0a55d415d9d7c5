package benchharness

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// PortRecord identifies an OVS port as vswitchd knows it: a port recreated under the same name
// gets new row UUIDs and, usually, another OpenFlow port number.
type PortRecord struct {
	PortUUID  string `json:"port_uuid"`
	IfaceUUID string `json:"interface_uuid"`
	OFPort    string `json:"ofport"`
}

// Ports returns the records of every port on the Node's OVS, by name.
func (n *Node) Ports(ctx context.Context) (map[string]PortRecord, error) {
	ports, err := n.Vsctl(ctx, "--format=csv", "--no-headings", "--columns=name,_uuid", "list", "Port")
	if err != nil {
		return nil, err
	}
	ifaces, err := n.Vsctl(ctx, "--format=csv", "--no-headings", "--columns=name,_uuid,ofport", "list", "Interface")
	if err != nil {
		return nil, err
	}
	out := map[string]PortRecord{}
	for _, line := range strings.Split(strings.TrimSpace(ports), "\n") {
		if f := strings.Split(line, ","); len(f) == 2 {
			out[unquote(f[0])] = PortRecord{PortUUID: f[1]}
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(ifaces), "\n") {
		f := strings.Split(line, ",")
		if len(f) != 3 {
			continue
		}
		name := unquote(f[0])
		if r, ok := out[name]; ok {
			r.IfaceUUID, r.OFPort = f[1], f[2]
			out[name] = r
		}
	}
	return out, nil
}

func unquote(s string) string { return strings.Trim(s, `"`) }

// PodAddresses returns the addresses of every interface but lo in a sandbox's namespace, as
// "ifname address/prefix mac", sorted.
func PodAddresses(netnsName string) ([]string, error) {
	h, err := netns.GetFromName(netnsName)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", netnsName, err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	links, err := nl.LinkList()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range links {
		if l.Attrs().Name == "lo" {
			continue
		}
		addrs, err := nl.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			out = append(out, fmt.Sprintf("%s %s %s", l.Attrs().Name, a.IPNet, l.Attrs().HardwareAddr))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Diff lists the keys whose values differ between before and after (missing on one side
// included), sorted.
func Diff[V comparable](before, after map[string]V) []string {
	var out []string
	for k, v := range before {
		if w, ok := after[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
