package veth

import (
	"net"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// defaultRoutes lists the Pod's default routes of a family as "via GW dev NAME".
func (s *stage) defaultRoutes(family int) []string {
	s.t.Helper()
	var out []string
	s.inPod(func() error {
		routes, err := netlink.RouteList(nil, family)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 {
					continue
				}
			}
			link, err := netlink.LinkByIndex(r.LinkIndex)
			if err != nil {
				return err
			}
			out = append(out, "via "+r.Gw.String()+" dev "+link.Attrs().Name)
		}
		return nil
	})
	return out
}

func TestDefaultGatewayTakesOverThePodsDefaultRoute(t *testing.T) {
	st := newStage(t)
	// The primary interface with its default route, as the primary plugin leaves it.
	primary := st.spec("eth0")
	primary.IPs = []net.IPNet{prefix(t, "10.244.1.5/24")}
	primary.Routes = nil
	st.mustCreate(primary)
	st.inPod(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		_, all, _ := net.ParseCIDR("0.0.0.0/0")
		return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: all, Gw: net.ParseIP("10.244.1.1")})
	})
	if got := st.defaultRoutes(netlink.FAMILY_V4); strings.Join(got, ";") != "via 10.244.1.1 dev eth0" {
		t.Fatalf("before: default routes %v", got)
	}

	spec := st.spec("eth1")
	spec.IPs = []net.IPNet{prefix(t, "10.10.1.2/24")}
	spec.DefaultGateways = []net.IP{net.ParseIP("10.10.1.1")}
	st.mustCreate(spec)
	if got := st.defaultRoutes(netlink.FAMILY_V4); strings.Join(got, ";") != "via 10.10.1.1 dev eth1" {
		t.Errorf("after: default routes %v, want only via 10.10.1.1 dev eth1", got)
	}
	// A repeated create finds it as wanted, and CHECK agrees.
	st.mustCreate(spec)
	st.inHost(func() error {
		if err := Check(t.Context(), spec); err != nil {
			t.Errorf("Check: %v", err)
		}
		return nil
	})
	// Without it, CHECK says so.
	st.inPod(func() error {
		link, err := netlink.LinkByName("eth1")
		if err != nil {
			return err
		}
		_, all, _ := net.ParseCIDR("0.0.0.0/0")
		return netlink.RouteDel(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: all, Gw: net.ParseIP("10.10.1.1")})
	})
	st.inHost(func() error {
		if err := Check(t.Context(), spec); err == nil || !strings.Contains(err.Error(), "default route via 10.10.1.1 is missing") {
			t.Errorf("Check without the default route = %v", err)
		}
		return nil
	})
}

func TestDefaultGatewayOutsideTheSubnetFailsAndLeavesNothing(t *testing.T) {
	st := newStage(t)
	spec := st.spec("eth1")
	spec.IPs = []net.IPNet{prefix(t, "10.10.1.2/24")}
	spec.DefaultGateways = []net.IP{net.ParseIP("10.99.0.1")}
	_, err := st.create(spec)
	if err == nil || !strings.Contains(err.Error(), "default-route gateway 10.99.0.1 is not in a subnet of interface eth1") {
		t.Fatalf("Create = %v, want the gateway refused", err)
	}
	st.inPod(func() error {
		if _, err := netlink.LinkByName("eth1"); err == nil {
			t.Error("eth1 left in the Pod")
		}
		return nil
	})
}
