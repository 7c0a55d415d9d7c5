package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
)

// nodeEvents returns "reason: message" of the Events about a Node.
func (c *testCluster) nodeEvents(t *testing.T, node string) []string {
	t.Helper()
	list, err := c.client.CoreV1().Events("").List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Node,involvedObject.name=" + node})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

func waitForEvent(t *testing.T, list func() []string, prefix, contains string) {
	t.Helper()
	if err := eventually(30e9, func() error {
		for _, e := range list() {
			if strings.HasPrefix(e, prefix) && strings.Contains(e, contains) {
				return nil
			}
		}
		return fmt.Errorf("no %q event mentioning %q", prefix, contains)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestAgentUplinkProblemsDegradeInsteadOfCrashing: a missing uplink NIC is a Node Event, a metric
// and a retry (and is attached once it appears, the metric going back to 0); the Node's management
// interface is refused, with a metric too. The agent keeps serving in both cases.
func TestAgentUplinkProblemsDegradeInsteadOfCrashing(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	node := c.node(t, 2)
	missing := uniqueName("upl")
	cfg := teststack.DefaultAgentConfig(node.Uplink)
	cfg.SecondaryNetwork.OVSBridges[0].PhysicalInterfaces = []string{node.Uplink, missing, node.MgmtIf}
	a := c.startAgent(t, node, cfg) // returns once STATUS says ready: the bridge works without them
	metricsAddr := a.metrics
	events := func() []string { return c.nodeEvents(t, node.Name) }
	waitForEvent(t, events, "SecondaryUplinkMissing: ", missing)
	waitForEvent(t, events, "SecondaryUplinkRefused: ", node.MgmtIf)
	uplinkSeries := func(metric, iface string) string {
		return fmt.Sprintf(`%s{bridge=%q,interface=%q}`, metric, teststack.SecondaryBridge, iface)
	}
	waitForMetrics(t, node, metricsAddr, map[string]string{
		uplinkSeries("podvlan_agent_secondary_uplink_missing", missing):                           "1",
		uplinkSeries("podvlan_agent_secondary_uplink_missing", node.Uplink):                       "0",
		uplinkSeries("podvlan_agent_secondary_uplink_refused", node.MgmtIf):                       "1",
		uplinkSeries("podvlan_agent_secondary_uplink_refused", missing):                           "0",
		fmt.Sprintf(`podvlan_agent_secondary_bridge_ready{bridge=%q}`, teststack.SecondaryBridge): "1",
	})
	// start waited for a successful STATUS, which the CNI metrics count.
	if body, err := scrapeMetrics(node, metricsAddr); err != nil {
		t.Error(err)
	} else if !strings.Contains(body, `podvlan_agent_cni_requests_total{command="STATUS",result="success"} `) {
		t.Errorf("no successful STATUS counted in /metrics:\n%s", grepLines(body, "podvlan_agent_cni_"))
	}

	// The NIC appears: the retry attaches it as a trunk port.
	peer := uniqueName("uplp")
	mustRun(t, "ip", "link", "add", missing, "netns", node.NetNS, "type", "veth", "peer", "name", peer, "netns", node.NetNS)
	t.Cleanup(func() { _, _ = tryRun(netnsCommand(node.NetNS, "ip", "link", "del", missing)...) })
	mustRun(t, netnsCommand(node.NetNS, "ip", "link", "set", missing, "up")...)
	if err := eventually(60e9, func() error {
		out, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "--timeout=10", "port-to-br", missing)
		if err != nil || strings.TrimSpace(out) != teststack.SecondaryBridge {
			return fmt.Errorf("%s not on %s yet: %v", missing, teststack.SecondaryBridge, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if out, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "port-to-br", node.MgmtIf); err == nil {
		t.Errorf("management interface %s was attached to %s", node.MgmtIf, out)
	}
	if err := a.Status(context.Background()); err != nil {
		t.Errorf("STATUS after the uplink appeared: %v", err)
	}
	waitForMetrics(t, node, metricsAddr, map[string]string{
		uplinkSeries("podvlan_agent_secondary_uplink_missing", missing):     "0",
		uplinkSeries("podvlan_agent_secondary_uplink_refused", node.MgmtIf): "1",
	})
}

// freeLoopbackAddress returns 127.0.0.1:<a port free in the node's network namespace>.
func freeLoopbackAddress(t *testing.T, node clusterNode) string {
	t.Helper()
	var address string
	if err := teststack.InNetNS(node.NetNS, func() error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		address = ln.Addr().String()
		return ln.Close()
	}); err != nil {
		t.Fatalf("find a free port on %s: %v", node.Name, err)
	}
	return address
}

// scrapeMetrics fetches an agent's /metrics from inside its node's network namespace, where its
// loopback address is.
func scrapeMetrics(node clusterNode, address string) (string, error) {
	return tryRun(netnsCommand(node.NetNS, "curl", "-sS", "--fail", "--max-time", "10", "http://"+address+"/metrics")...)
}

// waitForMetrics waits until each series (name{labels}, as exposed) has the wanted value.
func waitForMetrics(t *testing.T, node clusterNode, address string, want map[string]string) {
	t.Helper()
	var body string
	err := eventually(30e9, func() error {
		var err error
		if body, err = scrapeMetrics(node, address); err != nil {
			return err
		}
		for series, value := range want {
			if !strings.Contains("\n"+body, "\n"+series+" "+value+"\n") {
				return fmt.Errorf("%s is not %s", series, value)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v; agent metrics:\n%s", err, grepLines(body, "podvlan_agent_"))
	}
}

// grepLines keeps the lines of s that start with prefix.
func grepLines(s, prefix string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestAgentGCAndStatus: CNI GC removes attachments of sandboxes missing from the valid list, and
// STATUS follows the OVSDB connection.
func TestAgentGCAndStatus(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	node := c.node(t, 2)
	ns := c.createNamespace(t, "e2e-gc-")
	p100, _ := vlanPools(t, c, 60, 65)
	c.createNAD(t, ns, "vlan100", teststack.VLANNetworkConfig(0, p100))
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink))
	keep := c.newSandbox(t, ns, "keep", node, "vlan100")
	drop := c.newSandbox(t, ns, "drop", node, "vlan100")
	for _, s := range []*sandbox{keep, drop} {
		if _, err := a.addChained(t, s, "1.0.0"); err != nil {
			t.Fatalf("ADD %s: %v", s.Pod.Name, err)
		}
	}
	// GC is CNI 1.1; the reference plugins here speak up to 1.0, so the list holds `antrea` alone.
	list := a.delegateConf(t, `{"cniVersion": "1.1.0", "name": "e2e-primary", "type": "antrea"}`)
	valid := []types.GCAttachment{{ContainerID: keep.ContainerID, IfName: "eth0"}}
	if err := teststack.InNetNS(node.NetNS, func() error {
		return a.cniConfig().GCNetworkList(context.Background(), list, &libcni.GCArgs{ValidAttachments: valid})
	}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	ports := nodePodPorts(t, node)
	if len(ports) != 1 {
		t.Errorf("ports after GC: %v, want only keep's", ports)
	}
	c.waitPoolHolders(t, p100, holdCountOf(0, "the sandbox GC dropped", ofContainer(drop.ContainerID)))

	t.Run("STATUS is unavailable while OVSDB is down", func(t *testing.T) {
		ovs := &teststack.OVS{Dir: node.OVSDir}
		mustRun(t, "bash", teststack.RepoRoot(t)+"/hack/ovs.sh", "stop-db", ovs.Dir)
		restarted := false
		t.Cleanup(func() {
			if !restarted {
				_, _ = tryRun("bash", teststack.RepoRoot(t)+"/hack/ovs.sh", "start-db", ovs.Dir)
			}
		})
		err := eventually(10e9, func() error {
			if err := a.Status(context.Background()); err == nil {
				return fmt.Errorf("STATUS still ready")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var cniErr *types.Error
		if err := a.Status(context.Background()); !asCNIError(err, &cniErr) || cniErr.Code != types.ErrPluginNotAvailable {
			t.Errorf("STATUS error %v, want code %d", err, types.ErrPluginNotAvailable)
		}
		mustRun(t, "bash", teststack.RepoRoot(t)+"/hack/ovs.sh", "start-db", ovs.Dir)
		restarted = true
		if err := eventually(30e9, func() error { return a.Status(context.Background()) }); err != nil {
			t.Fatalf("STATUS not ready after ovsdb-server came back: %v", err)
		}
		if err := ping(keep.NetNS, c.ext(t, 100).IP.String()); err != nil {
			t.Errorf("kept sandbox lost connectivity across the OVSDB restart: %v", err)
		}
	})
	if err := a.delChained(t, keep, "1.0.0"); err != nil {
		t.Errorf("DEL keep: %v", err)
	}
}

func asCNIError(err error, target **types.Error) bool {
	var e *types.Error
	ok := errors.As(err, &e)
	if ok {
		*target = e
	}
	return ok
}
