package ipam

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	"github.com/podvlan/podvlan/pkg/client/informers/externalversions"
)

// Scale knobs of the heavy tests (CI runs them on 2 CPUs next to everything else):
//
//	PODVLAN_IPAM_FILL_PREFIX  prefix length of the pool the 8 Nodes fill (default 16)
//	PODVLAN_IPAM_NODES        simulated Nodes of the many-Nodes test (default 1000)
//	PODVLAN_IPAM_PER_NODE     allocations per simulated Node (default 100)
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// widePool creates a pool of one CIDR of the given prefix length at a random place of 10.0.0.0/8
// (away from the /16 of nextV4) and deletes its blocks when the test ends.
func (c *realCluster) widePool(t *testing.T, bits int) (string, netip.Prefix) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		var subnet netip.Prefix
		for {
			a := netip.AddrFrom4([4]byte{10, byte(rand.IntN(100)), byte(rand.IntN(256)), 0})
			subnet = netip.PrefixFrom(a, bits).Masked()
			if !subnet.Contains(netip.AddrFrom4([4]byte{10, byte(subnetBase), 0, 0})) {
				break
			}
		}
		gw := subnet.Addr().Next()
		name := fmt.Sprintf("ipam-blk-%08x", rand.Uint32())
		_, err := c.admin.CrdV1beta1().IPPools().Create(context.Background(), &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1beta1.IPPoolSpec{IPRanges: []v1beta1.IPRange{{CIDR: subnet.String()}},
				SubnetInfo: v1beta1.SubnetInfo{Gateway: gw.String(), PrefixLength: int32(bits)}}}, metav1.CreateOptions{})
		if err != nil && strings.Contains(err.Error(), "overlaps") && attempt < 10 {
			continue // another test's pool (the webhook refuses overlaps): elsewhere
		}
		if err != nil {
			t.Fatalf("create IPPool %s: %v", name, err)
		}
		c.cleanupPool(t, name)
		c.deleteBlocksAtCleanup(t, name)
		return name, subnet
	}
}

// deleteBlocksAtCleanup deletes the pool's IPPoolBlocks when the test ends (registered after the
// pool, so it runs before the pool's own cleanup).
func (c *realCluster) deleteBlocksAtCleanup(t *testing.T, pool string) {
	t.Cleanup(func() {
		ctx := context.Background()
		list, err := c.admin.CrdV1beta1().IPPoolBlocks().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Logf("list IPPoolBlocks: %v", err)
			return
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, b := range list.Items {
			if b.Spec.Pool != pool {
				continue
			}
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				_ = c.admin.CrdV1beta1().IPPoolBlocks().Delete(ctx, b.Name, metav1.DeleteOptions{})
			})
		}
		wg.Wait()
	})
}

