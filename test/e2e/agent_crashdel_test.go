package e2e

// Crash tests of DEL and of a burst of ADDs: the agent is killed (SIGKILL) while CNI commands are
// in flight, the runtime goes on as containerd does (a DEL it got success for, spooled or not, is
// followed by the removal of the sandbox's network namespace; a failed ADD by a DEL and a new
// sandbox with a new container ID), and after the agent's restart every pool must hold exactly
// the live sandboxes' addresses, the bridge exactly their ports, no address twice.

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/cni/nodestate"
	"github.com/podvlan/podvlan/pkg/cni/nodestate/spool"
)

// convergeTimeout bounds how long after the agent's restart the Node may take to hold exactly the
// live sandboxes' attachments (spool drained, reconciliation run, block holders reported).
const convergeTimeout = 30 * time.Second

// crashFixture is one node-2 agent with a pool of VLAN 100 and a NetworkAttachmentDefinition
// "crash" naming it.
type crashFixture struct {
	c    *testCluster
	node clusterNode
	ns   string
	pool string
	a    *agentProcess
}

// newCrashFixture makes the pool 198.18.100.<first>-<last>; blocks turns the agent's IPPoolBlocks
// gate on (addresses from the Node's blocks, holders reported on the IPPoolBlocks).
func newCrashFixture(t *testing.T, first, last int, blocks bool) *crashFixture {
	t.Helper()
	c := newTestCluster(t)
	c.InstallCRDs(t)
	f := &crashFixture{c: c, node: c.node(t, 2), ns: c.createNamespace(t, "e2e-crashdel-"), pool: uniqueName("e2e-crashdel-")}
	c.createPool(t, f.pool, v1beta1.IPPoolSpec{
		IPRanges:   []v1beta1.IPRange{{Start: fmt.Sprintf("198.18.100.%d", first), End: fmt.Sprintf("198.18.100.%d", last)}},
		SubnetInfo: v1beta1.SubnetInfo{Gateway: "198.18.100.254", PrefixLength: 24, VLAN: 100},
	})
	// Blocks name their pool: a later agent of this node must not adopt them.
	t.Cleanup(func() { deletePoolBlocks(t, c, f.pool) })
	c.createNAD(t, f.ns, "crash", teststack.VLANNetworkConfig(0, f.pool))
	cfg := teststack.DefaultAgentConfig(f.node.Uplink)
	// Said either way: the gate's default is on.
	cfg.FeatureGates["IPPoolBlocks"] = blocks
	f.a = c.startAgent(t, f.node, cfg)
	return f
}

func deletePoolBlocks(t *testing.T, c *testCluster, pool string) {
	cl := c.crdClient(t)
	list, err := cl.CrdV1beta1().IPPoolBlocks().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Errorf("list IPPoolBlocks: %v", err)
		return
	}
	for _, b := range list.Items {
		if b.Spec.Pool == pool {
			_ = cl.CrdV1beta1().IPPoolBlocks().Delete(context.Background(), b.Name, metav1.DeleteOptions{})
		}
	}
}

// sandboxes creates n Pods (name<i>) and their sandboxes, and gives the agent's Pod cache time to
// see them: with the API server unreachable, an ADD whose Pod is not cached yet fails early.
func (f *crashFixture) sandboxes(t *testing.T, name string, n int) []*sandbox {
	t.Helper()
	out := make([]*sandbox, 0, n)
	for i := range n {
		out = append(out, f.c.newSandbox(t, f.ns, fmt.Sprintf("%s%d", name, i), f.node, "crash"))
	}
	time.Sleep(2 * time.Second)
	return out
}

