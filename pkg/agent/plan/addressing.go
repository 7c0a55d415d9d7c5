package plan

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/podvlan/podvlan/pkg/cni/netconf"
	"github.com/podvlan/podvlan/pkg/ipam"
)

// Addressing is what the Pod end of an attachment carries once its addresses are known: the
// addresses and the routes, each route with its next hop resolved. The CNI result, the kernel
// configuration and CHECK are all derived from one Addressing, so they cannot disagree.
type Addressing struct {
	IPs []ipam.IPConfig
	// Routes have their next hop resolved; a route whose GW is the zero Addr is on-link.
	Routes []netconf.Route
}

// Address applies the CNI rule for routes once: a route without a next hop goes through the
// first gateway of its family among ips (and stays on-link when there is none).
func Address(routes []netconf.Route, ips []ipam.IPConfig) Addressing {
	gateways := firstGateways(ips)
	out := Addressing{IPs: ips, Routes: make([]netconf.Route, 0, len(routes))}
	for _, r := range routes {
		resolved := netconf.Route{Dst: r.Dst.Masked(), GW: r.GW}
		if !resolved.GW.IsValid() {
			resolved.GW = gateways[r.Dst.Addr().Unmap().Is4()]
		}
		out.Routes = append(out.Routes, resolved)
	}
	return out
}

// Addressing is Address for the attachment's own routes.
func (a *Attachment) Addressing(ips []ipam.IPConfig) Addressing { return Address(a.Routes, ips) }

// firstGateways returns the first gateway of each family (keyed by "is IPv4") among ips.
func firstGateways(ips []ipam.IPConfig) map[bool]netip.Addr {
	out := map[bool]netip.Addr{}
	for _, ip := range ips {
		gw := ip.Gateway.Unmap()
		if !gw.IsValid() {
			continue
		}
		if _, seen := out[gw.Is4()]; !seen {
			out[gw.Is4()] = gw
		}
	}
	return out
}

// Gateways are the first gateway of each family, IPv4 first: what a port records so that CHECK
// resolves the same next hops again (see Recorded).
func (x Addressing) Gateways() []netip.Addr {
	gws := firstGateways(x.IPs)
	var out []netip.Addr
	for _, is4 := range []bool{true, false} {
		if gw, ok := gws[is4]; ok {
			out = append(out, gw)
		}
	}
	return out
}

// Recorded rebuilds the addresses a port records (CIDR strings) with the gateways it records:
// each address gets the gateway of its family, which resolves routes as the original did.
func Recorded(addresses, gateways []string) ([]ipam.IPConfig, error) {
	gws := map[bool]netip.Addr{}
	for _, s := range gateways {
		gw, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("recorded gateway %q: %w", s, err)
		}
		gws[gw.Unmap().Is4()] = gw.Unmap()
	}
	out := make([]ipam.IPConfig, 0, len(addresses))
	for _, s := range addresses {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("recorded address %q: %w", s, err)
		}
		out = append(out, ipam.IPConfig{Address: p, Gateway: gws[p.Addr().Unmap().Is4()]})
	}
	return out, nil
}

// KernelIPs are the addresses as the kernel step takes them.
func (x Addressing) KernelIPs() []net.IPNet {
	out := make([]net.IPNet, 0, len(x.IPs))
	for _, ip := range x.IPs {
		out = append(out, IPNet(ip.Address))
	}
	return out
}

// KernelRoutes are the routes as the kernel step takes them (and as the CNI result lists them).
func (x Addressing) KernelRoutes() []*types.Route {
	out := make([]*types.Route, 0, len(x.Routes))
	for _, r := range x.Routes {
		out = append(out, &types.Route{Dst: IPNet(r.Dst), GW: IP(r.GW)})
	}
	return out
}

// Result is the CNI result of the attachment. iface, when not nil, is the interface the
// addresses are on (index 0); IPAM-only results list no interface.
func (x Addressing) Result(iface *current.Interface, dns types.DNS) *current.Result {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion, DNS: dns, Routes: x.KernelRoutes()}
	var index *int
	if iface != nil {
		res.Interfaces = []*current.Interface{iface}
		index = current.Int(0)
	}
	for _, ip := range x.IPs {
		res.IPs = append(res.IPs, &current.IPConfig{Interface: index, Address: IPNet(ip.Address), Gateway: IP(ip.Gateway)})
	}
	return res
}

// AddressStrings are the addresses in CIDR notation, as ports record them.
func (x Addressing) AddressStrings() []string {
	out := make([]string, 0, len(x.IPs))
	for _, ip := range x.IPs {
		out = append(out, ip.Address.String())
	}
	return out
}

// IPNet converts an address with prefix length to the net form the CNI and netlink libraries
// take; an IPv4-mapped IPv6 address becomes plain IPv4. Host bits are kept.
func IPNet(p netip.Prefix) net.IPNet {
	addr := p.Addr().Unmap()
	bits := p.Bits()
	if p.Addr().Is4In6() && bits >= 96 {
		bits -= 96
	}
	return net.IPNet{IP: net.IP(addr.AsSlice()), Mask: net.CIDRMask(bits, addr.BitLen())}
}

// IP converts an address to the net form; the zero Addr becomes nil.
func IP(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return net.IP(a.Unmap().AsSlice())
}
