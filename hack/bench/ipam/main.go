// Command ipam measures IP address allocation on a real API server, for the agent's allocator
// (pkg/ipam) and for Whereabouts, the IPAM plugin users would pick instead, in the same run. For
// 1, 4 and 8 allocating Nodes, each with at most 8 requests in flight (a kubelet's parallelism),
// it fills a fresh large pool and reports allocations/s and latency per band of 1,000
// allocations (0->1k, 1k->2k, ...), since what matters is the rate once a pool holds thousands of
// addresses, not only from an empty one. Every simulated Node of ours has its own client,
// connection and informer; Whereabouts runs as it always does, one process per allocation. The
// API server's raw rate of status writes to one IPPool is measured beside them.
//
//	go run ./hack/bench/ipam [-fill 6000] [-budget 90s] [-wb-allocations 300] [-wb-budget 45s]
//
// Each run stops issuing requests once its time budget is spent, and reports the bands it
// completed. A run fails outright when an address is handed out twice.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	bh "github.com/podvlan/podvlan/internal/benchharness"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	"github.com/podvlan/podvlan/pkg/client/informers/externalversions"
	"github.com/podvlan/podvlan/pkg/ipam"
)

// Targets of issue 18: at 8 Nodes, ours at least 20 times Whereabouts' rate, at most a tenth of
// its p99, in every band of the fill.
const (
	targetRateRatio = 20.0
	targetP99Ratio  = 0.1
)

type options struct {
	nodes         []int
	inFlight      int
	fill          int
	fillSmall     int
	band          int
	budget        time.Duration
	wbAllocations int
	wbBudget      time.Duration
	rawFor        time.Duration
	out           string
}

