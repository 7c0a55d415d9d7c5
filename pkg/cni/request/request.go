// Package request parses what a Pod may ask for on one secondary interface, the same way whether
// it comes from the k8s.v1.cni.cncf.io/networks annotation or from a CNI runtimeConfig: a MAC
// address and static IP addresses.
package request

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ParseMAC parses a MAC address an interface can use: six bytes, unicast (the group bit of the
// first byte clear) and not all zeros. Multicast or broadcast source MACs are dropped by switches,
// and the kernel refuses them on an interface.
func ParseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("not a MAC address (write six hex bytes, e.g. 02:00:00:00:00:01)")
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("must be a 6-byte Ethernet MAC address, not %d bytes", len(mac))
	}
	if mac[0]&0x01 != 0 {
		return nil, fmt.Errorf("is a multicast address (the lowest bit of the first byte is set); an interface needs a unicast MAC")
	}
	if isZero(mac) {
		return nil, fmt.Errorf("the all-zero MAC address cannot be assigned to an interface")
	}
	return mac, nil
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// IP is a requested static address. Users write either an address with its prefix length
// ("10.1.1.5/24", the form CNI's static IPAM takes) or a bare address ("10.1.1.5", whose prefix
// then comes from the network's subnet).
type IP struct {
	// Addr is the address itself.
	Addr netip.Addr
	// Bits is the prefix length written by the user, or -1 for a bare address.
	Bits int
}

// HasPrefix reports whether the user gave a prefix length.
func (ip IP) HasPrefix() bool { return ip.Bits >= 0 }

// Prefix returns the address with its prefix length; valid only when HasPrefix.
func (ip IP) Prefix() netip.Prefix { return netip.PrefixFrom(ip.Addr, ip.Bits) }

// String returns the address in the form it was requested.
func (ip IP) String() string {
	if ip.HasPrefix() {
		return ip.Prefix().String()
	}
	return ip.Addr.String()
}

// ParseIP parses a requested static address: an IP address or an address with a prefix length.
// Zones ("fe80::1%eth0") and IPv4-mapped IPv6 forms are refused: they do not describe an address
// to configure on an interface.
func ParseIP(s string) (IP, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return IP{}, fmt.Errorf("not an IP address with prefix length (e.g. 10.1.1.5/24 or 2001:db8::5/64)")
		}
		if err := checkAddr(p.Addr()); err != nil {
			return IP{}, err
		}
		return IP{Addr: p.Addr(), Bits: p.Bits()}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return IP{}, fmt.Errorf("not an IP address (e.g. 10.1.1.5, 10.1.1.5/24 or 2001:db8::5/64)")
	}
	if err := checkAddr(a); err != nil {
		return IP{}, err
	}
	return IP{Addr: a, Bits: -1}, nil
}

// ParseAddr parses a plain IP address (a gateway, a route next hop) with the same rules as ParseIP.
func ParseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("not an IP address")
	}
	if err := checkAddr(a); err != nil {
		return netip.Addr{}, err
	}
	return a, nil
}

func checkAddr(a netip.Addr) error {
	switch {
	case a.Zone() != "":
		return fmt.Errorf("must not carry a zone (%%%s)", a.Zone())
	case a.Is4In6():
		return fmt.Errorf("write IPv4 addresses in dotted form (%s), not IPv4-mapped IPv6", a.Unmap())
	case a.IsUnspecified():
		return fmt.Errorf("the unspecified address %s cannot be assigned", a)
	case a.IsMulticast():
		return fmt.Errorf("%s is a multicast address", a)
	}
	return nil
}
