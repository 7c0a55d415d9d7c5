package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// TestAgentErrorsLeaveNothing feeds the agent what users get wrong: every case fails CNI ADD with
// a message naming the problem, records it as a Pod Event, and leaves no port, veth or address.
func TestAgentErrorsLeaveNothing(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	node := c.node(t, 1)
	ns := c.createNamespace(t, "e2e-errors-")
	tiny := uniqueName("e2e-tiny-")
	c.createPool(t, tiny, v1beta1.IPPoolSpec{
		IPRanges:   []v1beta1.IPRange{{Start: "198.18.100.30", End: "198.18.100.30"}},
		SubnetInfo: v1beta1.SubnetInfo{Gateway: "198.18.100.254", PrefixLength: 24, VLAN: 100},
	})
	p100, _ := vlanPools(t, c, 31, 35)
	c.createNAD(t, ns, "tiny", teststack.VLANNetworkConfig(0, tiny))
	c.createNAD(t, ns, "vlan100", teststack.VLANNetworkConfig(0, p100))
	c.createNAD(t, ns, "vxlan", `{"cniVersion": "0.3.0", "type": "antrea", "networkType": "vxlan"}`)
	c.createNAD(t, ns, "nopool", teststack.VLANNetworkConfig(0, "e2e-no-such-pool"))
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink))

	// One Pod takes the tiny pool's only address, so that the next one finds it exhausted.
	holder := c.newSandbox(t, ns, "holder", node, "tiny")
	if _, err := a.addChained(t, holder, "1.0.0"); err != nil {
		t.Fatalf("ADD of holder: %v", err)
	}
	baseline := len(nodePodPorts(t, node))

	for _, tc := range []struct {
		name, annotation string
		want             []string // substrings of the CNI error and of the Event
	}{
		{"unsupported network type", "vxlan", []string{"vxlan", "networkType"}},
		{"unknown network", "no-such-network", []string{"no-such-network", "not found"}},
		{"unknown pool", "nopool", []string{"e2e-no-such-pool", "not found"}},
		{"exhausted pool after a good network", "vlan100,tiny", []string{tiny}},
		{"duplicate interface", `[{"name": "vlan100", "interface": "eth5"}, {"name": "tiny", "interface": "eth5"}]`, []string{"eth5"}},
		{"malformed annotation", `[{"name": vlan100}]`, []string{"vlan100"}},
		{"invalid MAC", `[{"name": "vlan100", "mac": "01:00:5e:00:00:01"}]`, []string{"mac"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := c.newSandbox(t, ns, uniqueName("bad-"), node, tc.annotation)
			_, err := a.addChained(t, s, "1.0.0")
			if err == nil {
				t.Fatalf("ADD succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CNI error %q does not mention %q", err, w)
				}
			}
			if err := eventually(5e9, func() error {
				ev := c.podEvents(t, ns, s.Pod.Name)
				for _, e := range ev {
					if strings.HasPrefix(e, "NetworkAttachFailed: ") && strings.Contains(e, tc.want[0]) {
						return nil
					}
				}
				return fmt.Errorf("events %v", ev)
			}); err != nil {
				t.Errorf("no NetworkAttachFailed Event naming %q: %v", tc.want[0], err)
			}
			if n := len(nodePodPorts(t, node)); n != baseline {
				t.Errorf("%d ports after the failed ADD, want %d", n, baseline)
			}
			if veths := hostVeths(t, node); len(veths) != baseline {
				t.Errorf("veths after the failed ADD: %v", veths)
			}
			for _, pool := range []string{tiny, p100} {
				c.waitPoolHolders(t, pool, holdCountOf(0, "the failed Pod "+s.Pod.Name, ofPod(s.Pod.Namespace, s.Pod.Name)))
			}
			out, _ := tryRun("ip", "-n", s.NetNS, "-o", "link")
			if strings.Contains(out, "eth1") || strings.Contains(out, "eth5") {
				t.Errorf("interfaces left in the Pod: %s", out)
			}
			// The runtime calls DEL after a failed ADD; it must succeed.
			if err := a.delChained(t, s, "1.0.0"); err != nil {
				t.Errorf("DEL after failed ADD: %v", err)
			}
		})
	}
}