// nodeAllocator returns a block-allocating Allocator for a Node, with its own client, connection
// and informers, as the agent of that Node has.
func (c *realCluster) nodeAllocator(t *testing.T, node, stateDir string, opts Options) *Allocator {
	t.Helper()
	cfg := rest.CopyConfig(c.cfg)
	cfg.Dial = (&net.Dialer{}).DialContext
	client := versioned.NewForConfigOrDie(cfg)
	factory := externalversions.NewSharedInformerFactory(client, 0)
	opts.NodeName, opts.StateDir, opts.Blocks = node, stateDir, factory.Crd().V1beta1().IPPoolBlocks()
	a, err := NewAllocator(client, factory.Crd().V1beta1().IPPools(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return a
}

// blockHolders reads every IPPoolBlock of a pool from the API server and maps each holder's
// address to "containerID/ifName" ("DUPLICATE" when two entries name one address).
func (c *realCluster) blockHolders(t *testing.T, pool string) (map[netip.Addr]string, []v1beta1.IPPoolBlock) {
	t.Helper()
	list, err := c.admin.CrdV1beta1().IPPoolBlocks().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[netip.Addr]string{}
	var blocks []v1beta1.IPPoolBlock
	for _, b := range list.Items {
		if b.Spec.Pool != pool {
			continue
		}
		blocks = append(blocks, b)
		cidr := netip.MustParsePrefix(b.Spec.CIDR)
		for _, e := range b.Status.IPAddresses {
			a := netip.MustParseAddr(e.IPAddress)
			if !cidr.Contains(a) {
				t.Errorf("IPPoolBlock %s (%s) records %s", b.Name, cidr, a)
			}
			if _, dup := out[a]; dup {
				out[a] = "DUPLICATE"
				continue
			}
			out[a] = e.Owner.Pod.ContainerID + "/" + e.Owner.Pod.IFName
		}
	}
	return out, blocks
}

// allocatable lists every address the pool may hand out.
func allocatable(t *testing.T, c *realCluster, pool string) []netip.Addr {
	t.Helper()
	p, err := c.admin.CrdV1beta1().IPPools().Get(context.Background(), pool, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newPoolSpace(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, r := range s.ranges {
		for a := r.first; a.IsValid() && a.Compare(r.last) <= 0; a = a.Next() {
			if !s.isReserved(a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// TestBlocksFillAPoolToItsLastAddressFromEightNodes fills a /16 (PODVLAN_IPAM_FILL_PREFIX) from 8
// Nodes, 8 requests in flight each, until every Node is told the pool is exhausted: every
// allocatable address is handed out exactly once and recorded in the blocks under its holder, and
// the rate per 1,000 allocations stays flat until the pool's blocks run out (the last addresses go
// through shared blocks, one conditional write each).
func TestBlocksFillAPoolToItsLastAddressFromEightNodes(t *testing.T) {
	c := newRealCluster(t)
	bits := envInt(t, "PODVLAN_IPAM_FILL_PREFIX", 16)
	pool, subnet := c.widePool(t, bits)
	want := allocatable(t, c, pool)
	const nodes, inFlight = 8, 8
	allocs := make([]*Allocator, nodes)
	for i := range allocs {
		allocs[i] = c.nodeAllocator(t, fmt.Sprintf("fill-node-%d", i), t.TempDir(), Options{})
	}

	var (
		mu       sync.Mutex
		got      = map[netip.Addr]string{}
		dups     []string
		count    atomic.Int64
		marks    = []time.Time{time.Now()} // time of every 1,000th allocation
		seq      atomic.Int64
		failures atomic.Int64
	)
	ctx := context.Background()
	var wg sync.WaitGroup
	for n, a := range allocs {
		for range inFlight {
			wg.Go(func() {
				exhausted := 0
				for exhausted < 10 {
					id := fmt.Sprintf("fill-%d-%d", n, seq.Add(1))
					res, err := a.Allocate(ctx, Request{Owner: podOwner(id, "eth1"), Pools: []string{pool}})
					var ex *PoolExhaustedError
					switch {
					case errors.As(err, &ex):
						exhausted++
						time.Sleep(100 * time.Millisecond)
						continue
					case err != nil:
						failures.Add(1)
						t.Errorf("node %d: %v", n, err)
						return
					}
					exhausted = 0
					addr := res.IPs[0].Address.Addr()
					mu.Lock()
					if prev, dup := got[addr]; dup {
						dups = append(dups, fmt.Sprintf("%s to %s and %s", addr, prev, id))
					}
					got[addr] = id + "/eth1"
					if k := count.Add(1); k%1000 == 0 {
						marks = append(marks, time.Now())
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	end := time.Now()
	for _, a := range allocs {
		a.FlushBlocks()
	}
	if len(dups) > 0 {
		t.Fatalf("%d addresses handed out twice, first: %v", len(dups), dups[:min(5, len(dups))])
	}
	if len(got) != len(want) {
		var missing []netip.Addr
		for _, a := range want {
			if _, ok := got[a]; !ok {
				missing = append(missing, a)
			}
		}
		t.Errorf("pool %s (%s): %d of %d allocatable addresses handed out; never handed out: %v",
			pool, subnet, len(got), len(want), missing[:min(10, len(missing))])
	}
	recorded, blocks := c.blockHolders(t, pool)
	for a, holder := range got {
		if recorded[a] != holder {
			t.Errorf("%s: handed to %s, the blocks record %q", a, holder, recorded[a])
		}
	}
	if len(recorded) != len(got) {
		t.Errorf("the blocks record %d holders, %d addresses were handed out", len(recorded), len(got))
	}

	// Rate per 1,000.
	var rates []float64
	for i := 1; i < len(marks); i++ {
		rates = append(rates, 1000/marks[i].Sub(marks[i-1]).Seconds())
	}
	total := end.Sub(marks[0])
	var claimed, writes, conflicts uint64
	for _, a := range allocs {
		s := a.Stats()
		claimed, writes, conflicts = claimed+s.BlocksClaimed, writes+s.BlockWrites, conflicts+s.BlockConflicts
	}
	shared := 0
	for _, b := range blocks {
		if b.Spec.NodeName == "" {
			shared++
		}
	}
	t.Logf("filled %s (%d addresses) from %d Nodes in %v: %.0f allocations/s overall; %d blocks claimed (%d shared at the end), %d block writes, %d lost races",
		subnet, len(got), nodes, total.Round(time.Millisecond), float64(len(got))/total.Seconds(), claimed, shared, writes, conflicts)
	t.Logf("allocations/s per 1,000: %s", formatRates(rates))
	if len(rates) >= 4 {
		// Flat: the first and the last full thousand before the pool's end differ by less than 3x
		// (reported, not a wall-clock assertion).
		t.Logf("first 1,000: %.0f/s, median: %.0f/s, last full 1,000: %.0f/s", rates[0], median(rates), rates[len(rates)-1])
	}
}

func formatRates(r []float64) string {
	parts := make([]string, len(r))
	for i, v := range r {
		parts[i] = strconv.Itoa(int(v))
	}
	return strings.Join(parts, " ")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestBlocksManyNodesOnOnePool runs 1,000 simulated Node allocators (PODVLAN_IPAM_NODES), each
// allocating 100 addresses (PODVLAN_IPAM_PER_NODE) from one /15 pool at once: no address is handed
// out twice, and the API writes stay within twice the blocks claimed (a claim, and one report of
// the holders; requests refused because another Node won the race write nothing and are reported
// apart). The simulated Nodes share one client and one informer (a process cannot hold a
// thousand watches cheaply); each has its own Node name, state directory and blocks.
func TestBlocksManyNodesOnOnePool(t *testing.T) {
	c := newRealCluster(t)
	nodes := envInt(t, "PODVLAN_IPAM_NODES", 1000)
	perNode := envInt(t, "PODVLAN_IPAM_PER_NODE", 100)
	pool, subnet := c.widePool(t, 15)

	client := versioned.NewForConfigOrDie(c.cfg)
	factory := externalversions.NewSharedInformerFactory(client, 0)
	allocs := make([]*Allocator, nodes)
	dir := t.TempDir()
	for i := range allocs {
		a, err := NewAllocator(client, factory.Crd().V1beta1().IPPools(), Options{
			NodeName: fmt.Sprintf("sim-node-%04d", i), StateDir: filepath.Join(dir, strconv.Itoa(i)),
			// Holders are reported once, at the end (FlushBlocks): the run is one burst per Node.
			Blocks: factory.Crd().V1beta1().IPPoolBlocks(), BlockSyncDelay: time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		allocs[i] = a
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	latencies := make([][]time.Duration, nodes)
	firsts := make([]time.Duration, nodes)
	var failed atomic.Int64
	addrs := make([][]netip.Addr, nodes)
	start := time.Now()
	var wg sync.WaitGroup
	for n, a := range allocs {
		wg.Go(func() {
			for k := range perNode {
				id := fmt.Sprintf("sim-%d-%d", n, k)
				t0 := time.Now()
				res, err := a.Allocate(ctx, Request{Owner: podOwner(id, "eth1"), Pools: []string{pool}})
				for retry := 0; err != nil && retry < 3; retry++ {
					// As the runtime retries a failed sandbox: an API server overloaded by a
					// thousand Nodes claiming at once can time a claim out.
					failed.Add(1)
					t.Logf("node %d allocation %d (retried): %v", n, k, err)
					res, err = a.Allocate(ctx, Request{Owner: podOwner(id, "eth1"), Pools: []string{pool}})
				}
				if err != nil {
					t.Errorf("node %d allocation %d: %v", n, k, err)
					return
				}
				if k > 0 { // the first waits for the Node's first claim
					latencies[n] = append(latencies[n], time.Since(t0))
				} else {
					firsts[n] = time.Since(t0)
				}
				addrs[n] = append(addrs[n], res.IPs[0].Address.Addr())
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	sem := make(chan struct{}, 32)
	for _, a := range allocs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			a.FlushBlocks()
		})
	}
	wg.Wait()

	seen := map[netip.Addr]int{}
	var all []time.Duration
	for n := range addrs {
		for _, a := range addrs[n] {
			if prev, dup := seen[a]; dup {
				t.Errorf("%s handed out to Node %d and Node %d", a, prev, n)
			}
			seen[a] = n
		}
		all = append(all, latencies[n]...)
	}
	var claimed, writes, conflicts, writeErrors, shared uint64
	for _, a := range allocs {
		s := a.Stats()
		claimed, writes, conflicts, shared = claimed+s.BlocksClaimed, writes+s.BlockWrites, conflicts+s.BlockConflicts, shared+s.SharedWrites
		writeErrors += s.BlockWriteErrors
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	slices.Sort(firsts)
	t.Logf("%d Nodes x %d allocations on %s: %d addresses in %v (%.0f/s); latency after a Node's first: p50 %v, p99 %v, max %v; "+
		"first of each Node (waits for its first claim): p50 %v, p99 %v; %d blocks claimed, %d block writes (%d lost races, %d failed, %d to shared blocks), %d requests retried",
		nodes, perNode, subnet, len(seen), elapsed.Round(time.Millisecond), float64(len(seen))/elapsed.Seconds(),
		pct(0.5), pct(0.99), pct(1), firsts[len(firsts)/2], firsts[len(firsts)*99/100], claimed, writes, conflicts, writeErrors, shared, failed.Load())
	if len(seen) != nodes*perNode {
		t.Errorf("%d distinct addresses, want %d", len(seen), nodes*perNode)
	}
	// Writes that changed something: the requests that lost a race for a block (AlreadyExists)
	// or a shared block's resourceVersion (Conflict) were refused and wrote nothing; those that
	// failed otherwise (an overloaded API server timing a claim out) are counted apart, as the
	// sender cannot know whether they took effect (a claim that did is adopted, and counted).
	// Near the end of the pool a few blocks are shared and written per address (counted apart).
	if written := writes - conflicts - writeErrors - shared; written > 2*claimed {
		t.Errorf("%d IPPoolBlock writes for %d blocks claimed: more than two per block", written, claimed)
	}
	recorded, _ := c.blockHolders(t, pool)
	for a, n := range seen {
		if !strings.HasPrefix(recorded[a], fmt.Sprintf("sim-%d-", n)) {
			t.Errorf("%s: handed out by Node %d, the blocks record %q", a, n, recorded[a])
		}
	}
}

// childEnv names, for the child process of TestBlocksSurviveKill9MidBurst, the pool, the Node and
// the state directory.
const childEnv = "PODVLAN_IPAM_CHILD"

// TestBlockAllocatorChild is the agent that TestBlocksSurviveKill9MidBurst kills: it allocates
// without end, printing every answered allocation. It does nothing unless started by that test.
func TestBlockAllocatorChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("run by TestBlocksSurviveKill9MidBurst only")
	}
	parts := strings.Split(spec, ",") // pool,node,stateDir
	c := newRealCluster(t)
	a := c.nodeAllocator(t, parts[1], parts[2], Options{})
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var seq atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				id := fmt.Sprintf("kill-%d", seq.Add(1))
				res, err := a.Allocate(context.Background(), Request{Owner: podOwner(id, "eth1"), Pools: []string{parts[0]}})
				mu.Lock()
				if err != nil {
					fmt.Fprintf(out, "err %v\n", err)
				} else {
					fmt.Fprintf(out, "ok %s %s\n", res.IPs[0].Address.Addr(), id)
				}
				out.Flush()
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestBlocksSurviveKill9MidBurst kills (SIGKILL) an agent process in the middle of a burst of
// allocations, starts the Node's allocator again on the same state directory, and checks that no
// address answered before the kill, nor any address recorded but not yet answered, is handed out
// again, and that a repeated request of an answered owner gets its address back.
func TestBlocksSurviveKill9MidBurst(t *testing.T) {
	c := newRealCluster(t)
	pool, _ := c.widePool(t, 20)
	dir := t.TempDir()
	node := "kill-node"
	cmd := exec.Command(os.Args[0], "-test.run=^TestBlockAllocatorChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join([]string{pool, node, dir}, ","))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	answered := map[netip.Addr]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(answered) < 300 {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "ok" {
			answered[netip.MustParseAddr(f[1])] = f[2]
		} else if f[0] == "err" {
			t.Fatalf("child: %s", sc.Text())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(answered) < 300 {
		t.Fatalf("the child answered %d allocations before it ended", len(answered))
	}

	a := c.nodeAllocator(t, node, dir, Options{})
	ctx := context.Background()
	held, err := a.Allocations(Filter{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[netip.Addr]string{}
	for _, al := range held {
		recorded[al.Address] = al.Owner.ContainerID
	}
	for addr, id := range answered {
		if recorded[addr] != id {
			t.Errorf("after the restart %s is recorded for %q, it was answered to %s", addr, recorded[addr], id)
		}
	}
	t.Logf("killed after %d answered allocations; %d recorded after the restart", len(answered), len(recorded))
	for id := range 500 {
		res, err := a.Allocate(ctx, Request{Owner: podOwner(fmt.Sprintf("after-%d", id), "eth1"), Pools: []string{pool}})
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := recorded[res.IPs[0].Address.Addr()]; ok {
			t.Fatalf("%s handed out again after the restart; it was held by %s", res.IPs[0].Address.Addr(), prev)
		}
		recorded[res.IPs[0].Address.Addr()] = "after"
	}
	for addr, id := range answered {
		res, err := a.Allocate(ctx, Request{Owner: podOwner(id, "eth1"), Pools: []string{pool}})
		if err != nil || res.IPs[0].Address.Addr() != addr {
			t.Errorf("repeated request of %s: %v, %v; want %s", id, res, err, addr)
		}
		break
	}
}

// TestBlocksHonourAPoolOfThePreviousVersion upgrades a pool in place: allocations recorded in
// status.ipAddresses by the previous version (the Allocator without a Node) stay with their owners,
// are never handed out from a block, come back on a repeated request and are released from the
// list; the rest of the pool is handed out from blocks until it is exhausted.
func TestBlocksHonourAPoolOfThePreviousVersion(t *testing.T) {
	c := newRealCluster(t)
	pool, _ := c.v4Pool(t, 0, "1", v1beta1.IPRange{CIDR: "0/24"})
	c.deleteBlocksAtCleanup(t, pool)
	ctx := context.Background()
	old := c.newAllocator(t, Options{})
	legacy := map[netip.Addr]string{}
	for i := range 40 {
		id := fmt.Sprintf("old-%d", i)
		res, err := old.Allocate(ctx, Request{Owner: podOwner(id, "eth1"), Pools: []string{pool}})
		if err != nil {
			t.Fatal(err)
		}
		legacy[res.IPs[0].Address.Addr()] = id
	}

	nodes := []*Allocator{c.nodeAllocator(t, "upgrade-a", t.TempDir(), Options{}), c.nodeAllocator(t, "upgrade-b", t.TempDir(), Options{})}
	// A repeated ADD of a Pod allocated before the upgrade gets its address back.
	for addr, id := range legacy {
		res, err := nodes[0].Allocate(ctx, Request{Owner: podOwner(id, "eth1"), Pools: []string{pool}})
		if err != nil || res.IPs[0].Address.Addr() != addr {
			t.Fatalf("repeated request of %s after the upgrade: %v %v, want %s", id, res, err, addr)
		}
		break
	}
	got := map[netip.Addr]string{}
	for i := 0; ; i++ {
		res, err := nodes[i%2].Allocate(ctx, Request{Owner: podOwner(fmt.Sprintf("new-%d", i), "eth1"), Pools: []string{pool}})
		var ex *PoolExhaustedError
		if errors.As(err, &ex) {
			// The other Node may still be sharing its blocks: give it a moment once.
			time.Sleep(time.Second)
			if res, err = nodes[i%2].Allocate(ctx, Request{Owner: podOwner(fmt.Sprintf("new-%d", i), "eth1"), Pools: []string{pool}}); errors.As(err, &ex) {
				if res, err = nodes[(i+1)%2].Allocate(ctx, Request{Owner: podOwner(fmt.Sprintf("new-%d", i), "eth1"), Pools: []string{pool}}); errors.As(err, &ex) {
					break
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		addr := res.IPs[0].Address.Addr()
		if id, ok := legacy[addr]; ok {
			t.Fatalf("%s handed out from a block; the previous version gave it to %s", addr, id)
		}
		if prev, ok := got[addr]; ok {
			t.Fatalf("%s handed out twice (%s)", addr, prev)
		}
		got[addr] = fmt.Sprint(i)
	}
	if len(got)+len(legacy) != 253 {
		t.Errorf("%d new and %d old allocations, want 253 in all", len(got), len(legacy))
	}
	// Releasing an old allocation removes it from status.ipAddresses.
	for addr, id := range legacy {
		if err := nodes[1].Release(ctx, podOwner(id, "eth1")); err != nil {
			t.Fatal(err)
		}
		for _, e := range c.status(t, pool).IPAddresses {
			if e.IPAddress == addr.String() {
				t.Errorf("%s still listed after its release", addr)
			}
		}
		break
	}
}

// TestBlocksStaticAddresses: a static address in a block nobody holds creates a shared block
// holding it; one in the Node's own block is recorded locally; one in another Node's block is
// refused with that Node's name.
func TestBlocksStaticAddresses(t *testing.T) {
	c := newRealCluster(t)
	pool, subnet := c.widePool(t, 20) // blocks of 64
	ctx := context.Background()
	a := c.nodeAllocator(t, "static-a", t.TempDir(), Options{})
	b := c.nodeAllocator(t, "static-b", t.TempDir(), Options{})
	res, err := a.Allocate(ctx, Request{Owner: podOwner("dyn-a", "eth1"), Pools: []string{pool}})
	if err != nil {
		t.Fatal(err)
	}
	inA := res.IPs[0].Address.Addr()
	ownBlock := blockOf(inA, 26)
	free := lastOf(ownBlock).Prev()
	if _, err := a.Allocate(ctx, Request{Owner: podOwner("st-a", "eth1"), Pools: []string{pool},
		Static: []StaticAddress{{Address: netip.PrefixFrom(free, subnet.Bits())}}}); err != nil {
		t.Fatalf("static %s in the Node's own block: %v", free, err)
	}
	time.Sleep(200 * time.Millisecond) // let b's cache see a's block
	other := lastOf(ownBlock).Prev().Prev()
	_, err = b.Allocate(ctx, Request{Owner: podOwner("st-b", "eth1"), Pools: []string{pool},
		Static: []StaticAddress{{Address: netip.PrefixFrom(other, subnet.Bits())}}})
	var se *StaticAddressError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "static-a") {
		t.Errorf("static %s in Node static-a's block requested on static-b: %v, want an error naming static-a", other, err)
	}
	far := lastOf(subnet).Prev()
	if _, err := b.Allocate(ctx, Request{Owner: podOwner("st-far", "eth1"), Pools: []string{pool},
		Static: []StaticAddress{{Address: netip.PrefixFrom(far, subnet.Bits())}}}); err != nil {
		t.Fatalf("static %s in an unclaimed block: %v", far, err)
	}
	blk, err := c.admin.CrdV1beta1().IPPoolBlocks().Get(ctx, BlockName(pool, blockOf(far, 26)), metav1.GetOptions{})
	if err != nil || blk.Spec.NodeName != "" || len(blk.Status.IPAddresses) != 1 {
		t.Fatalf("block of %s: %+v, %v; want a shared block holding it", far, blk, err)
	}
	// Nobody else gets it, and the same Node gets a free address of the shared block.
	if _, err := a.Allocate(ctx, Request{Owner: podOwner("st-far2", "eth1"), Pools: []string{pool},
		Static: []StaticAddress{{Address: netip.PrefixFrom(far, subnet.Bits())}}}); !errors.As(err, &se) {
		t.Errorf("second claim of %s: %v, want a StaticAddressError", far, err)
	}
	if err := b.Release(ctx, podOwner("st-far", "eth1")); err != nil {
		t.Fatal(err)
	}
	if blk, err := c.admin.CrdV1beta1().IPPoolBlocks().Get(ctx, blk.Name, metav1.GetOptions{}); err != nil || len(blk.Status.IPAddresses) != 0 {
		t.Errorf("after the release the shared block holds %v (%v)", blk.Status.IPAddresses, err)
	}
}

// TestBlocksTakenBackAreNotHandedOutAgainByTheirFormerNode: once the controller has made a Node's
// block shared (its Node object was deleted while the agent still ran), the agent hands out nothing
// new from it locally; its holders stay, and further allocations of both Nodes are unique.
func TestBlocksTakenBackAreNotHandedOutAgainByTheirFormerNode(t *testing.T) {
	c := newRealCluster(t)
	pool, _ := c.widePool(t, 20)
	ctx := context.Background()
	x := c.nodeAllocator(t, "takeback-x", t.TempDir(), Options{})
	y := c.nodeAllocator(t, "takeback-y", t.TempDir(), Options{})
	got := map[netip.Addr]string{}
	alloc := func(a *Allocator, id string) {
		t.Helper()
		res, err := a.Allocate(ctx, Request{Owner: podOwner(id, "eth1"), Pools: []string{pool}})
		if err != nil {
			t.Fatal(err)
		}
		addr := res.IPs[0].Address.Addr()
		if prev, dup := got[addr]; dup {
			t.Fatalf("%s handed out to %s and %s", addr, prev, id)
		}
		got[addr] = id
	}
	for i := range 10 {
		alloc(x, fmt.Sprintf("x-%d", i))
	}
	x.FlushBlocks()
	_, blocks := c.blockHolders(t, pool)
	if len(blocks) == 0 {
		t.Fatal("no block claimed")
	}
	// What the controller does for a deleted Node.
	for _, b := range blocks {
		b.Spec.NodeName = ""
		if _, err := c.admin.CrdV1beta1().IPPoolBlocks().Update(ctx, &b, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond) // the watch brings the change to both Nodes
	for i := range 100 {
		alloc(x, fmt.Sprintf("x-after-%d", i))
		alloc(y, fmt.Sprintf("y-after-%d", i))
	}
	x.FlushBlocks()
	y.FlushBlocks()
	recorded, _ := c.blockHolders(t, pool)
	for addr, id := range got {
		if recorded[addr] != id+"/eth1" {
			t.Errorf("%s handed to %s, recorded for %q", addr, id, recorded[addr])
		}
	}
}

// TestBlocksAPoolInOneBlockIsSharedWithTheNextNode: when the first Node's claim takes the pool's
// only block, the Node shares it, and a second Node allocates the pool's other address (found by
// the end-to-end suite: the watch brought the new block before the claim recorded it as the
// Node's, the check then saw nothing to share, and the second Node's ADD failed as exhausted).
func TestBlocksAPoolInOneBlockIsSharedWithTheNextNode(t *testing.T) {
	c := newRealCluster(t)
	ctx := context.Background()
	for round := range 5 {
		// A /24 is cut into blocks of 4: .68-.69 lie in the one block .68/30.
		pool, _ := c.v4Pool(t, 0, "1", v1beta1.IPRange{Start: "68", End: "69"})
		c.deleteBlocksAtCleanup(t, pool)
		first := c.nodeAllocator(t, fmt.Sprintf("one-block-a%d", round), t.TempDir(), Options{})
		second := c.nodeAllocator(t, fmt.Sprintf("one-block-b%d", round), t.TempDir(), Options{})
		a, err := first.Allocate(ctx, Request{Owner: podOwner(fmt.Sprintf("a%d", round), "eth1"), Pools: []string{pool}})
		if err != nil {
			t.Fatalf("round %d: first Node: %v", round, err)
		}
		b, err := second.Allocate(ctx, Request{Owner: podOwner(fmt.Sprintf("b%d", round), "eth1"), Pools: []string{pool}})
		if err != nil {
			t.Fatalf("round %d: second Node, with one of the pool's two addresses free: %v", round, err)
		}
		if a.IPs[0].Address.Addr() == b.IPs[0].Address.Addr() {
			t.Fatalf("round %d: %s handed out twice", round, a.IPs[0].Address.Addr())
		}
	}
}

// TestBlocksReleaseAfterARestartBeforeAnyAllocation: the first request of a restarted agent may be
// a release (a spooled DEL, a vanished sandbox); it must find the holder in the Node's records
// (found by the end-to-end suite: the address stayed held after its sandbox was gone).
func TestBlocksReleaseAfterARestartBeforeAnyAllocation(t *testing.T) {
	c := newRealCluster(t)
	ctx := context.Background()
	pool, _ := c.v4Pool(t, 0, "1", v1beta1.IPRange{CIDR: "0/24"})
	c.deleteBlocksAtCleanup(t, pool)
	dir := t.TempDir()
	before := c.nodeAllocator(t, "restart-release", dir, Options{})
	res, err := before.Allocate(ctx, Request{Owner: podOwner("gone", "eth1"), Pools: []string{pool}})
	if err != nil {
		t.Fatal(err)
	}
	before.FlushBlocks()
	after := c.nodeAllocator(t, "restart-release", dir, Options{})
	if err := after.ReleaseContainer(ctx, "gone"); err != nil {
		t.Fatalf("release after the restart: %v", err)
	}
	list, err := after.Allocations(Filter{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	for _, al := range list {
		if al.Owner.ContainerID == "gone" {
			t.Fatalf("%s is still held by the released container after the restart", res.IPs[0].Address.Addr())
		}
	}
}

// TestBlocksBurstsRefillAPoolTheNodeShared is the burst benchmark's pattern: one Node, a pool of
// 252 addresses, three bursts of 100 ADDs at once each followed by their DELs. The third burst
// runs out of blocks to claim, so the Node shares its blocks and goes on through them. The
// benchmark once saw a request told "IPPool ... is exhausted: all 252 allocatable addresses are
// in use" with 100 in use: a request that finds no local block right after the Node shared its
// blocks, before the watch shows them shared (othersHaveRoom now waits for that). The window is
// narrow; this test runs the pattern, it does not force the window.
func TestBlocksBurstsRefillAPoolTheNodeShared(t *testing.T) {
	c := newRealCluster(t)
	ctx := context.Background()
	pool, _ := c.v4Pool(t, 0, "254", v1beta1.IPRange{Start: "2", End: "253"})
	c.deleteBlocksAtCleanup(t, pool)
	a := c.nodeAllocator(t, "bursts", t.TempDir(), Options{})
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 100 {
			wg.Go(func() {
				id := fmt.Sprintf("burst-%d-%d", round, i)
				if _, err := a.Allocate(ctx, Request{Owner: podOwner(id, "eth1"), Pools: []string{pool}}); err != nil {
					errs <- fmt.Errorf("round %d, Pod %d: %w", round, i, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
		for i := range 100 {
			if err := a.ReleaseContainer(ctx, fmt.Sprintf("burst-%d-%d", round, i)); err != nil {
				t.Fatalf("round %d: release Pod %d: %v", round, i, err)
			}
		}
	}
}
