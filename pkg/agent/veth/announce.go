package veth

import (
	"encoding/binary"
	"fmt"
	"net"
)

// Ethernet types and constants of the two announcements.
const (
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd

	ethHeaderLen   = 14
	minEtherFrame  = 60 // without FCS; shorter frames are padded by the sender
	arpRequest     = 1
	ipProtoICMPv6  = 58
	icmpv6NA       = 136
	naFlagOverride = 0x20000000
	ndOptTargetLL  = 2
)

var (
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// allNodesMAC is the Ethernet group of ff02::1 (33:33 followed by its last 32 bits).
	allNodesMAC = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}
)

// announcement returns the frame that tells the segment "ip is at mac": a gratuitous ARP request
// for IPv4, an unsolicited neighbour advertisement with the override flag for IPv6 (RFC 4861
// section 7.2.6). Switches learn the MAC from it and neighbours update stale cache entries.
func announcement(mac net.HardwareAddr, ip net.IP) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("announce %s: %s is not an Ethernet address", ip, mac)
	}
	if v4 := ip.To4(); v4 != nil {
		return gratuitousARP(mac, v4), nil
	}
	if len(ip) == net.IPv6len {
		return unsolicitedNA(mac, ip), nil
	}
	return nil, fmt.Errorf("announce %v: not an IP address", ip)
}

func ethernetHeader(frame []byte, dst, src net.HardwareAddr, etherType uint16) {
	copy(frame[0:6], dst)
	copy(frame[6:12], src)
	binary.BigEndian.PutUint16(frame[12:14], etherType)
}

// gratuitousARP builds an ARP request whose sender and target protocol addresses are both ip,
// broadcast; requests are understood by more stacks than gratuitous replies.
func gratuitousARP(mac net.HardwareAddr, ip net.IP) []byte {
	frame := make([]byte, minEtherFrame)
	ethernetHeader(frame, broadcastMAC, mac, etherTypeARP)
	arp := frame[ethHeaderLen:]
	binary.BigEndian.PutUint16(arp[0:2], 1) // hardware: Ethernet
	binary.BigEndian.PutUint16(arp[2:4], 0x0800)
	arp[4], arp[5] = 6, 4
	binary.BigEndian.PutUint16(arp[6:8], arpRequest)
	copy(arp[8:14], mac)
	copy(arp[14:18], ip)
	// arp[18:24], the target hardware address, stays zero: it is unknown by definition.
	copy(arp[24:28], ip)
	return frame
}

// unsolicitedNA builds an IPv6 neighbour advertisement for ip, sent from ip to all nodes
// (ff02::1) with hop limit 255 (receivers drop NDP messages with any other), the override flag
// and the target link-layer address option.
func unsolicitedNA(mac net.HardwareAddr, ip net.IP) []byte {
	const icmpLen = 4 + 4 + 16 + 8 // type/code/checksum, flags, target, option
	allNodes := net.ParseIP("ff02::1")

	frame := make([]byte, ethHeaderLen+40+icmpLen)
	ethernetHeader(frame, allNodesMAC, mac, etherTypeIPv6)

	ip6 := frame[ethHeaderLen:]
	ip6[0] = 0x60 // version 6, traffic class and flow label zero
	binary.BigEndian.PutUint16(ip6[4:6], icmpLen)
	ip6[6] = ipProtoICMPv6
	ip6[7] = 255
	copy(ip6[8:24], ip)
	copy(ip6[24:40], allNodes)

	icmp := ip6[40:]
	icmp[0] = icmpv6NA
	binary.BigEndian.PutUint32(icmp[4:8], naFlagOverride)
	copy(icmp[8:24], ip)
	icmp[24], icmp[25] = ndOptTargetLL, 1 // option length in units of 8 bytes
	copy(icmp[26:32], mac)
	binary.BigEndian.PutUint16(icmp[2:4], icmpv6Checksum(ip, allNodes, icmp))
	return frame
}

// icmpv6Checksum is the Internet checksum of the IPv6 pseudo-header (RFC 8200 section 8.1)
// followed by the ICMPv6 message, whose checksum field must be zero.
func icmpv6Checksum(src, dst net.IP, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i : i+2]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src.To16())
	add(dst.To16())
	var lengthAndNext [8]byte
	binary.BigEndian.PutUint32(lengthAndNext[0:4], uint32(len(msg)))
	lengthAndNext[7] = ipProtoICMPv6
	add(lengthAndNext[:])
	add(msg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
