// Package validation holds the rules of IPPool specs as pure functions, for the controller's
// admission webhook and for the allocator: ranges inside the subnet, no overlap (within a pool
// and across pools), update rules, the reserved-address rule and the allocatable count.
package validation

import (
	"fmt"
	"math/big"
	"net/netip"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// Subnet is a pool's parsed subnetInfo.
type Subnet struct {
	// Prefix is gateway/prefixLength, masked.
	Prefix netip.Prefix
	// Gateway is the subnet's router.
	Gateway netip.Addr
	// VLAN is subnetInfo.vlan.
	VLAN int
}

// ParseSubnet parses subnetInfo without judging it beyond what parsing needs.
func ParseSubnet(info v1beta1.SubnetInfo) (Subnet, error) {
	gw, err := parseAddr(info.Gateway)
	if err != nil {
		return Subnet{}, fmt.Errorf("gateway %q: %w", info.Gateway, err)
	}
	if info.PrefixLength < 1 || int(info.PrefixLength) > gw.BitLen() {
		return Subnet{}, fmt.Errorf("prefixLength %d: must be between 1 and %d for %s", info.PrefixLength, gw.BitLen(), familyOf(gw))
	}
	prefix := netip.PrefixFrom(gw, int(info.PrefixLength)).Masked()
	return Subnet{Prefix: prefix, Gateway: gw, VLAN: int(info.VLAN)}, nil
}

// hasNetworkAndBroadcast is false for point-to-point subnets (IPv4 /31 and /32 per RFC 3021,
// IPv6 /127 and /128 per RFC 6164), where every address is a host address.
func (s Subnet) hasNetworkAndBroadcast() bool {
	return s.Prefix.Bits() <= s.Prefix.Addr().BitLen()-2
}

// NetworkAddress is the first address of the subnet.
func (s Subnet) NetworkAddress() netip.Addr { return s.Prefix.Addr() }

// LastAddress is the last address of the subnet (the broadcast address for IPv4).
func (s Subnet) LastAddress() netip.Addr { return lastAddr(s.Prefix) }

// IsReserved reports whether ip may never be allocated in this subnet: the network address (the
// subnet-router anycast address in IPv6), the IPv4 broadcast address, and the gateway. The rule
// holds wherever ip appears, start/end ranges included.
func (s Subnet) IsReserved(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip == s.Gateway {
		return true
	}
	if !s.hasNetworkAndBroadcast() {
		return false
	}
	if ip == s.NetworkAddress() {
		return true
	}
	return ip.Is4() && ip == s.LastAddress()
}

// reserved lists the reserved addresses of the subnet, without duplicates.
func (s Subnet) reserved() []netip.Addr {
	out := []netip.Addr{s.Gateway}
	if s.hasNetworkAndBroadcast() {
		if n := s.NetworkAddress(); n != s.Gateway {
			out = append(out, n)
		}
		if b := s.LastAddress(); b.Is4() && b != s.Gateway {
			out = append(out, b)
		}
	}
	return out
}

// IsReserved applies Subnet.IsReserved to a subnetInfo. An unparsable subnetInfo reserves
// everything: nothing may be allocated from a subnet that cannot be understood.
func IsReserved(info v1beta1.SubnetInfo, ip netip.Addr) bool {
	s, err := ParseSubnet(info)
	if err != nil {
		return true
	}
	return s.IsReserved(ip)
}

// Range is a parsed, inclusive address range.
type Range struct {
	Start, End netip.Addr
	// CIDR is set (IsValid) when the range was written as a CIDR.
	CIDR netip.Prefix
}

// String writes the range as the user did: a CIDR, or start-end.
func (r Range) String() string {
	if r.CIDR.IsValid() {
		return r.CIDR.String()
	}
	return r.Start.String() + "-" + r.End.String()
}

// Contains reports whether ip lies in the range.
func (r Range) Contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.BitLen() == r.Start.BitLen() && r.Start.Compare(ip) <= 0 && ip.Compare(r.End) <= 0
}

// Overlaps reports whether the two ranges share an address.
func (r Range) Overlaps(o Range) bool {
	return r.Start.BitLen() == o.Start.BitLen() && r.Start.Compare(o.End) <= 0 && o.Start.Compare(r.End) <= 0
}

// Size is the number of addresses in the range.
func (r Range) Size() *big.Int {
	n := new(big.Int).Sub(addrInt(r.End), addrInt(r.Start))
	return n.Add(n, big.NewInt(1))
}

// sameAddresses reports whether two ranges cover the same addresses, however written.
func (r Range) sameAddresses(o Range) bool {
	return r.Start == o.Start && r.End == o.End
}

// ParseRange parses one range without judging it against a subnet.
func ParseRange(r v1beta1.IPRange) (Range, error) {
	if r.CIDR != "" {
		if r.Start != "" || r.End != "" {
			return Range{}, fmt.Errorf("give either cidr or start and end, not both")
		}
		p, err := netip.ParsePrefix(r.CIDR)
		if err != nil {
			return Range{}, fmt.Errorf("cidr %q is not a CIDR such as 10.10.1.0/26", r.CIDR)
		}
		if p.Addr().Is4In6() {
			return Range{}, fmt.Errorf("cidr %q: write IPv4 networks in dotted form, not IPv4-mapped IPv6", r.CIDR)
		}
		if p != p.Masked() {
			return Range{}, fmt.Errorf("cidr %q has host bits set; did you mean %s?", r.CIDR, p.Masked())
		}
		return Range{Start: p.Addr(), End: lastAddr(p), CIDR: p}, nil
	}
	if r.Start == "" || r.End == "" {
		return Range{}, fmt.Errorf("give cidr, or both start and end")
	}
	start, err := parseAddr(r.Start)
	if err != nil {
		return Range{}, fmt.Errorf("start %q: %w", r.Start, err)
	}
	end, err := parseAddr(r.End)
	if err != nil {
		return Range{}, fmt.Errorf("end %q: %w", r.End, err)
	}
	if start.BitLen() != end.BitLen() {
		return Range{}, fmt.Errorf("start %s and end %s are of different address families", start, end)
	}
	if end.Less(start) {
		return Range{}, fmt.Errorf("end %s is before start %s", end, start)
	}
	return Range{Start: start, End: end}, nil
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("not an IP address")
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("must not carry a zone")
	case a.Is4In6():
		return netip.Addr{}, fmt.Errorf("write IPv4 addresses in dotted form (%s), not IPv4-mapped IPv6", a.Unmap())
	}
	return a, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		hostBits := max(0, min(8, (i+1)*8-bits))
		b[i] |= byte(1<<hostBits - 1)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func addrInt(a netip.Addr) *big.Int {
	return new(big.Int).SetBytes(a.AsSlice())
}

func familyOf(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