func main() {
	var o options
	nodes := flag.String("nodes", "1,4,8", "comma-separated counts of allocating Nodes")
	flag.IntVar(&o.inFlight, "in-flight", 8, "requests in flight per Node")
	flag.IntVar(&o.fill, "fill", 6000, "allocations of the agent's allocator at the largest Node count")
	flag.IntVar(&o.fillSmall, "fill-small", 1000, "allocations of the agent's allocator at the other Node counts")
	flag.IntVar(&o.band, "band", 1000, "allocations per band")
	flag.DurationVar(&o.budget, "budget", 90*time.Second, "time budget of one run of the agent's allocator")
	flag.IntVar(&o.wbAllocations, "wb-allocations", 300, "allocations of Whereabouts per Node count")
	flag.DurationVar(&o.wbBudget, "wb-budget", 45*time.Second, "time budget of one Whereabouts run")
	flag.DurationVar(&o.rawFor, "raw-duration", 3*time.Second, "how long to measure the raw status write rate")
	flag.StringVar(&o.out, "out", "", "JSON output (default <repo>/_output/bench/ipam.json)")
	flag.Parse()
	klog.InitFlags(nil)
	var err error
	if o.nodes, err = parseInts(*nodes); err != nil {
		fmt.Fprintln(os.Stderr, "ipam bench: -nodes:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "ipam bench:", err)
		os.Exit(1)
	}
}

// poolPrefix is the size of every pool: a /18, 16,384 addresses, room for the largest fill.
const poolPrefix = 18

func run(ctx context.Context, o options) error {
	b, err := bh.Start(ctx, "ipam")
	if err != nil {
		return err
	}
	defer b.Cleanup.Run()
	c := b.Cluster
	if o.out == "" {
		o.out = filepath.Join(c.OutputDir(), "ipam.json")
	}
	be := &bench{cfg: c.Config, admin: c.CRD, net: rand.IntN(30) + 20}
	rep := bh.IPAMReport{Benchmark: "ipam", PoolAddresses: 1 << (32 - poolPrefix), BandSize: o.band, Machine: bh.NewMachine()}
	rep.RawWriteEntries = 512
	if rep.RawWritesPerSec, err = be.rawWriteRate(ctx, rep.RawWriteEntries, o.rawFor); err != nil {
		return fmt.Errorf("raw write rate: %w", err)
	}
	wb, err := b.NewWhereabouts(ctx)
	if err != nil {
		return err
	}
	largest := slicesMax(o.nodes)
	for _, n := range o.nodes {
		fill := o.fillSmall
		if n == largest {
			fill = o.fill
		}
		fmt.Printf("podvlan: %d Nodes x %d in flight, filling %d\n", n, o.inFlight, fill)
		r, err := be.ours(ctx, n, o.inFlight, fill, o.band, o.budget)
		if err != nil {
			return fmt.Errorf("podvlan, %d Nodes: %w", n, err)
		}
		rep.Runs = append(rep.Runs, r)
		fmt.Printf("whereabouts: %d Nodes x %d in flight, up to %d\n", n, o.inFlight, o.wbAllocations)
		w, err := be.whereabouts(ctx, wb, n, o.inFlight, o.wbAllocations, o.band, o.wbBudget)
		if err != nil {
			return fmt.Errorf("whereabouts, %d Nodes: %w", n, err)
		}
		rep.Runs = append(rep.Runs, w)
	}
	rep.Targets = targets(rep, largest)
	rep.Machine.Finish()
	printReport(rep)
	if err := bh.WriteJSON(o.out, rep); err != nil {
		return err
	}
	fmt.Println("Wrote", o.out)
	return nil
}

// targets compares, at the largest Node count, every band of our fill with Whereabouts' best:
// its first band, from an empty pool (it only slows as its pool object grows).
func targets(rep bh.IPAMReport, nodes int) []bh.Target {
	ours, ok1 := rep.Run("podvlan", nodes)
	wb, ok2 := rep.Run("whereabouts", nodes)
	if !ok1 || !ok2 {
		return nil
	}
	out := []bh.Target{bh.NewTarget("ipam", fmt.Sprintf("%d Nodes: failed allocations", nodes), float64(ours.Failures), 0,
		"failures", ours.FirstFailure)}
	if len(wb.Bands) == 0 || len(ours.Bands) == 0 {
		// Without a rate on both sides there is no ratio: a MISS with no value, and why.
		return append(out, bh.NewMinimumTarget("ipam", fmt.Sprintf("%d Nodes: allocations/s vs Whereabouts", nodes), 0,
			targetRateRatio, "x Whereabouts", fmt.Sprintf("Whereabouts: %d allocations, %d failed (%s)", wb.Allocations,
				wb.Failures, wb.FirstFailure)))
	}
	ref := wb.Bands[0]
	for _, band := range ours.Bands {
		name := fmt.Sprintf("%d Nodes, fill %s", nodes, bandName(band))
		out = append(out,
			bh.NewMinimumTarget("ipam", name+": allocations/s vs Whereabouts", bh.Ratio(band.AllocsPerSec, ref.AllocsPerSec),
				targetRateRatio, "x Whereabouts", fmt.Sprintf("%.1f/s vs %.1f/s (Whereabouts %s)", band.AllocsPerSec,
					ref.AllocsPerSec, bandName(ref))),
			bh.NewTarget("ipam", name+": p99 vs Whereabouts", bh.Ratio(band.Latency.P99, ref.Latency.P99), targetP99Ratio,
				"x Whereabouts", fmt.Sprintf("%.1f ms vs %.1f ms", band.Latency.P99, ref.Latency.P99)))
	}
	return out
}

func bandName(b bh.IPAMBand) string { return fmt.Sprintf("%s->%s", thousands(b.From), thousands(b.To)) }

func thousands(n int) string {
	if n%1000 == 0 && n > 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	if n > 1000 {
		return fmt.Sprintf("%.1fk", float64(n)/1000)
	}
	return strconv.Itoa(n)
}

type bench struct {
	cfg   *rest.Config
	admin versioned.Interface
	net   int // second octet of the benchmark's address space, 10.<net>.0.0
	seq   int
	nodes atomic.Int64 // simulated Nodes made so far, for their names
}

// subnet returns the next /18 of the benchmark's address space.
func (b *bench) subnet() netip.Prefix {
	b.seq++
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b.net + b.seq/4), byte((b.seq % 4) * 64), 0}), poolPrefix)
}

