package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
)

// vlanPools creates an IPv4 pool in the VLAN 100 test subnet (where the external VLAN-100 host
// lives) and one in the VLAN 200 subnet, on address ranges of their own, and returns their names.
func vlanPools(t *testing.T, c *testCluster, first, last int) (string, string) {
	t.Helper()
	p100, p200 := uniqueName("e2e-v100-"), uniqueName("e2e-v200-")
	c.createPool(t, p100, teststack.Pool24(p100, "198.18.100", first, last, 100).Spec)
	c.createPool(t, p200, teststack.Pool24(p200, "198.18.200", first, last, 200).Spec)
	return p100, p200
}

// podAddress returns the IPv4 address of the interface inside the sandbox.
func podAddress(t *testing.T, s *sandbox, ifName string) string {
	t.Helper()
	addrs := podAddresses(t, s, ifName)
	for _, a := range addrs {
		if netip.MustParseAddr(a).Is4() {
			return a
		}
	}
	t.Fatalf("no IPv4 address on %s in %s: %v", ifName, s.NetNS, addrs)
	return ""
}

// podAddresses lists the global addresses of an interface in the sandbox, both families.
func podAddresses(t *testing.T, s *sandbox, ifName string) []string {
	t.Helper()
	out := mustRun(t, "ip", "-n", s.NetNS, "-o", "addr", "show", "dev", ifName, "scope", "global")
	var addrs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i, w := range f {
			if (w == "inet" || w == "inet6") && i+1 < len(f) {
				addrs = append(addrs, strings.SplitN(f[i+1], "/", 2)[0])
			}
		}
	}
	sort.Strings(addrs)
	return addrs
}

