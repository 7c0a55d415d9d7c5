package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/agent/sandboxes"
	"github.com/podvlan/podvlan/pkg/cni/nodestate"
	"github.com/podvlan/podvlan/pkg/cni/nodestate/spool"
	"github.com/podvlan/podvlan/pkg/cniinstall"
)

// spoolDrainDeadline is how soon after the agent's return a Pod deleted in its absence must have
// released its addresses and port.
const spoolDrainDeadline = 10 * time.Second

// chainShim chains the project's shim into node-1's primary CNI configuration, pointing at the
// agent's socket, and unchains it when the test ends (before the agent stops).
func chainShim(t *testing.T, c *testCluster, a *agentProcess) {
	t.Helper()
	confDir, binDir := c.CNIConfDir, c.CNIBinDir
	conflist := c.CNIConflist
	data, err := os.ReadFile(conflist)
	if err != nil {
		t.Fatalf("read node-1's CNI configuration: %v", err)
	}
	if chained, err := cniinstall.HasEntry(data); err != nil || chained {
		t.Fatalf("%s already chains antrea (%v): another install is active on node-1", conflist, err)
	}
	_, err = os.Stat(filepath.Join(binDir, "antrea"))
	binaryBefore := err == nil
	opts := cniinstall.Options{ConfDir: confDir, BinDir: binDir, PluginBinary: filepath.Join(projectBinaries(t), "antrea"), CNISocket: a.Socket}
	if _, err := cniinstall.Install(opts); err != nil {
		t.Fatalf("chain the shim on node-1: %v", err)
	}
	t.Cleanup(func() {
		if binaryBefore {
			opts.BinDir = t.TempDir() // leave the binary an earlier install put there
		}
		if _, err := cniinstall.Uninstall(opts); err != nil {
			t.Errorf("unchain the shim on node-1: %v", err)
		}
	})
}

// allocationsOf returns the addresses a pool holds for a Pod, read once.
func allocationsOf(t *testing.T, c *testCluster, pool, namespace, name string) []string {
	t.Helper()
	return addressesOf(c.poolAllocations(t, pool), ofPod(namespace, name))
}

// waitAllocationsOf waits until a pool holds n addresses for a Pod, and returns them.
func waitAllocationsOf(t *testing.T, c *testCluster, pool, namespace, name string, n int) []string {
	t.Helper()
	held := c.waitPoolHolders(t, pool, holdCountOf(n, "Pod "+namespace+"/"+name, ofPod(namespace, name)))
	return addressesOf(held, ofPod(namespace, name))
}

