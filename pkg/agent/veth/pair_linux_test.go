package veth

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
)

// prepare runs Prepare in the stage's host namespace; the Pair is closed when the test ends.
func (s *stage) prepare(spec Spec) *Pair {
	s.t.Helper()
	var pair *Pair
	var err error
	s.inHost(func() error {
		pair, err = Prepare(s.t.Context(), spec)
		return nil
	})
	if err != nil {
		s.t.Fatalf("Prepare() error: %v", err)
	}
	s.t.Cleanup(pair.Close)
	return pair
}

func (s *stage) configure(pair *Pair, ips []net.IPNet, routes []*types.Route) (iface *Interface, err error) {
	s.inHost(func() error {
		iface, err = pair.Configure(s.t.Context(), ips, routes)
		return nil
	})
	return iface, err
}

func TestPrepareMakesThePairWithoutAddresses(t *testing.T) {
	st := newStage(t)
	spec := st.spec("eth1")
	spec.MTU = 9000
	spec.MAC = mustMAC(t, "02:50:76:00:00:11")
	spec.DisableTXChecksum = true
	spec.IPs = []net.IPNet{prefix(t, "10.81.0.5/24")} // ignored by Prepare
	pair := st.prepare(spec)
	if pair.Existing() {
		t.Error("Existing() = true for a pair Prepare just made")
	}

	st.inPod(func() error {
		link, err := netlink.LinkByName("eth1")
		if err != nil {
			return err
		}
		attrs := link.Attrs()
		if link.Type() != "veth" || attrs.MTU != 9000 || !bytes.Equal(attrs.HardwareAddr, spec.MAC) {
			t.Errorf("Pod eth1: type %s, MTU %d, MAC %s; want a veth, MTU 9000, MAC %s", link.Type(), attrs.MTU, attrs.HardwareAddr, spec.MAC)
		}
		if attrs.Flags&net.FlagUp != 0 {
			t.Error("Pod eth1 is up before Configure")
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(addrs) != 0 {
			t.Errorf("Pod eth1 has addresses %v before Configure", addrs)
		}
		on, err := txChecksum("eth1")
		if err != nil {
			return err
		}
		if on {
			t.Error("TX checksum offload is still on after Prepare")
		}
		return nil
	})
	st.inHost(func() error {
		host, err := readHostState(spec.HostIfName)
		if err != nil {
			return err
		}
		if !host.link.up || host.link.mtu != 9000 || host.ipv6Disabled == nil || !*host.ipv6Disabled {
			t.Errorf("host end: up %v, MTU %d, IPv6 disabled %v; want up, MTU 9000, IPv6 disabled", host.link.up, host.link.mtu, host.ipv6Disabled)
		}
		return nil
	})

	if _, err := st.configure(pair, spec.IPs, nil); err != nil {
		t.Fatalf("Configure() error: %v", err)
	}
	if err := st.check(spec); err != nil {
		t.Errorf("Check() after Prepare and Configure = %v", err)
	}
}

func TestConfigureFailureRemovesThePair(t *testing.T) {
	st := newStage(t)
	spec := st.spec("eth1")
	pair := st.prepare(spec)
	routes := []*types.Route{{Dst: prefix(t, "198.51.100.0/24"), GW: net.ParseIP("192.0.2.1")}}
	_, err := st.configure(pair, []net.IPNet{prefix(t, "10.82.0.5/24")}, routes)
	if err == nil || !strings.Contains(err.Error(), "create interface eth1") {
		t.Fatalf("Configure() error = %v, want one naming eth1", err)
	}
	st.assertNothingLeft()
}

func TestPrepareKeepsAnOwnPairForConfigureToJudge(t *testing.T) {
	tests := []struct {
		name string
		// damage changes the attached interface before the repeated attempt.
		damage func(st *stage, spec Spec)
		// wantKept: the host end is the same device afterwards.
		wantKept bool
	}{
		{name: "a complete pair is kept as it is", damage: func(*stage, Spec) {}, wantKept: true},
		{name: "an incomplete pair is rebuilt", damage: func(st *stage, spec Spec) {
			st.inPod(func() error {
				link, err := netlink.LinkByName("eth1")
				if err != nil {
					return err
				}
				return netlink.AddrDel(link, &netlink.Addr{IPNet: &spec.IPs[0]})
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStage(t)
			spec := st.spec("eth1")
			spec.IPs = []net.IPNet{prefix(t, "10.83.0.5/24")}
			first := st.mustCreate(spec)
			tt.damage(st, spec)

			pair := st.prepare(spec)
			if !pair.Existing() {
				t.Fatal("Existing() = false for the pair of an earlier attempt")
			}
			if _, err := st.configure(pair, spec.IPs, nil); err != nil {
				t.Fatalf("Configure() error: %v", err)
			}
			if err := st.check(spec); err != nil {
				t.Errorf("Check() = %v", err)
			}
			var index int
			st.inHost(func() error {
				link, err := netlink.LinkByName(spec.HostIfName)
				if err == nil {
					index = link.Attrs().Index
				}
				return err
			})
			if kept := index == first.HostIfIndex; kept != tt.wantKept {
				t.Errorf("host end kept = %v (index %d, was %d), want %v", kept, index, first.HostIfIndex, tt.wantKept)
			}
		})
	}
}
