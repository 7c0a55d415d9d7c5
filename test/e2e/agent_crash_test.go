package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// TestAgentCrashPointsLeakNothing kills the agent (SIGKILL) while several ADDs are stopped at one
// step, with no DEL from the runtime afterwards, restarts it, and checks that the pool holds
// exactly the live sandboxes' addresses and the bridge exactly their ports: whatever the killed
// ADDs recorded (intents), allocated, or plugged in is gone.
//
//   - between intent and allocation: the node cannot reach the API server (its packets to the
//     API server are dropped), so the allocations hang after the intents are written. They take
//     their addresses from a pool the node has not used yet: an agent with address blocks
//     allocates inside a block it holds without the API server, but must claim a first block;
//   - between allocation and port commit: the node's ovs-vswitchd is stopped (SIGSTOP), so the
//     ports never come up after the addresses are allocated.
func TestAgentCrashPointsLeakNothing(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	node := c.node(t, 2)
	ns := c.createNamespace(t, "e2e-crash-")
	pool := uniqueName("e2e-crash-")
	c.createPool(t, pool, v1beta1.IPPoolSpec{
		IPRanges:   []v1beta1.IPRange{{Start: "198.18.100.70", End: "198.18.100.99"}},
		SubnetInfo: v1beta1.SubnetInfo{Gateway: "198.18.100.254", PrefixLength: 24, VLAN: 100},
	})
	c.createNAD(t, ns, "crash", teststack.VLANNetworkConfig(0, pool))
	fresh := uniqueName("e2e-crash-fresh-")
	c.createPool(t, fresh, v1beta1.IPPoolSpec{
		IPRanges:   []v1beta1.IPRange{{Start: "198.18.101.70", End: "198.18.101.99"}},
		SubnetInfo: v1beta1.SubnetInfo{Gateway: "198.18.101.254", PrefixLength: 24, VLAN: 100},
	})
	c.createNAD(t, ns, "crash-fresh", teststack.VLANNetworkConfig(0, fresh))
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink))

	var live []*sandbox
	for i := range 3 {
		s := c.newSandbox(t, ns, fmt.Sprintf("live%d", i), node, "crash")
		if _, err := a.addChained(t, s, "1.0.0"); err != nil {
			t.Fatalf("ADD %s: %v", s.Pod.Name, err)
		}
		live = append(live, s)
	}

	const inFlight = 6
	crash := func(t *testing.T, name, nad string, fault func() (undo func()), reached func() error) {
		var sandboxes []*sandbox
		for i := range inFlight {
			sandboxes = append(sandboxes, c.newSandbox(t, ns, fmt.Sprintf("%s%d", name, i), node, nad))
		}
		// Let the agent's Pod cache see the new Pods: with the API server unreachable, an ADD
		// whose Pod is not cached yet would stop before its intent instead of after it.
		time.Sleep(2 * time.Second)
		undo := fault()
		undone := false
		defer func() {
			if !undone {
				undo()
			}
		}()
		var wg sync.WaitGroup
		for _, s := range sandboxes {
			wg.Go(func() { _, _ = a.addChained(t, s, "1.0.0") })
		}
		if err := eventually(60*time.Second, reached); err != nil {
			t.Fatalf("the ADDs did not reach the crash point: %v", err)
		}
		a.Kill()
		wg.Wait()
		undo()
		undone = true
		a.start(t) // returns once STATUS is ready, which is after the first reconciliation

		if err := eventually(20*time.Second, func() error { return onlyLive(t, c, node, pool, live) }); err != nil {
			t.Error(err)
		}
	}

	t.Run("killed between intent and allocation", func(t *testing.T) {
		apiPort := apiServerPort(t, c)
		rule := []string{"OUTPUT", "-p", "tcp", "--dport", apiPort, "-j", "DROP"}
		crash(t, "intent", "crash-fresh", func() func() {
			mustRun(t, netnsCommand(node.NetNS, append([]string{"iptables", "-I"}, rule...)...)...)
			return func() { _, _ = tryRun(netnsCommand(node.NetNS, append([]string{"iptables", "-D"}, rule...)...)...) }
		}, func() error {
			if n := len(nodeIntents(t, node)); n < inFlight {
				return fmt.Errorf("%d intents", n)
			}
			return nil
		})
		c.waitPoolHolders(t, fresh, holdNone())
	})

	t.Run("killed between allocation and port commit", func(t *testing.T) {
		pidFile := filepath.Join(node.OVSDir, "run", "ovs-vswitchd.pid")
		data, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		crash(t, "alloc", "crash", func() func() {
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			return func() { _ = syscall.Kill(pid, syscall.SIGCONT) }
		}, func() error {
			if n := len(c.poolAllocations(t, pool)); n < len(live)+inFlight {
				return fmt.Errorf("%d allocations", n)
			}
			return nil
		})
	})

	for _, s := range live {
		if err := a.delChained(t, s, "1.0.0"); err != nil {
			t.Errorf("DEL %s: %v", s.Pod.Name, err)
		}
	}
	if err := eventually(holdersTimeout, func() error { return onlyLive(t, c, node, pool, nil) }); err != nil {
		t.Error(err)
	}
}

