package veth

import (
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func mustPrefix(t testing.TB, s string) net.IPNet {
	t.Helper()
	ip, p, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	p.IP = ip
	return *p
}

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	mac, err := net.ParseMAC(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return mac
}

func validSpec(t testing.TB) Spec {
	return Spec{
		NetNSPath:  "/var/run/netns/pod",
		IfName:     "eth1",
		HostIfName: "pvl0123456789ab",
		MTU:        1500,
		MAC:        mustMAC(t, "02:00:00:00:00:01"),
		IPs: []net.IPNet{
			mustPrefix(t, "10.0.0.5/24"),
			mustPrefix(t, "fd00::5/64"),
		},
		Routes: []*types.Route{{Dst: mustPrefix(t, "10.1.0.0/16"), GW: net.ParseIP("10.0.0.1")}, {Dst: mustPrefix(t, "fd01::/64"), GW: net.ParseIP("fd00::2")}},
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Spec)
		wantErr string // empty: valid
	}{
		{name: "a complete dual-stack spec is valid", mutate: func(*Spec) {}},
		{name: "MTU 0 keeps the default and is valid", mutate: func(s *Spec) { s.MTU = 0 }},
		{name: "no MAC lets the kernel choose and is valid", mutate: func(s *Spec) { s.MAC = nil }},
		{name: "no addresses is valid", mutate: func(s *Spec) { s.IPs = nil; s.Routes = nil }},
		{name: "an IPv4 address in 16-byte form is valid", mutate: func(s *Spec) {
			s.IPs = []net.IPNet{{IP: net.ParseIP("10.0.0.5"), Mask: net.CIDRMask(120, 128)}}
		}},
		{name: "empty netns path", mutate: func(s *Spec) { s.NetNSPath = "" }, wantErr: "netnsPath: must not be empty"},
		{name: "empty interface name", mutate: func(s *Spec) { s.IfName = "" }, wantErr: `ifName: "" must not be empty`},
		{name: "interface name longer than 15 bytes", mutate: func(s *Spec) { s.IfName = "abcdefghijklmnop" }, wantErr: `ifName: "abcdefghijklmnop" must be at most 15 characters`},
		{name: "interface name with a slash", mutate: func(s *Spec) { s.IfName = "eth/1" }, wantErr: `ifName: "eth/1" must not contain '/'`},
		{name: "interface name with a space", mutate: func(s *Spec) { s.IfName = "eth 1" }, wantErr: `ifName: "eth 1" must not contain white space`},
		{name: "interface name dot-dot", mutate: func(s *Spec) { s.IfName = ".." }, wantErr: `ifName: ".." must not be ".."`},
		{name: "empty host interface name", mutate: func(s *Spec) { s.HostIfName = "" }, wantErr: `hostIfName: "" must not be empty`},
		{name: "MTU below the IPv4 minimum", mutate: func(s *Spec) { s.MTU = 67 }, wantErr: "mtu: 67 is outside [68, 65535]"},
		{name: "MTU above what a veth takes", mutate: func(s *Spec) { s.MTU = 65536 }, wantErr: "mtu: 65536 is outside [68, 65535]"},
		{name: "MTU below the IPv6 minimum with an IPv6 address", mutate: func(s *Spec) { s.MTU = 1279 }, wantErr: "mtu: 1279 is below 1280, the minimum for IPv6"},
		{name: "small MTU without IPv6 is valid", mutate: func(s *Spec) { s.MTU = 576; s.IPs = s.IPs[:1]; s.Routes = s.Routes[:1] }},
		{name: "multicast MAC", mutate: func(s *Spec) { s.MAC = mustMAC(t, "01:00:5e:00:00:01") }, wantErr: "mac: 01:00:5e:00:00:01 is a multicast address"},
		{name: "zero MAC", mutate: func(s *Spec) { s.MAC = mustMAC(t, "00:00:00:00:00:00") }, wantErr: "mac: 00:00:00:00:00:00 is the zero address"},
		{name: "MAC of 8 bytes", mutate: func(s *Spec) { s.MAC = mustMAC(t, "02:00:00:00:00:00:00:01") }, wantErr: "is not a 6-byte Ethernet address"},
		{name: "address without IP", mutate: func(s *Spec) { s.IPs[0].IP = nil }, wantErr: "ips[0]: missing or malformed IP address"},
		{name: "address without mask", mutate: func(s *Spec) { s.IPs[0].Mask = nil }, wantErr: "ips[0]: 10.0.0.5 has no valid prefix length"},
		{name: "IPv6 address with an IPv4 mask", mutate: func(s *Spec) { s.IPs[1].Mask = net.CIDRMask(24, 32) }, wantErr: "ips[1]: fd00::5 has an IPv4 prefix length"},
		{name: "same address twice", mutate: func(s *Spec) { s.IPs = append(s.IPs, mustPrefix(t, "10.0.0.5/16")) }, wantErr: "ips[2]: 10.0.0.5 repeats ips[0]"},
		{name: "null route", mutate: func(s *Spec) { s.Routes[1] = nil }, wantErr: "routes[1]: must not be null"},
		{name: "route without destination", mutate: func(s *Spec) { s.Routes[0].Dst = net.IPNet{} }, wantErr: "routes[0].dst: missing or malformed IP address"},
		{name: "IPv4 gateway on an IPv6 route", mutate: func(s *Spec) { s.Routes[1].GW = net.ParseIP("10.0.0.1") }, wantErr: "routes[1].gw: 10.0.0.1 is not an IPv6 address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := validSpec(t)
			tt.mutate(&spec)
			err := spec.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want no error", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate() = nil, want an error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate() = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestSpecValidateReportsEveryProblem(t *testing.T) {
	spec := validSpec(t)
	spec.IfName = ""
	spec.MTU = 10
	err := spec.Validate()
	if err == nil || !strings.Contains(err.Error(), "ifName:") || !strings.Contains(err.Error(), "mtu:") {
		t.Fatalf("Validate() = %v, want both the ifName and the mtu problem", err)
	}
}

func TestNormalizedUsesFourByteIPv4(t *testing.T) {
	spec := Spec{
		IPs:    []net.IPNet{{IP: net.ParseIP("10.0.0.5"), Mask: net.CIDRMask(120, 128)}},
		Routes: []*types.Route{{Dst: net.IPNet{IP: net.ParseIP("0.0.0.0"), Mask: net.CIDRMask(96, 128)}, GW: net.ParseIP("10.0.0.2")}},
	}
	got := spec.normalized()
	if ip := got.IPs[0]; len(ip.IP) != 4 || ip.String() != "10.0.0.5/24" {
		t.Errorf("address = %v (IP %d bytes), want 10.0.0.5/24 in 4 bytes", ip.String(), len(ip.IP))
	}
	if r := got.Routes[0]; r.Dst.String() != "0.0.0.0/0" || len(r.GW) != 4 {
		t.Errorf("route = %v via %v, want 0.0.0.0/0 via a 4-byte gateway", r.Dst.String(), r.GW)
	}
	if len(spec.Routes[0].GW) != 16 {
		t.Errorf("normalized() changed the original spec's route")
	}
}
