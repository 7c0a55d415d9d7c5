package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/internal/teststack"
)

// addWithPrimaryDefaultRoute runs the chained list with a primary network that, like a real
// one, gives the Pod its default route (host-local's gateway, .1 of the primary subnet).
func (a *agentProcess) addWithPrimaryDefaultRoute(t *testing.T, s *sandbox) (types.Result, error) {
	t.Helper()
	list := a.primaryChain(t, "1.0.0", true)
	var res types.Result
	err := teststack.InNetNS(a.node.NetNS, func() error {
		var err error
		res, err = a.cniConfig().AddNetworkList(context.Background(), list, s.RuntimeConf("eth0"))
		return err
	})
	return res, err
}

// TestAgentDefaultRoute is the annotation's default-route: the Pod's default route moves from the
// primary interface to the secondary one, through the requested gateway; a gateway the interface
// cannot reach fails the ADD and leaves nothing.
func TestAgentDefaultRoute(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	node := c.node(t, 1)
	ns := c.createNamespace(t, "e2e-defroute-")
	p100, _ := vlanPools(t, c, 40, 49)
	c.createNAD(t, ns, "vlan100", teststack.VLANNetworkConfig(0, p100))
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink))
	gateway := c.ext(t, 100).IP.String() // the pool's gateway is the VLAN-100 external host

	s := c.newSandbox(t, ns, "routed", node, fmt.Sprintf(`[{"name": "vlan100", "default-route": [%q]}]`, gateway))
	primary, err := a.addWithPrimaryDefaultRoute(t, s)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}

	t.Run("the default route goes through the secondary interface only", func(t *testing.T) {
		routes := strings.TrimSpace(mustRun(t, "ip", "-n", s.NetNS, "-4", "route", "show", "default"))
		if !strings.HasPrefix(routes, "default via "+gateway+" dev eth1") || strings.Contains(routes, "\n") {
			t.Errorf("default routes:\n%s\nwant only: default via %s dev eth1", routes, gateway)
		}
		if got := mustRun(t, "ip", "-n", s.NetNS, "route", "get", "192.0.2.1"); !strings.Contains(got, "dev eth1") {
			t.Errorf("route to 192.0.2.1: %s, want through eth1", got)
		}
		if err := ping(s.NetNS, gateway); err != nil {
			t.Errorf("ping the gateway %s: %v", gateway, err)
		}
	})

	t.Run("CHECK passes", func(t *testing.T) {
		if _, err := a.execChained(t, s, "CHECK", "1.0.0", primary); err != nil {
			t.Errorf("CHECK: %v", err)
		}
	})

	t.Run("an unreachable gateway fails the ADD and leaves nothing", func(t *testing.T) {
		before := len(nodePodPorts(t, node))
		bad := c.newSandbox(t, ns, "unroutable", node, `[{"name": "vlan100", "default-route": ["198.18.200.254"]}]`)
		_, err := a.addWithPrimaryDefaultRoute(t, bad)
		want := "default-route gateway 198.18.200.254 is not in a subnet of interface eth1"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ADD = %v, want an error saying %q", err, want)
		}
		if err := eventually(5e9, func() error {
			for _, e := range c.podEvents(t, ns, bad.Pod.Name) {
				if strings.HasPrefix(e, "NetworkAttachFailed: ") && strings.Contains(e, want) {
					return nil
				}
			}
			return fmt.Errorf("no NetworkAttachFailed Event saying %q", want)
		}); err != nil {
			t.Error(err)
		}
		if n := len(nodePodPorts(t, node)); n != before {
			t.Errorf("%d ports after the failed ADD, want %d", n, before)
		}
		c.waitPoolHolders(t, p100, holdCount(1)) // the routed Pod's only
	})

	t.Run("DEL removes everything", func(t *testing.T) {
		if err := a.delChained(t, s, "1.0.0"); err != nil {
			t.Fatalf("DEL: %v", err)
		}
		if ports := nodePodPorts(t, node); len(ports) != 0 {
			t.Errorf("ports left: %v", ports)
		}
		c.waitPoolHolders(t, p100, holdNone())
	})
}