// onlyLive checks that the pool, the bridge, the node's veths and intents hold exactly the live
// sandboxes' attachments.
func onlyLive(t *testing.T, c *testCluster, node clusterNode, pool string, live []*sandbox) error {
	t.Helper()
	var want []string
	for _, s := range live {
		want = append(want, s.ContainerID)
	}
	slices.Sort(want)
	var held []string
	for _, ip := range c.poolAllocations(t, pool) {
		if ip.Owner.Pod != nil {
			held = append(held, ip.Owner.Pod.ContainerID)
		}
	}
	slices.Sort(held)
	var problems []string
	if !slices.Equal(held, want) {
		problems = append(problems, fmt.Sprintf("pool %s holds addresses of containers %v, want %v", pool, held, want))
	}
	if ports := nodePodPorts(t, node); len(ports) != len(live) {
		problems = append(problems, fmt.Sprintf("bridge holds ports %v, want %d", ports, len(live)))
	}
	if veths := hostVeths(t, node); len(veths) != len(live) {
		problems = append(problems, fmt.Sprintf("node holds veths %v, want %d", veths, len(live)))
	}
	if intents := nodeIntents(t, node); len(intents) != 0 {
		problems = append(problems, fmt.Sprintf("intents left: %v", intents))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// nodeIntents returns the keys of the attachment intents in the node's OVSDB.
func nodeIntents(t *testing.T, node clusterNode) []string {
	t.Helper()
	out, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "--timeout=30", "get", "Open_vSwitch", ".", "external_ids")
	if err != nil {
		t.Fatalf("read intents: %v", err)
	}
	var keys []string
	for _, f := range strings.Split(strings.Trim(strings.TrimSpace(out), "{}"), ", ") {
		k, _, _ := strings.Cut(f, "=")
		if k = strings.Trim(k, `"`); strings.HasPrefix(k, "podvlan-intent/") {
			keys = append(keys, k)
		}
	}
	return keys
}

// apiServerPort is the TCP port of the API server.
func apiServerPort(t *testing.T, c *testCluster) string {
	t.Helper()
	url := c.APIServer
	i := strings.LastIndex(url, ":")
	if i < 0 {
		t.Fatalf("APISERVER %q has no port", url)
	}
	return strings.TrimSuffix(url[i+1:], "/")
}

// TestAgentGCIsScopedToItsNetwork: a GC for an IPAM-only network with an empty valid list
// releases that network's addresses only; the chained attachments of other Pods stay intact.
func TestAgentGCIsScopedToItsNetwork(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	node := c.node(t, 2)
	ns := c.createNamespace(t, "e2e-gcscope-")
	p100, _ := vlanPools(t, c, 110, 115)
	c.createNAD(t, ns, "vlan100", teststack.VLANNetworkConfig(0, p100))
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink))
	chained := c.newSandbox(t, ns, "chained", node, "vlan100")
	if _, err := a.addChained(t, chained, "1.0.0"); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	ipamOnly := c.newSandbox(t, ns, "ipam-only", node, "")
	conf := `{"cniVersion": "1.1.0", "name": "ipam-only", "type": "bridge", "cniSocket": "` + a.Socket +
		`", "ipam": {"type": "antrea", "ippools": ["` + p100 + `"]}}`
	shim := filepath.Join(projectBinaries(t), "antrea")
	exec := func(command, config string) error {
		args := &invoke.Args{Command: command, ContainerID: ipamOnly.ContainerID, NetNS: ipamOnly.NetNSPath(), IfName: "eth0",
			PluginArgsStr: "K8S_POD_NAMESPACE=" + ns + ";K8S_POD_NAME=ipam-only", Path: filepath.Dir(shim)}
		if command == "GC" {
			args.ContainerID, args.NetNS, args.IfName, args.PluginArgsStr = "", "", "", ""
		}
		return teststack.InNetNS(node.NetNS, func() error {
			if command == "ADD" {
				_, err := invoke.ExecPluginWithResult(context.Background(), shim, []byte(config), args, nil)
				return err
			}
			return invoke.ExecPluginWithoutResult(context.Background(), shim, []byte(config), args, nil)
		})
	}
	if err := exec("ADD", conf); err != nil {
		t.Fatalf("IPAM-only ADD: %v", err)
	}
	c.waitPoolHolders(t, p100, holdCount(2)) // the chained and the IPAM-only one
	if t.Failed() {
		t.FailNow()
	}
	gc := strings.Replace(conf, `{"cniVersion"`, `{"cni.dev/valid-attachments": [], "cniVersion"`, 1)
	if err := exec("GC", gc); err != nil {
		t.Fatalf("IPAM-only GC: %v", err)
	}
	// After the IPAM-only GC only the chained sandbox's address is left.
	c.waitPoolHolders(t, p100, holdAll(holdCount(1), holdCountOf(1, "the chained sandbox", ofContainer(chained.ContainerID))))
	if ports := nodePodPorts(t, node); len(ports) != 1 {
		t.Errorf("after the IPAM-only GC the bridge holds %v, want the chained port", ports)
	}
	if err := ping(chained.NetNS, c.ext(t, 100).IP.String()); err != nil {
		t.Errorf("the chained sandbox lost connectivity: %v", err)
	}
	if err := a.delChained(t, chained, "1.0.0"); err != nil {
		t.Errorf("DEL: %v", err)
	}
}