// createPool creates an IPPool over subnet under a unique name.
func (b *bench) createPool(ctx context.Context, prefix string, subnet netip.Prefix) (*v1beta1.IPPool, func(), error) {
	name := fmt.Sprintf("%s-%08x", prefix, rand.Uint32())
	gw := subnet.Addr().Next()
	p, err := b.admin.CrdV1beta1().IPPools().Create(ctx, &v1beta1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"podvlan.io/bench": "true"}},
		Spec: v1beta1.IPPoolSpec{IPRanges: []v1beta1.IPRange{{CIDR: subnet.String()}},
			SubnetInfo: v1beta1.SubnetInfo{Gateway: gw.String(), PrefixLength: int32(subnet.Bits())}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("create IPPool %s: %w", name, err)
	}
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if cur, err := b.admin.CrdV1beta1().IPPools().Get(ctx, name, metav1.GetOptions{}); err == nil {
			cur.Status = v1beta1.IPPoolStatus{}
			_, _ = b.admin.CrdV1beta1().IPPools().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		}
		_ = b.admin.CrdV1beta1().IPPools().Delete(ctx, name, metav1.DeleteOptions{})
	}
	return p, cleanup, nil
}

// rawWriteRate writes the status of one pool holding entries addresses as fast as one client
// can, one write after the other, each changing one entry, for the given duration.
func (b *bench) rawWriteRate(ctx context.Context, entries int, d time.Duration) (float64, error) {
	pool, cleanup, err := b.createPool(ctx, "bench-raw", b.subnet())
	if err != nil {
		return 0, err
	}
	defer cleanup()
	addr := netip.MustParseAddr(pool.Spec.SubnetInfo.Gateway)
	for i := range entries {
		addr = addr.Next()
		pool.Status.IPAddresses = append(pool.Status.IPAddresses, v1beta1.IPAddressState{
			IPAddress: addr.String(), Phase: v1beta1.IPAddressPhaseAllocated,
			Owner: v1beta1.IPAddressOwner{Pod: &v1beta1.PodOwner{Name: fmt.Sprintf("pod-%d", i), Namespace: "bench",
				ContainerID: fmt.Sprintf("%064x", i), IFName: "net1", UID: fmt.Sprintf("uid-%d", i)}}})
	}
	client := b.admin.CrdV1beta1().IPPools()
	if pool, err = client.UpdateStatus(ctx, pool, metav1.UpdateOptions{}); err != nil {
		return 0, err
	}
	writes := 0
	start := time.Now()
	for time.Since(start) < d {
		last := &pool.Status.IPAddresses[len(pool.Status.IPAddresses)-1]
		last.Owner.Pod.IFName = fmt.Sprintf("net%d", writes%2) // a real change, so the server really writes
		if pool, err = client.UpdateStatus(ctx, pool, metav1.UpdateOptions{}); err != nil {
			return 0, err
		}
		writes++
	}
	return float64(writes) / time.Since(start).Seconds(), nil
}

// ours fills a fresh pool with the agent's allocator from n simulated Nodes.
func (b *bench) ours(ctx context.Context, n, inFlight, total, band int, budget time.Duration) (bh.IPAMRun, error) {
	r := bh.IPAMRun{Allocator: "podvlan", Nodes: n, InFlight: inFlight}
	pool, cleanup, err := b.createPool(ctx, fmt.Sprintf("bench-ipam-%d", n), b.subnet())
	if err != nil {
		return r, err
	}
	defer cleanup()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	allocators := make([]*ipam.Allocator, n)
	for i := range allocators {
		if allocators[i], err = b.newAllocator(runCtx, pool.Name); err != nil {
			return r, err
		}
	}
	got := make([]netip.Addr, total)
	start, done, stopped := bh.Fill(ctx, n, inFlight, total, budget, func(node, i int) error {
		owner := ipam.Owner{Namespace: "bench", Name: fmt.Sprintf("pod-%d", i), UID: fmt.Sprintf("uid-%d", i),
			ContainerID: fmt.Sprintf("%064x", rand.Uint64()), IFName: "net1"}
		res, err := allocators[node].Allocate(ctx, ipam.Request{Owner: owner, Pools: []string{pool.Name}})
		if err != nil {
			return err
		}
		got[i] = res.IPs[0].Address.Addr()
		return nil
	})
	summarize(&r, start, done, stopped, band)
	if err := noDuplicates(got); err != nil {
		return r, err
	}
	for _, a := range allocators {
		s := a.Stats()
		r.StatusWrites += s.Writes
		r.ConflictRetries += s.Conflicts
	}
	return r, nil
}