// networkStatus returns the Pod's network-status once the agent has written it: the agent writes
// it after answering ADD.
func networkStatus(t *testing.T, c *testCluster, s *sandbox) []nadv1.NetworkStatus {
	t.Helper()
	var st []nadv1.NetworkStatus
	err := eventually(10*time.Second, func() error {
		pod, err := c.client.CoreV1().Pods(s.Pod.Namespace).Get(context.Background(), s.Pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		v := pod.Annotations[nadv1.NetworkStatusAnnot]
		if v == "" {
			return fmt.Errorf("Pod %s/%s has no %s", s.Pod.Namespace, s.Pod.Name, nadv1.NetworkStatusAnnot)
		}
		st = nil
		return json.Unmarshal([]byte(v), &st)
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestAgentChainedAttach is the contract's main path on two Nodes: Pods annotated with VLAN
// networks get their interfaces during CNI ADD, reach each other and the external host of their
// VLAN across the fabric, never the other VLAN, and leave nothing behind on DEL.
func TestAgentChainedAttach(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	nodes := []clusterNode{c.node(t, 1)}
	if n := c.nodes(t); len(n) > 1 {
		nodes = append(nodes, n[1])
	}
	ns := c.createNamespace(t, "e2e-chained-")
	p100, p200 := vlanPools(t, c, 10, 29)
	c.createNAD(t, ns, "vlan100", teststack.VLANNetworkConfig(0, p100))
	c.createNAD(t, ns, "vlan200", teststack.VLANNetworkConfig(0, p200))
	// VLAN 200 but addresses of the VLAN-100 subnet: only VLAN isolation can keep it apart.
	c.createNAD(t, ns, "vlan200-same-subnet", teststack.VLANNetworkConfig(200, p100))

	agents := make([]*agentProcess, len(nodes))
	for i, n := range nodes {
		agents[i] = c.startAgent(t, n, teststack.DefaultAgentConfig(n.Uplink))
	}
	type pod struct {
		s       *sandbox
		agent   *agentProcess
		primary types.Result
	}
	var pods []pod
	for i, a := range agents {
		for _, spec := range []struct{ name, annotation string }{
			{fmt.Sprintf("a%d", i+1), "vlan100"},
			{fmt.Sprintf("b%d", i+1), `[{"name": "vlan200", "interface": "eth200"}]`},
			{fmt.Sprintf("x%d", i+1), "vlan200-same-subnet"},
		} {
			s := c.newSandbox(t, ns, spec.name, a.node, spec.annotation)
			res, err := a.addChained(t, s, "1.0.0")
			if err != nil {
				t.Fatalf("CNI ADD of %s on %s: %v", spec.name, a.node.Name, err)
			}
			pods = append(pods, pod{s, a, res})
		}
	}
	addr := func(p pod) string {
		if strings.HasPrefix(p.s.Pod.Name, "b") {
			return podAddress(t, p.s, "eth200")
		}
		return podAddress(t, p.s, "eth1")
	}
	byName := map[string]pod{}
	for _, p := range pods {
		byName[p.s.Pod.Name] = p
	}

	t.Run("interfaces, ports and network-status match the annotation", func(t *testing.T) {
		for _, p := range pods {
			st := networkStatus(t, c, p.s)
			if len(st) != 1 || st[0].Default || len(st[0].IPs) != 1 {
				t.Errorf("%s: network-status %+v, want one non-default entry with one address", p.s.Pod.Name, st)
				continue
			}
			if st[0].IPs[0] != addr(p) {
				t.Errorf("%s: network-status says %s, interface has %s", p.s.Pod.Name, st[0].IPs[0], addr(p))
			}
		}
		for _, a := range agents {
			ports := nodePodPorts(t, a.node)
			tags := map[string]int{}
			for _, p := range ports {
				tags[strings.Fields(p)[1]]++
			}
			if tags["100"] != 1 || tags["200"] != 2 || len(ports) != 3 {
				t.Errorf("%s: ports %v, want one with tag 100 and two with tag 200", a.node.Name, ports)
			}
		}
		if ev := c.podEvents(t, ns, "a1"); !containsPrefix(ev, "NetworkAttached: ") {
			t.Errorf("events of a1: %v, want NetworkAttached", ev)
		}
	})

	t.Run("same VLAN reaches across nodes and to the external host", func(t *testing.T) {
		for _, from := range []string{"a1", "a2"} {
			p, ok := byName[from]
			if !ok {
				continue
			}
			if err := ping(p.s.NetNS, c.ext(t, 100).IP.String()); err != nil {
				t.Errorf("%s -> external VLAN-100 host: %v", from, err)
			}
			for _, to := range []string{"a1", "a2"} {
				if q, ok := byName[to]; ok && to != from {
					if err := ping(p.s.NetNS, addr(q)); err != nil {
						t.Errorf("%s -> %s: %v", from, to, err)
					}
				}
			}
		}
		if p, ok := byName["b1"]; ok {
			if err := ping(p.s.NetNS, c.ext(t, 200).IP.String()); err != nil {
				t.Errorf("b1 -> external VLAN-200 host: %v", err)
			}
		}
	})

	t.Run("other VLAN is unreachable even in the same subnet", func(t *testing.T) {
		for _, pair := range [][2]string{{"a1", "x1"}, {"x1", "a1"}, {"a1", "x2"}, {"x2", "a2"}} {
			p, ok1 := byName[pair[0]]
			q, ok2 := byName[pair[1]]
			if !ok1 || !ok2 {
				continue
			}
			if err := ping(p.s.NetNS, addr(q)); err == nil {
				t.Errorf("%s (VLAN %s) reached %s: VLANs are not isolated", pair[0], pair[0][:1], pair[1])
			}
		}
		if err := ping(byName["x1"].s.NetNS, c.ext(t, 100).IP.String()); err == nil {
			t.Errorf("x1 on VLAN 200 reached the VLAN-100 external host")
		}
	})

	t.Run("frames leave the uplink tagged", func(t *testing.T) {
		node := agents[0].node
		capt := startCapture(t, c.FabricNetNS, node.FabricPort)
		_ = ping(byName["a1"].s.NetNS, c.ext(t, 100).IP.String())
		lines := capt.stop()
		if !anyContains(lines, "vlan 100") {
			t.Errorf("no 802.1Q tag 100 seen on %s's uplink: %v", node.Name, lines)
		}
	})

	t.Run("CHECK passes", func(t *testing.T) {
		for _, p := range pods {
			if _, err := p.agent.execChained(t, p.s, "CHECK", "1.0.0", p.primary); err != nil {
				t.Errorf("CHECK %s: %v", p.s.Pod.Name, err)
			}
		}
	})

	t.Run("repeated ADD is idempotent", func(t *testing.T) {
		p := pods[0]
		before := addr(p)
		res, err := p.agent.execChained(t, p.s, "ADD", "1.0.0", p.primary)
		if err != nil {
			t.Fatalf("second ADD: %v", err)
		}
		if got, want := resultIPs(t, res), resultIPs(t, p.primary); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("chained ADD returned %v, want the primary result %v passed through", got, want)
		}
		if after := addr(p); after != before {
			t.Errorf("address changed from %s to %s", before, after)
		}
		if n := len(nodePodPorts(t, p.agent.node)); n != 3 {
			t.Errorf("%d ports after a repeated ADD, want 3", n)
		}
	})

	t.Run("DEL removes everything and is idempotent", func(t *testing.T) {
		for _, p := range pods {
			for i := 0; i < 2; i++ {
				if err := p.agent.delChained(t, p.s, "1.0.0"); err != nil {
					t.Fatalf("DEL %d of %s: %v", i+1, p.s.Pod.Name, err)
				}
			}
		}
		for _, a := range agents {
			if ports := nodePodPorts(t, a.node); len(ports) != 0 {
				t.Errorf("%s: ports left: %v", a.node.Name, ports)
			}
			if veths := hostVeths(t, a.node); len(veths) != 0 {
				t.Errorf("%s: veths left: %v", a.node.Name, veths)
			}
		}
		for _, pool := range []string{p100, p200} {
			c.waitPoolHolders(t, pool, holdNone())
		}
	})
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func anyContains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