// TestShimWithoutAgent is issue 14's "agent away" on the real kubelet node: with the agent stopped,
// a Pod without secondary networks starts (the shim answers from the Pod annotations containerd
// passes) and is deleted normally (its DEL spooled); an annotated Pod gets an Event naming the
// absent agent and starts once the agent is back; a Pod deleted while the agent was away is gone,
// and its address and port are released within 10 s of the agent's return (the spool drained).
// Every sandbox the kubelet creates is recorded, with its Pod UID, also without the agent.
func TestShimWithoutAgent(t *testing.T) {
	c := newTestCluster(t)
	node := c.node(t, 1)
	if !c.hasKubelet(node.Name) {
		t.Skipf("%s runs no kubelet", node.Name)
	}
	c.InstallCRDs(t)
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink))
	chainShim(t, c, a)
	dirs := nodestate.ForSocket(a.Socket)
	store := sandboxes.New(dirs.Sandboxes)

	ns := c.createNamespace(t, "e2e-shim-")
	p100, _ := vlanPools(t, c, 150, 159)
	c.createNAD(t, ns, "vlan100", teststack.VLANNetworkConfig(100, p100))
	annotated := func(name string) *corev1.Pod {
		p := c.testPod(t, ns, name, node.Name, name)
		p.Annotations = map[string]string{nadv1.NetworkAttachmentAnnot: "vlan100"}
		return p
	}

	// With the agent up: an annotated Pod gets eth1 and an address; its sandbox is recorded.
	early := c.createPod(t, annotated("early"))
	if waitAllocationsOf(t, c, p100, ns, "early", 1); t.Failed() {
		t.FailNow()
	}
	if _, ok := findPodPort(t, node, ns, "early", "eth1"); !ok {
		t.Fatalf("no OVS port for %s/early eth1", ns)
	}
	if sb, ok := store.Lookup(string(early.UID)); !ok || sb.PodName != "early" || sb.IfName != "eth0" || !sandboxes.IsNetworkNamespace(sb.Netns) {
		t.Errorf("sandbox of %s/early (UID %s) = %+v, %v; want its live netns recorded", ns, early.UID, sb, ok)
	}

	a.Stop()
	t.Log("agent stopped")

	t.Run("a Pod without networks starts and is deleted without the agent", func(t *testing.T) {
		plain := c.createPod(t, c.testPod(t, ns, "plain", node.Name, "plain"))
		sb, ok := store.Lookup(string(plain.UID))
		if !ok || sb.PodNamespace != ns || sb.PodName != "plain" {
			t.Errorf("sandbox of %s/plain = %+v, %v; want it recorded without the agent", ns, sb, ok)
		}
		c.deleteAndWait(t, ns, "plain")
		if _, ok := store.Lookup(string(plain.UID)); ok {
			t.Errorf("the sandbox record of the deleted Pod %s/plain is still there", ns)
		}
	})

	var earlyLeft []string
	t.Run("a Pod with networks deleted while the agent is away is gone, its DEL spooled", func(t *testing.T) {
		c.deleteAndWait(t, ns, "early")
		entries, _, err := spool.List(dirs.Spool)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range entries {
			found = found || strings.Contains(e.Entry.Args, "K8S_POD_NAME=early")
		}
		if !found {
			t.Errorf("no spooled DEL for %s/early in %s: %+v", ns, dirs.Spool, entries)
		}
		// While the agent is away its address stays.
		earlyLeft = waitAllocationsOf(t, c, p100, ns, "early", 1)
	})

	t.Run("an annotated Pod gets an Event naming the absent agent", func(t *testing.T) {
		if _, err := c.client.CoreV1().Pods(ns).Create(context.Background(), annotated("waiting"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		const want = "antrea-agent is not running on this Node"
		var events []string
		if err := eventually(podStartTimeout, func() error {
			events = c.podEvents(t, ns, "waiting")
			for _, e := range events {
				if strings.Contains(e, want) {
					return nil
				}
			}
			return fmt.Errorf("no Event says %q", want)
		}); err != nil {
			t.Errorf("%v; events: %v", err, events)
		}
	})
	if t.Failed() {
		return
	}

	a.start(t)
	back := time.Now()
	t.Log("agent back")

	t.Run("the spooled DEL runs within 10 s of the agent's return", func(t *testing.T) {
		err := eventually(spoolDrainDeadline, func() error {
			if got := allocationsOf(t, c, p100, ns, "early"); len(got) != 0 {
				return fmt.Errorf("pool %s still holds %v for %s/early", p100, got, ns)
			}
			if port, ok := findPodPort(t, node, ns, "early", "eth1"); ok {
				return fmt.Errorf("OVS port %s of %s/early is still there", port.Name, ns)
			}
			entries, _, err := spool.List(dirs.Spool)
			if err != nil {
				return err
			}
			if len(entries) != 0 {
				return fmt.Errorf("%d DELs still spooled", len(entries))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%v, %s after the agent's return", err, time.Since(back).Round(time.Millisecond))
		}
		t.Logf("released %v and drained the spool %s after the agent's return", earlyLeft, time.Since(back).Round(time.Millisecond))
	})

	t.Run("the annotated Pod starts once the agent is back", func(t *testing.T) {
		c.waitRunning(t, ns, "waiting")
		waitAllocationsOf(t, c, p100, ns, "waiting", 1)
	})
}
