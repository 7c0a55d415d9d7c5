package e2e

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// TestAgentDualStack attaches a network with an IPv4 and an IPv6 IPPool: each Pod gets one
// address of each, network-status lists both, and Pods on two Nodes reach each other over both
// families through the VLAN.
func TestAgentDualStack(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	nodes := c.nodes(t)
	if len(nodes) > 2 {
		nodes = nodes[:2]
	}
	ns := c.createNamespace(t, "e2e-dual-")
	v4, v6 := uniqueName("e2e-dual4-"), uniqueName("e2e-dual6-")
	c.createPool(t, v4, v1beta1.IPPoolSpec{
		IPRanges:   []v1beta1.IPRange{{Start: "198.18.100.60", End: "198.18.100.69"}},
		SubnetInfo: v1beta1.SubnetInfo{Gateway: "198.18.100.254", PrefixLength: 24, VLAN: 100},
	})
	c.createPool(t, v6, v1beta1.IPPoolSpec{
		IPRanges:   []v1beta1.IPRange{{Start: "fd00:198:18:100::60", End: "fd00:198:18:100::69"}},
		SubnetInfo: v1beta1.SubnetInfo{Gateway: "fd00:198:18:100::fe", PrefixLength: 64, VLAN: 100},
	})
	c.createNAD(t, ns, "dual", teststack.VLANNetworkConfig(0, v4, v6))

	type pod struct {
		s     *sandbox
		agent *agentProcess
	}
	var pods []pod
	for i, n := range nodes {
		a := c.startAgent(t, n, teststack.DefaultAgentConfig(n.Uplink))
		for j := range 3 - len(nodes) { // two Pods in all: one per Node, or both on the one Node
			s := c.newSandbox(t, ns, fmt.Sprintf("d%d-%d", i+1, j+1), n, "dual")
			mustRun(t, netnsCommand(s.NetNS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0")...)
			if _, err := a.addChained(t, s, "1.0.0"); err != nil {
				t.Fatalf("ADD of %s on %s: %v", s.Pod.Name, n.Name, err)
			}
			pods = append(pods, pod{s, a})
		}
	}

	addrs := make([][]string, len(pods))
	t.Run("each Pod has one address of each pool, and network-status lists both", func(t *testing.T) {
		for i, p := range pods {
			addrs[i] = podAddresses(t, p.s, "eth1")
			var fam4, fam6 int
			for _, a := range addrs[i] {
				ip := netip.MustParseAddr(a)
				switch {
				case ip.Is4() && strings.HasPrefix(a, "198.18.100."):
					fam4++
				case ip.Is6() && strings.HasPrefix(a, "fd00:198:18:100::"):
					fam6++
				}
			}
			if fam4 != 1 || fam6 != 1 || len(addrs[i]) != 2 {
				t.Errorf("%s: eth1 has %v, want one address of each pool", p.s.Pod.Name, addrs[i])
			}
			st := networkStatus(t, c, p.s)
			if len(st) != 1 || len(st[0].IPs) != 2 || len(st[0].Gateway) != 2 {
				t.Errorf("%s: network-status %+v, want one entry with two addresses and two gateways", p.s.Pod.Name, st)
				continue
			}
			got := append([]string(nil), st[0].IPs...)
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(addrs[i], ",") {
				t.Errorf("%s: network-status says %v, eth1 has %v", p.s.Pod.Name, got, addrs[i])
			}
		}
		for _, pool := range []string{v4, v6} {
			c.waitPoolHolders(t, pool, holdCount(len(pods)))
		}
	})

	t.Run("Pods reach each other over IPv4 and IPv6", func(t *testing.T) {
		if len(addrs[1]) == 0 {
			t.Skip("no addresses")
		}
		for _, to := range addrs[1] {
			if err := ping(pods[0].s.NetNS, to); err != nil {
				t.Errorf("%s -> %s (%s): %v", pods[0].s.Pod.Name, pods[1].s.Pod.Name, to, err)
			}
		}
	})

	t.Run("DEL releases both families", func(t *testing.T) {
		for _, p := range pods {
			if err := p.agent.delChained(t, p.s, "1.0.0"); err != nil {
				t.Fatalf("DEL of %s: %v", p.s.Pod.Name, err)
			}
		}
		for _, pool := range []string{v4, v6} {
			c.waitPoolHolders(t, pool, holdNone())
		}
	})
}