// addAll runs ADD of every sandbox at once and returns each one's result and error.
func (f *crashFixture) addAll(t *testing.T, sbs []*sandbox, answered *atomic.Int32) ([]types.Result, []error) {
	results, errs := make([]types.Result, len(sbs)), make([]error, len(sbs))
	var wg sync.WaitGroup
	for i, s := range sbs {
		wg.Go(func() {
			results[i], errs[i] = f.a.addChained(t, s, "1.0.0")
			if answered != nil {
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	return results, errs
}

// mustAddAll runs ADD of every sandbox at once; each must succeed.
func (f *crashFixture) mustAddAll(t *testing.T, sbs []*sandbox) []types.Result {
	t.Helper()
	results, errs := f.addAll(t, sbs, nil)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ADD %s: %v\n%s", sbs[i].Pod.Name, err, f.holdersByPod(t))
		}
	}
	return results
}

// holdersByPod summarizes who holds the pool's addresses: Pod, sandboxes and addresses held.
func (f *crashFixture) holdersByPod(t *testing.T) string {
	t.Helper()
	held, err := f.c.readPoolHolders(t, f.pool)
	if err != nil {
		return fmt.Sprintf("pool holders unreadable: %v", err)
	}
	type holder struct {
		addrs      int
		containers map[string]bool
	}
	byPod := map[string]*holder{}
	for _, h := range held {
		pod := "(no Pod owner)"
		container := ""
		if h.Owner.Pod != nil {
			pod, container = h.Owner.Pod.Namespace+"/"+h.Owner.Pod.Name, h.Owner.Pod.ContainerID
		}
		if byPod[pod] == nil {
			byPod[pod] = &holder{containers: map[string]bool{}}
		}
		byPod[pod].addrs++
		byPod[pod].containers[container] = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pool %s: %d addresses held by %d Pods", f.pool, len(held), len(byPod))
	for _, pod := range slices.Sorted(maps.Keys(byPod)) {
		fmt.Fprintf(&b, "\n  %s: %d addresses, %d sandboxes", pod, byPod[pod].addrs, len(byPod[pod].containers))
	}
	blocks, err := f.c.crdClient(t).CrdV1beta1().IPPoolBlocks().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return b.String() + fmt.Sprintf("\nIPPoolBlocks unreadable: %v", err)
	}
	byNode := map[string][2]int{} // blocks, addresses recorded in them
	for _, blk := range blocks.Items {
		if blk.Spec.Pool == f.pool {
			n := byNode[blk.Spec.NodeName]
			byNode[blk.Spec.NodeName] = [2]int{n[0] + 1, n[1] + len(blk.Status.IPAddresses)}
		}
	}
	for _, node := range slices.Sorted(maps.Keys(byNode)) {
		fmt.Fprintf(&b, "\n  blocks of Node %q (\"\" = shared): %d, %d addresses recorded", node, byNode[node][0], byNode[node][1])
	}
	return b.String()
}

// delAll runs DEL of every sandbox at once and returns each one's error.
func (f *crashFixture) delAll(t *testing.T, sbs []*sandbox) []error {
	errs := make([]error, len(sbs))
	var wg sync.WaitGroup
	for i, s := range sbs {
		wg.Go(func() { errs[i] = f.a.delChained(t, s, "1.0.0") })
	}
	wg.Wait()
	return errs
}

// tornDown is what the runtime does once DEL succeeded: the sandbox's network namespace goes.
// Every other sandbox's Pod is deleted too (the Pod was deleted); the others' Pods stay (their
// sandbox was replaced, or the Pod is being recreated under its name).
func (f *crashFixture) tornDown(t *testing.T, sbs []*sandbox) {
	t.Helper()
	for i, s := range sbs {
		mustRun(t, "ip", "netns", "del", s.NetNS)
		if i%2 == 0 {
			if err := f.c.client.CoreV1().Pods(f.ns).Delete(context.Background(), s.Pod.Name,
				metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
				t.Fatalf("delete Pod %s: %v", s.Pod.Name, err)
			}
		}
	}
}

// spooled returns how many DELs wait in the agent's spool.
func (f *crashFixture) spooled(t *testing.T) int {
	t.Helper()
	entries, bad, err := spool.List(nodestate.ForSocket(f.a.Socket).Spool)
	if err != nil {
		t.Fatalf("read the DEL spool: %v", err)
	}
	return len(entries) + len(bad)
}

// converged waits (from the agent's restart, or the last DELs) until the node holds exactly the live sandboxes' attachments and the spool is
// empty, and fails the test (with the last difference) when it does not within convergeTimeout.
func (f *crashFixture) converged(t *testing.T, live []*sandbox, results map[*sandbox]types.Result) {
	t.Helper()
	start := time.Now()
	err := eventually(convergeTimeout, func() error {
		if err := onlyLive(t, f.c, f.node, f.pool, live); err != nil {
			return err
		}
		if err := noAddressTwice(t, f.c, f.pool, live, results); err != nil {
			return err
		}
		if n := f.spooled(t); n != 0 {
			return fmt.Errorf("%d DELs still spooled", n)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after %s: %v", time.Since(start).Round(100*time.Millisecond), err)
	}
	t.Logf("the node holds exactly the %d live sandboxes' attachments after %s", len(live),
		time.Since(start).Round(100*time.Millisecond))
}

// noAddressTwice checks that no address of the pool is held twice and that each live sandbox
// holds the address its ADD answered (when results has it).
func noAddressTwice(t *testing.T, c *testCluster, pool string, live []*sandbox, results map[*sandbox]types.Result) error {
	t.Helper()
	byAddress := map[string]string{}
	byContainer := map[string]string{}
	var problems []string
	for _, a := range c.poolAllocations(t, pool) {
		id := ""
		if a.Owner.Pod != nil {
			id = a.Owner.Pod.ContainerID
		}
		if other, ok := byAddress[a.IPAddress]; ok {
			problems = append(problems, fmt.Sprintf("%s is held by %s and %s", a.IPAddress, other, id))
		}
		byAddress[a.IPAddress] = id
		byContainer[id] = a.IPAddress
	}
	answered := map[string]string{}
	for _, s := range live {
		r, ok := results[s]
		if !ok {
			continue
		}
		for _, ip := range resultIPs(t, r) {
			if ip == "" || !strings.HasPrefix(ip, "198.18.100.") {
				continue // the primary network's
			}
			addr := strings.SplitN(ip, "/", 2)[0]
			if other, ok := answered[addr]; ok {
				problems = append(problems, fmt.Sprintf("ADD gave %s to %s and %s", addr, other, s.Pod.Name))
			}
			answered[addr] = s.Pod.Name
			if got := byContainer[s.ContainerID]; got != addr {
				problems = append(problems, fmt.Sprintf("%s was given %s, the pool records %q for it", s.Pod.Name, addr, got))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// ovsdbServerPID is the pid of the node's ovsdb-server.
func ovsdbServerPID(t *testing.T, c *testCluster, node clusterNode) int {
	t.Helper()
	pidFile := filepath.Join(node.OVSDir, "run", "ovsdb-server.pid")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestAgentDELCrashPointsLeakNothing kills the agent while DELs are stopped at one step, or at a
// random moment, restarts it, and checks that the pool (and its IPPoolBlocks) holds exactly the
// live sandboxes' addresses and the bridge exactly their ports. Every DEL must succeed for the
// runtime (the shim spools what the dying agent did not finish); the runtime then removes the
// sandboxes' namespaces and deletes half of their Pods.
//
//   - before the ports go: the node's ovsdb-server is stopped (SIGSTOP), so the DELs wait on it;
//   - between the ports and the addresses: the node cannot reach the API server, so the releases
//     of the pool's status (or, with blocks, the reports of the blocks' holders) hang after the
//     ports and veths are gone;
//   - at random moments of a few DELs at once.
func TestAgentDELCrashPointsLeakNothing(t *testing.T) {
	for _, blocks := range []bool{false, true} {
		t.Run(fmt.Sprintf("IPPoolBlocks=%v", blocks), func(t *testing.T) { testDELCrashPoints(t, blocks) })
	}
}

func testDELCrashPoints(t *testing.T, blocks bool) {
	f := newCrashFixture(t, 10, 99, blocks)
	live := f.sandboxes(t, "live", 2)
	results := map[*sandbox]types.Result{}
	for i, r := range f.mustAddAll(t, live) {
		results[live[i]] = r
	}
	const inFlight = 6

	crash := func(t *testing.T, name string, fault func() (undo func()), reached func() error) {
		sbs := f.sandboxes(t, name, inFlight)
		f.mustAddAll(t, sbs)
		undo := func() {}
		if fault != nil {
			undo = fault()
		}
		undone := false
		defer func() {
			if !undone {
				undo()
			}
		}()
		var errs []error
		done := make(chan struct{})
		go func() { errs = f.delAll(t, sbs); close(done) }()
		if err := reached(); err != nil {
			f.a.Kill()
			<-done
			t.Fatalf("the DELs did not reach the crash point: %v", err)
		}
		f.a.Kill()
		<-done
		undo()
		undone = true
		for i, err := range errs {
			if err != nil {
				t.Errorf("DEL %s with the agent killed: %v (DEL must never fail: it is spooled)", sbs[i].Pod.Name, err)
			}
		}
		t.Logf("%d of %d DELs spooled", f.spooled(t), len(sbs))
		f.tornDown(t, sbs)
		f.a.start(t)
		f.converged(t, live, results)
	}

	t.Run("killed before the ports go", func(t *testing.T) {
		pid := ovsdbServerPID(t, f.c, f.node)
		crash(t, "ovsdb", func() func() {
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			return func() { _ = syscall.Kill(pid, syscall.SIGCONT) }
		}, func() error {
			// Nothing to observe while OVSDB is stopped: the DELs are given time to reach it.
			time.Sleep(1500 * time.Millisecond)
			return nil
		})
	})

	t.Run("killed between the ports and the addresses", func(t *testing.T) {
		apiPort := apiServerPort(t, f.c)
		rule := []string{"OUTPUT", "-p", "tcp", "--dport", apiPort, "-j", "DROP"}
		crash(t, "release", func() func() {
			mustRun(t, netnsCommand(f.node.NetNS, append([]string{"iptables", "-I"}, rule...)...)...)
			return func() { _, _ = tryRun(netnsCommand(f.node.NetNS, append([]string{"iptables", "-D"}, rule...)...)...) }
		}, func() error {
			return eventually(60*time.Second, func() error {
				if ports := nodePodPorts(t, f.node); len(ports) > len(live) {
					return fmt.Errorf("%d ports", len(ports))
				}
				return nil
			})
		})
	})

	for round := range 4 {
		after := time.Duration(rand.IntN(600)) * time.Millisecond
		t.Run(fmt.Sprintf("killed %s into the DELs", after), func(t *testing.T) {
			crash(t, fmt.Sprintf("random%d-", round), nil, func() error {
				time.Sleep(after)
				return nil
			})
		})
	}

	for i, err := range f.delAll(t, live) {
		if err != nil {
			t.Errorf("DEL %s: %v", live[i].Pod.Name, err)
		}
	}
	f.converged(t, nil, nil)
}

// TestAgentBurstCrashLeaksNothing is issue 14's burst: 50 Pods' sandboxes ADDed at once and the
// agent killed in the middle. The runtime answers every failed ADD with a DEL (spooled: the agent
// is away) and, as the kubelet does, retries the Pod with a new sandbox (new container ID) later;
// meanwhile Pods that were running are deleted (DELs spooled too). After the restart and the
// retried ADDs, the pool holds exactly the live sandboxes' addresses, the bridge exactly their
// ports, and no address is held or given twice.
func TestAgentBurstCrashLeaksNothing(t *testing.T) {
	for _, blocks := range []bool{false, true} {
		t.Run(fmt.Sprintf("IPPoolBlocks=%v", blocks), func(t *testing.T) { testBurstCrash(t, blocks) })
	}
}

func testBurstCrash(t *testing.T, blocks bool) {
	const (
		running = 10
		burst   = 50
		deleted = 4 // running sandboxes torn down while the agent is away
	)
	f := newCrashFixture(t, 10, 249, blocks)
	results := map[*sandbox]types.Result{}
	old := f.sandboxes(t, "running", running)
	for i, r := range f.mustAddAll(t, old) {
		results[old[i]] = r
	}

	sbs := f.sandboxes(t, "burst", burst)
	var answered atomic.Int32
	var burstResults []types.Result
	var burstErrs []error
	done := make(chan struct{})
	go func() { burstResults, burstErrs = f.addAll(t, sbs, &answered); close(done) }()
	// Mid-burst: some ADDs answered or some addresses allocated, not all.
	if err := eventually(2*time.Minute, func() error {
		if n := answered.Load(); n >= 10 {
			return nil
		}
		if n := len(f.c.poolAllocations(t, f.pool)); n < running+20 {
			return fmt.Errorf("%d ADDs answered, %d addresses allocated", answered.Load(), n)
		}
		return nil
	}); err != nil {
		t.Fatalf("the burst did not get going: %v", err)
	}
	f.a.Kill()
	<-done
	allocated := len(f.c.poolAllocations(t, f.pool)) - running

	var live, failed []*sandbox
	live = append(live, old[deleted:]...)
	for i, s := range sbs {
		if burstErrs[i] != nil {
			failed = append(failed, s)
			continue
		}
		results[s] = burstResults[i]
		live = append(live, s)
	}
	t.Logf("agent killed with %d of %d ADDs answered (%d failed), %d addresses allocated for the burst",
		burst-len(failed), burst, len(failed), allocated)
	if len(failed) == 0 {
		t.Log("every ADD of the burst was answered before the kill: this run crashed nothing in flight")
	}

	// The runtime tears the failed sandboxes down, and the deleted Pods' sandboxes, while the
	// agent is away: every DEL must succeed (spooled).
	gone := append(slices.Clone(old[:deleted]), failed...)
	for i, err := range f.delAll(t, gone) {
		if err != nil {
			t.Errorf("DEL %s with the agent away: %v", gone[i].Pod.Name, err)
		}
	}
	t.Logf("%d DELs spooled", f.spooled(t))
	f.tornDown(t, old[:deleted])
	for _, s := range failed {
		mustRun(t, "ip", "netns", "del", s.NetNS)
	}

	f.a.start(t)
	// The kubelet retries each failed Pod with a new sandbox.
	var retried []*sandbox
	for _, s := range failed {
		retried = append(retried, newPodSandbox(t, s.Pod))
	}
	for i, r := range f.mustAddAll(t, retried) {
		results[retried[i]] = r
	}
	live = append(live, retried...)
	f.converged(t, live, results)

	for i, err := range f.delAll(t, live) {
		if err != nil {
			t.Errorf("DEL %s: %v", live[i].Pod.Name, err)
		}
	}
	f.converged(t, nil, nil)
}