// TestAgentMultusDelegate is the Multus path: the NAD's configuration on stdin, Multus's interface
// name and the annotation's MAC passed as runtimeConfig.
func TestAgentMultusDelegate(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	node := c.node(t, 1)
	ns := c.createNamespace(t, "e2e-multus-")
	p100, _ := vlanPools(t, c, 40, 45)
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink))
	s := c.newSandbox(t, ns, "delegated", node, "")

	conf := `{"cniVersion": "1.0.0", "name": "vlan100", "type": "antrea", "networkType": "vlan",
	  "capabilities": {"mac": true}, "runtimeConfig": {"mac": "02:aa:bb:cc:dd:01"},
	  "ipam": {"type": "antrea", "ippools": ["` + p100 + `"]}}`
	list := a.delegateConf(t, conf)
	var res types.Result
	if err := teststack.InNetNS(node.NetNS, func() error {
		var err error
		res, err = a.cniConfig().AddNetworkList(context.Background(), list, s.RuntimeConf("net1"))
		return err
	}); err != nil {
		t.Fatalf("delegate ADD: %v", err)
	}
	ips := resultIPs(t, res)
	if len(ips) != 1 || !strings.HasPrefix(ips[0], "198.18.100.") {
		t.Fatalf("result IPs %v, want one address of %s", ips, p100)
	}
	link := mustRun(t, "ip", "-n", s.NetNS, "-o", "link", "show", "net1")
	if !strings.Contains(link, "02:aa:bb:cc:dd:01") {
		t.Errorf("net1 does not carry the requested MAC: %s", link)
	}
	if err := ping(s.NetNS, c.ext(t, 100).IP.String()); err != nil {
		t.Errorf("delegated interface cannot reach the VLAN-100 host: %v", err)
	}
	if err := teststack.InNetNS(node.NetNS, func() error {
		return a.cniConfig().CheckNetworkList(context.Background(), list, s.RuntimeConf("net1"))
	}); err != nil {
		t.Errorf("delegate CHECK: %v", err)
	}
	if err := teststack.InNetNS(node.NetNS, func() error {
		return a.cniConfig().DelNetworkList(context.Background(), list, s.RuntimeConf("net1"))
	}); err != nil {
		t.Fatalf("delegate DEL: %v", err)
	}
	if ports := nodePodPorts(t, node); len(ports) != 0 {
		t.Errorf("ports left: %v", ports)
	}
	c.waitPoolHolders(t, p100, holdNone())
}

// TestAgentIPAMOnly is another plugin (the reference bridge plugin) taking its addresses from an
// IPPool through `"ipam": {"type": "antrea"}`.
func TestAgentIPAMOnly(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	node := c.node(t, 1)
	ns := c.createNamespace(t, "e2e-ipamonly-")
	p100, _ := vlanPools(t, c, 50, 55)
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink))
	s := c.newSandbox(t, ns, "ipam-only", node, "")
	br := uniqueName("pvi")
	conf := `{"cniVersion": "1.0.0", "name": "ipam-only", "type": "bridge", "bridge": "` + br + `", "isGateway": false,
	  "cniSocket": "` + a.Socket + `", "ipam": {"type": "antrea", "ippools": ["` + p100 + `"]}}`
	pc, err := libcni.NetworkPluginConfFromBytes([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromConf(pc) //nolint:staticcheck // SA1019: a single .conf is what a runtime still converts, as containerd does
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = tryRun(netnsCommand(node.NetNS, "ip", "link", "del", br)...) })
	res, err := a.cniConfig().AddNetworkList(context.Background(), list, s.RuntimeConf("eth0"))
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	ips := resultIPs(t, res)
	if len(ips) != 1 || podAddress(t, s, "eth0")+"/24" != ips[0] {
		t.Fatalf("result %v vs interface address %s", ips, podAddress(t, s, "eth0"))
	}
	c.waitPoolHolders(t, p100, holdAll(holdCount(1), holdCountOf(1, "the container", ofContainer(s.ContainerID))))
	if err := a.cniConfig().DelNetworkList(context.Background(), list, s.RuntimeConf("eth0")); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	c.waitPoolHolders(t, p100, holdNone()) // after DEL
}

// TestAgentFeatureGateOff: with SecondaryNetwork off the agent touches no bridge and an annotated
// Pod gets a clear error.
func TestAgentFeatureGateOff(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	node := c.node(t, 1)
	ns := c.createNamespace(t, "e2e-gateoff-")
	// A pool that does not exist: the gate is what the user must hear about first.
	c.createNAD(t, ns, "vlan100", teststack.VLANNetworkConfig(100, "e2e-no-such-pool"))
	cfg := teststack.DefaultAgentConfig(node.Uplink)
	cfg.FeatureGates = map[string]bool{}
	a := c.startAgent(t, node, cfg)
	if _, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "br-exists", teststack.SecondaryBridge); err == nil {
		t.Errorf("bridge %s exists although SecondaryNetwork is off", teststack.SecondaryBridge)
	}
	plain := c.newSandbox(t, ns, "plain", node, "")
	if _, err := a.addChained(t, plain, "1.0.0"); err != nil {
		t.Errorf("ADD of a Pod without networks: %v", err)
	}
	s := c.newSandbox(t, ns, "annotated", node, "vlan100")
	_, err := a.addChained(t, s, "1.0.0")
	if err == nil || !strings.Contains(err.Error(), "SecondaryNetwork") {
		t.Fatalf("ADD error %v, want one naming the SecondaryNetwork feature gate", err)
	}
}