// whereabouts fills a fresh range with Whereabouts from n Nodes.
func (b *bench) whereabouts(ctx context.Context, wb *bh.Whereabouts, n, inFlight, total, band int, budget time.Duration) (bh.IPAMRun, error) {
	r := bh.IPAMRun{Allocator: "whereabouts", Nodes: n, InFlight: inFlight}
	subnet := b.subnet()
	network := fmt.Sprintf("bench-wb-%d-%06x", n, rand.IntN(1<<24))
	got := make([]netip.Addr, total)
	start, done, stopped := bh.Fill(ctx, n, inFlight, total, budget, func(node, i int) error {
		addr, err := wb.Allocate(ctx, network, subnet.String(), fmt.Sprintf("wb-%d-%d", n, i), bh.NewContainerID())
		got[i] = addr
		return err
	})
	summarize(&r, start, done, stopped, band)
	return r, noDuplicates(got)
}

func summarize(r *bh.IPAMRun, start time.Time, done []bh.Completion, stopped bool, band int) {
	r.Stopped = stopped
	lat := make([]time.Duration, 0, len(done))
	ok := make([]bh.Completion, 0, len(done))
	var end time.Time
	for _, c := range done {
		if c.Err != nil {
			if r.Failures == 0 {
				r.FirstFailure = c.Err.Error()
			}
			r.Failures++
			continue
		}
		lat = append(lat, c.Latency)
		ok = append(ok, c)
		end = c.At
	}
	r.Allocations = len(lat)
	if r.Allocations > 0 {
		r.Seconds = end.Sub(start).Seconds()
		r.AllocsPerSec = float64(r.Allocations) / r.Seconds
	}
	r.Latency = bh.Summarize(lat)
	// The bands count allocations: a failed request is no address handed out.
	r.Bands = bh.FillBands(start, ok, band)
}

func noDuplicates(got []netip.Addr) error {
	seen := map[netip.Addr]bool{}
	for _, a := range got {
		if !a.IsValid() {
			continue
		}
		if seen[a] {
			return fmt.Errorf("address %s handed out twice", a)
		}
		seen[a] = true
	}
	return nil
}

// newAllocator gives one simulated Node its own client, connection and informer.
func (b *bench) newAllocator(ctx context.Context, pool string) (*ipam.Allocator, error) {
	cfg := rest.CopyConfig(b.cfg)
	cfg.Dial = (&net.Dialer{}).DialContext // no shared transport: one connection per Node
	client, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	factory := externalversions.NewSharedInformerFactory(client, 0)
	pools := factory.Crd().V1beta1().IPPools()
	// Each simulated Node allocates from its own address blocks, with a state directory of its
	// own, as agents on separate Nodes do.
	node := int(b.nodes.Add(1))
	dir, err := os.MkdirTemp("", "bench-ipam-node-")
	if err != nil {
		return nil, err
	}
	go func() { <-ctx.Done(); _ = os.RemoveAll(dir) }()
	a, err := ipam.NewAllocator(client, pools, ipam.Options{NodeName: fmt.Sprintf("bench-node-%d", node),
		Blocks: factory.Crd().V1beta1().IPPoolBlocks(), StateDir: dir})
	if err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	for _, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, errors.New("IPPool informer did not sync")
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := pools.Lister().Get(pool); err == nil {
			return a, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("IPPool %s never reached the informer cache", pool)
		}
	}
}

func printReport(rep bh.IPAMReport) {
	fmt.Printf("\nAllocations on a %d-address pool per band of %d, raw status write rate of one IPPool (%d entries) %.1f/s\n",
		rep.PoolAddresses, rep.BandSize, rep.RawWriteEntries, rep.RawWritesPerSec)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "allocator\tNodes\tin flight/Node\tband\tallocs/s\tp50 ms\tp99 ms\tfailures\t")
	for _, r := range rep.Runs {
		for i, band := range r.Bands {
			failures := ""
			if i == 0 {
				failures = strconv.Itoa(r.Failures)
				if r.Stopped {
					failures += " (budget)"
				}
			}
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%.1f\t%.1f\t%.1f\t%s\t\n", r.Allocator, r.Nodes, r.InFlight, bandName(band),
				band.AllocsPerSec, band.Latency.P50, band.Latency.P99, failures)
		}
	}
	w.Flush()
	fmt.Println()
	bh.PrintTargets(os.Stdout, rep.Targets)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func slicesMax(s []int) int {
	m := 0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}
