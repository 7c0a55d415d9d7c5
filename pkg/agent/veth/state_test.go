package veth

import (
	"net"
	"strings"
	"testing"
)

// matchingState returns the observed state of a pair that is exactly as validSpec wants it.
func matchingState(t *testing.T) (Spec, podState, hostState) {
	spec := validSpec(t).normalized()
	disabled := true
	pod := podState{
		link: linkState{exists: true, kind: "veth", index: 2, peerIndex: 40, mtu: 1500, mac: spec.MAC, up: true},
		addrs: []net.IPNet{
			normalizePrefix(mustPrefix(t, "10.0.0.5/24")),
			mustPrefix(t, "fd00::5/64"),
			mustPrefix(t, "fe80::1/64"),
		},
		routes: []routeState{
			{dst: normalizePrefix(mustPrefix(t, "10.0.0.0/24")), table: mainTable},
			{dst: normalizePrefix(mustPrefix(t, "10.1.0.0/16")), gw: net.ParseIP("10.0.0.1").To4(), table: mainTable},
			{dst: mustPrefix(t, "fd01::/64"), gw: net.ParseIP("fd00::2"), table: mainTable},
		},
		txChecksum: true,
	}
	host := hostState{
		link:         linkState{exists: true, kind: "veth", index: 40, peerIndex: 2, mtu: 1500, up: true},
		ipv6Disabled: &disabled,
	}
	return spec, pod, host
}

func TestDifferences(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Spec, *podState, *hostState)
		want   []string // substrings, one per expected difference; none: no difference
	}{
		{name: "a pair as the spec wants has no difference", mutate: func(*Spec, *podState, *hostState) {}},
		{name: "a missing container end", mutate: func(_ *Spec, p *podState, _ *hostState) { *p = podState{} },
			want: []string{"interface eth1 does not exist in the Pod"}},
		{name: "a container end that is not a veth", mutate: func(_ *Spec, p *podState, _ *hostState) { p.link.kind = "dummy" },
			want: []string{"interface eth1 in the Pod is a dummy, not a veth"}},
		{name: "a missing host end", mutate: func(_ *Spec, _ *podState, h *hostState) { *h = hostState{} },
			want: []string{"host interface pvl0123456789ab does not exist"}},
		{name: "a container end paired with another interface", mutate: func(_ *Spec, p *podState, _ *hostState) { p.link.peerIndex = 41 },
			want: []string{"the peer of interface eth1 is not host interface pvl0123456789ab"}},
		{name: "a host end paired with another interface", mutate: func(_ *Spec, _ *podState, h *hostState) { h.link.peerIndex = 3 },
			want: []string{"the peer of interface eth1 is not host interface pvl0123456789ab"}},
		{name: "another container MTU", mutate: func(_ *Spec, p *podState, _ *hostState) { p.link.mtu = 1400 },
			want: []string{"MTU of eth1 is 1400, want 1500"}},
		{name: "another host MTU", mutate: func(_ *Spec, _ *podState, h *hostState) { h.link.mtu = 9000 },
			want: []string{"MTU of host interface pvl0123456789ab is 9000, want 1500"}},
		{name: "MTU 0 in the spec accepts any MTU", mutate: func(s *Spec, p *podState, h *hostState) { s.MTU = 0; p.link.mtu = 1400; h.link.mtu = 1400 }},
		{name: "another MAC", mutate: func(_ *Spec, p *podState, _ *hostState) { p.link.mac = mustMAC(t, "02:00:00:00:00:02") },
			want: []string{"MAC of eth1 is 02:00:00:00:00:02, want 02:00:00:00:00:01"}},
		{name: "no MAC in the spec accepts any MAC", mutate: func(s *Spec, p *podState, _ *hostState) { s.MAC = nil; p.link.mac = mustMAC(t, "02:00:00:00:00:02") }},
		{name: "container end down", mutate: func(_ *Spec, p *podState, _ *hostState) { p.link.up = false },
			want: []string{"interface eth1 is down"}},
		{name: "host end down", mutate: func(_ *Spec, _ *podState, h *hostState) { h.link.up = false },
			want: []string{"host interface pvl0123456789ab is down"}},
		{name: "IPv6 enabled on the host end", mutate: func(_ *Spec, _ *podState, h *hostState) { enabled := false; h.ipv6Disabled = &enabled },
			want: []string{"IPv6 is enabled on host interface pvl0123456789ab"}},
		{name: "a host without IPv6 has nothing to disable", mutate: func(_ *Spec, _ *podState, h *hostState) { h.ipv6Disabled = nil }},
		{name: "TX checksum on when the spec wants it off", mutate: func(s *Spec, _ *podState, _ *hostState) { s.DisableTXChecksum = true },
			want: []string{"TX checksum offload is on for eth1"}},
		{name: "a missing address", mutate: func(_ *Spec, p *podState, _ *hostState) { p.addrs = p.addrs[1:] },
			want: []string{"address 10.0.0.5/24 is missing on eth1"}},
		{name: "an address with another prefix length", mutate: func(_ *Spec, p *podState, _ *hostState) { p.addrs[1] = mustPrefix(t, "fd00::5/120") },
			want: []string{"address fd00::5/64 is missing on eth1"}},
		{name: "a route via another gateway", mutate: func(_ *Spec, p *podState, _ *hostState) { p.routes[2].gw = net.ParseIP("fd00::3") },
			want: []string{"route fd01::/64 via fd00::2 is missing on eth1"}},
		{name: "a route in another table", mutate: func(_ *Spec, p *podState, _ *hostState) { p.routes[1].table = 100 },
			want: []string{"route 10.1.0.0/16 via 10.0.0.1 is missing on eth1"}},
		{name: "several differences are all named", mutate: func(_ *Spec, p *podState, _ *hostState) { p.link.mtu = 1400; p.addrs = nil },
			want: []string{"MTU of eth1 is 1400", "address 10.0.0.5/24 is missing", "address fd00::5/64 is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, pod, host := matchingState(t)
			tt.mutate(&spec, &pod, &host)
			got := differences(spec, pod, host)
			if len(got) != len(tt.want) {
				t.Fatalf("differences() = %q, want %d of them: %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("difference %d = %q, want it to contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestOwnPair(t *testing.T) {
	pod := linkState{exists: true, kind: "veth", index: 2, peerIndex: 40}
	host := linkState{exists: true, kind: "veth", index: 40, peerIndex: 2}
	tests := []struct {
		name      string
		pod, host linkState
		want      bool
	}{
		{name: "each end's peer is the other", pod: pod, host: host, want: true},
		{name: "the host end is missing", pod: pod, host: linkState{}, want: false},
		{name: "the container end is missing", pod: linkState{}, host: host, want: false},
		{name: "the container end is not a veth", pod: linkState{exists: true, kind: "dummy", index: 2, peerIndex: 40}, host: host, want: false},
		{name: "indexes match one way only", pod: pod, host: linkState{exists: true, kind: "veth", index: 40, peerIndex: 3}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ownPair(tt.pod, tt.host); got != tt.want {
				t.Errorf("ownPair() = %v, want %v", got, tt.want)
			}
		})
	}
}
