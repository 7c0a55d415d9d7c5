package veth

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

func TestGratuitousARPFrame(t *testing.T) {
	mac := mustMAC(t, "02:aa:bb:cc:dd:ee")
	ip := net.ParseIP("10.0.0.5")
	frame, err := announcement(mac, ip)
	if err != nil {
		t.Fatalf("announcement() error: %v", err)
	}
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{name: "sent to broadcast", got: frame[0:6], want: broadcastMAC},
		{name: "sent from the interface MAC", got: frame[6:12], want: mac},
		{name: "ethertype ARP", got: frame[12:14], want: []byte{0x08, 0x06}},
		{name: "Ethernet/IPv4 request", got: frame[14:22], want: []byte{0, 1, 0x08, 0, 6, 4, 0, 1}},
		{name: "sender hardware address is the MAC", got: frame[22:28], want: mac},
		{name: "sender protocol address is the IP", got: frame[28:32], want: ip.To4()},
		{name: "target hardware address is unknown", got: frame[32:38], want: make([]byte, 6)},
		{name: "target protocol address is the IP too", got: frame[38:42], want: ip.To4()},
		{name: "padded with zeros to the Ethernet minimum", got: frame[42:], want: make([]byte, 60-42)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, tt.want) {
				t.Errorf("got % x, want % x", tt.got, tt.want)
			}
		})
	}
}

func TestUnsolicitedNAFrame(t *testing.T) {
	mac := mustMAC(t, "02:aa:bb:cc:dd:ee")
	ip := net.ParseIP("fd00::5")
	allNodes := net.ParseIP("ff02::1")
	frame, err := announcement(mac, ip)
	if err != nil {
		t.Fatalf("announcement() error: %v", err)
	}
	if len(frame) != 14+40+32 {
		t.Fatalf("frame is %d bytes, want %d", len(frame), 14+40+32)
	}

	// The ICMPv6 message as golang.org/x/net marshals it, checksum included.
	body := make([]byte, 28)
	binary.BigEndian.PutUint32(body[0:4], 0x20000000)
	copy(body[4:20], ip)
	body[20], body[21] = 2, 1
	copy(body[22:28], mac)
	want, err := (&icmp.Message{Type: ipv6.ICMPTypeNeighborAdvertisement, Body: &icmp.RawBody{Data: body}}).
		Marshal(icmp.IPv6PseudoHeader(ip, allNodes))
	if err != nil {
		t.Fatalf("marshal reference message: %v", err)
	}

	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{name: "sent to the all-nodes Ethernet group", got: frame[0:6], want: mustMAC(t, "33:33:00:00:00:01")},
		{name: "sent from the interface MAC", got: frame[6:12], want: mac},
		{name: "ethertype IPv6", got: frame[12:14], want: []byte{0x86, 0xdd}},
		{name: "IPv6 version with zero class and flow", got: frame[14:18], want: []byte{0x60, 0, 0, 0}},
		{name: "payload of 32 bytes of ICMPv6 with hop limit 255", got: frame[18:22], want: []byte{0, 32, 58, 255}},
		{name: "source is the announced address", got: frame[22:38], want: ip},
		{name: "destination is all nodes", got: frame[38:54], want: allNodes},
		{name: "ICMPv6 message equals the reference, checksum included", got: frame[54:], want: want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, tt.want) {
				t.Errorf("got % x, want % x", tt.got, tt.want)
			}
		})
	}
}

func TestAnnouncementRejects(t *testing.T) {
	tests := []struct {
		name    string
		mac     net.HardwareAddr
		ip      net.IP
		wantErr string
	}{
		{name: "a MAC that is not Ethernet", mac: mustMAC(t, "02:00:00:00:00:00:00:01"), ip: net.ParseIP("10.0.0.1"), wantErr: "not an Ethernet address"},
		{name: "no IP", mac: mustMAC(t, "02:00:00:00:00:01"), ip: nil, wantErr: "not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := announcement(tt.mac, tt.ip)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("announcement() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