// TestAgentRestartMidBurst kills the agent with SIGKILL while 50 sandboxes are being attached,
// restarts it, lets the runtime do what it does after failed ADDs (DEL, then ADD again), and checks
// that nothing leaked and no address is held twice.
func TestAgentRestartMidBurst(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	node := c.node(t, 1)
	ns := c.createNamespace(t, "e2e-restart-")
	pool := uniqueName("e2e-burst-")
	c.createPool(t, pool, v1beta1.IPPoolSpec{
		IPRanges:   []v1beta1.IPRange{{CIDR: "198.18.104.0/25"}},
		SubnetInfo: v1beta1.SubnetInfo{Gateway: "198.18.104.1", PrefixLength: 24, VLAN: 104},
	})
	c.createNAD(t, ns, "burst", teststack.VLANNetworkConfig(0, pool))
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink))

	const n = 50
	sandboxes := make([]*sandbox, n)
	for i := range sandboxes {
		sandboxes[i] = c.newSandbox(t, ns, fmt.Sprintf("p%02d", i), node, "burst")
	}
	errs := make([]error, n)
	results := make([]types.Result, n)
	var wg sync.WaitGroup
	for i, s := range sandboxes {
		wg.Go(func() { results[i], errs[i] = a.addChained(t, s, "1.0.0") })
	}
	// Kill it once some sandboxes are attached and others are in flight.
	_ = eventually(60e9, func() error {
		if p := len(nodePodPorts(t, node)); p < n/4 {
			return fmt.Errorf("%d ports", p)
		}
		return nil
	})
	a.Kill()
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	t.Logf("%d of %d ADDs failed when the agent was killed", failed, n)
	a.start(t)

	// The runtime's reaction to a failed ADD: DEL, then a new attempt.
	for i, s := range sandboxes {
		if errs[i] == nil {
			continue
		}
		if err := a.delChained(t, s, "1.0.0"); err != nil {
			t.Errorf("DEL of %s after restart: %v", s.Pod.Name, err)
		}
		var err error
		if results[i], err = a.addChained(t, s, "1.0.0"); err != nil {
			t.Errorf("ADD of %s after restart: %v", s.Pod.Name, err)
		}
	}
	ports := nodePodPorts(t, node)
	if len(ports) != n {
		t.Errorf("%d ports, want %d", len(ports), n)
	}
	if veths := hostVeths(t, node); len(veths) != n {
		t.Errorf("%d veths, want %d", len(veths), n)
	}
	allocs := c.waitPoolHolders(t, pool, holdCount(n))
	seen := map[string]string{}
	owners := map[string]bool{}
	for _, ip := range allocs {
		if prev, dup := seen[ip.IPAddress]; dup {
			t.Errorf("address %s held twice: %s and %s", ip.IPAddress, prev, ip.Owner.Pod.Name)
		}
		seen[ip.IPAddress] = ip.Owner.Pod.Name
		owners[ip.Owner.Pod.ContainerID] = true
	}
	if len(allocs) != n || len(owners) != n {
		t.Errorf("%d allocations for %d containers, want %d each", len(allocs), len(owners), n)
	}
	for i, s := range sandboxes {
		if _, err := a.execChained(t, s, "CHECK", "1.0.0", results[i]); err != nil {
			t.Errorf("CHECK %s: %v", s.Pod.Name, err)
		}
	}

	// A sandbox that disappears while the agent is down (its namespace deleted, no DEL) is found
	// and cleaned up by reconciliation after the restart.
	a.Kill()
	gone := sandboxes[0]
	mustRun(t, "ip", "netns", "del", gone.NetNS)
	a.start(t)
	if err := eventually(30e9, func() error {
		if p := len(nodePodPorts(t, node)); p != n-1 {
			return fmt.Errorf("%d ports", p)
		}
		if a := len(c.poolAllocations(t, pool)); a != n-1 {
			return fmt.Errorf("%d allocations", a)
		}
		return nil
	}); err != nil {
		t.Errorf("reconciliation did not clean up the vanished sandbox: %v", err)
	}
	for _, s := range sandboxes[1:] {
		if err := a.delChained(t, s, "1.0.0"); err != nil {
			t.Errorf("DEL %s: %v", s.Pod.Name, err)
		}
	}
}
