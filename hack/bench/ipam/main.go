// Command ipam measures the IPPool allocator on a real API server: allocations per second and
// conflict retries for 1, 4 and 8 allocators (each with its own client, connection and informer,
// as agents on separate Nodes) on one 1,024-address pool, next to the API server's raw rate of
// status writes to one IPPool measured in the same run. It prints a table and writes JSON to
// _output/bench/ipam.json.
//
//	go run ./hack/bench/ipam [-kubeconfig FILE]
//
// Without -kubeconfig it reads KUBECONFIG from the env file named by $PODVLAN_CLUSTER_ENV, or
// from _output/local-cluster/env.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	"github.com/podvlan/podvlan/pkg/client/informers/externalversions"
	"github.com/podvlan/podvlan/pkg/ipam"
)

// target is the allocation rate the issue asks for at 8 allocators on this 2-core machine.
const target = 150.0

type run struct {
	Allocators      int     `json:"allocators"`
	InFlight        int     `json:"in_flight_per_allocator"` // 0: every request issued at once
	Allocations     int     `json:"allocations"`
	Seconds         float64 `json:"seconds"`
	AllocsPerSec    float64 `json:"allocations_per_sec"`
	StatusWrites    uint64  `json:"status_writes"`
	ConflictRetries uint64  `json:"conflict_retries"`
	RatioToRaw      float64 `json:"ratio_to_raw_write_rate"`
	ReleaseSeconds  float64 `json:"release_seconds"`
	ReleasesPerSec  float64 `json:"releases_per_sec"`
}

type report struct {
	PoolAddresses   int     `json:"pool_addresses"`
	PoolAllocatable int     `json:"pool_allocatable"`
	RawWritesPerSec float64 `json:"raw_status_writes_per_sec"`
	RawWriteEntries int     `json:"raw_status_write_entries"`
	RawWrites       int     `json:"raw_status_writes"`
	Runs            []run   `json:"runs"`
	TargetAt8       float64 `json:"target_allocations_per_sec_at_8"`
	TargetMet       bool    `json:"target_met"`
	CPUs            int     `json:"cpus"`
	GoVersion       string  `json:"go_version"`
	StartedAt       string  `json:"started_at"`
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster (default: KUBECONFIG from $PODVLAN_CLUSTER_ENV or _output/local-cluster/env)")
	allocations := flag.Int("allocations", 1000, "allocations per run")
	agentsFlag := flag.String("allocators", "1,4,8", "comma-separated allocator counts")
	inFlightFlag := flag.String("in-flight", "0,8", "comma-separated per-allocator concurrency limits; 0 issues every request at once")
	rawFor := flag.Duration("raw-duration", 3*time.Second, "how long to measure the raw status write rate")
	out := flag.String("out", "_output/bench/ipam.json", "JSON output file")
	flag.Parse()
	klog.InitFlags(nil)

	if err := benchmark(*kubeconfig, *allocations, *agentsFlag, *inFlightFlag, *rawFor, *out); err != nil {
		fmt.Fprintln(os.Stderr, "ipam bench:", err)
		os.Exit(1)
	}
}

func benchmark(kubeconfig string, allocations int, agentsFlag, inFlightFlag string, rawFor time.Duration, out string) error {
	agents, err := parseInts(agentsFlag)
	if err != nil {
		return fmt.Errorf("-allocators: %w", err)
	}
	inFlights, err := parseInts(inFlightFlag)
	if err != nil {
		return fmt.Errorf("-in-flight: %w", err)
	}
	if kubeconfig == "" {
		if kubeconfig, err = kubeconfigFromEnvFile(); err != nil {
			return err
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 5000, 10000
	ctx := context.Background()
	root, err := teststack.FindRepoRoot()
	if err != nil {
		return err
	}
	if err := teststack.ApplyCRDs(ctx, cfg, filepath.Join(root, "build", "yamls", "crds")); err != nil {
		return err
	}
	admin := versioned.NewForConfigOrDie(cfg)
	b := &bench{cfg: cfg, admin: admin, net: rand.IntN(200) + 20}

	rep := report{PoolAddresses: 1024, TargetAt8: target, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		StartedAt: time.Now().UTC().Format(time.RFC3339)}
	rep.RawWriteEntries = 512 // the mean status size while a run fills the pool from 0 to 1,000
	if rep.RawWritesPerSec, rep.RawWrites, err = b.rawWriteRate(ctx, rep.RawWriteEntries, rawFor); err != nil {
		return fmt.Errorf("raw write rate: %w", err)
	}
	for _, inFlight := range inFlights {
		for _, n := range agents {
			r, allocatable, err := b.allocationRun(ctx, n, inFlight, allocations)
			if err != nil {
				return fmt.Errorf("%d allocators: %w", n, err)
			}
			rep.PoolAllocatable = allocatable
			r.RatioToRaw = r.AllocsPerSec / rep.RawWritesPerSec
			rep.Runs = append(rep.Runs, r)
			if n == 8 && inFlight == 0 {
				rep.TargetMet = r.AllocsPerSec >= target
			}
		}
	}

	printTable(rep)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s\n", out)
	return nil
}

type bench struct {
	cfg   *rest.Config
	admin versioned.Interface
	net   int // second octet of the benchmark's 10.x.0.0/16
	seq   int
}

// createPool creates a /22 pool (1,024 addresses, 1,021 allocatable) under a unique name.
func (b *bench) createPool(ctx context.Context, prefix string) (*v1beta1.IPPool, func(), error) {
	b.seq++
	base := fmt.Sprintf("10.%d.%d.", b.net, (b.seq%64)*4)
	name := fmt.Sprintf("%s-%08x", prefix, rand.Uint32())
	p, err := b.admin.CrdV1beta1().IPPools().Create(ctx, &v1beta1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.IPPoolSpec{IPRanges: []v1beta1.IPRange{{CIDR: base + "0/22"}},
			SubnetInfo: v1beta1.SubnetInfo{Gateway: base + "1", PrefixLength: 22}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("create IPPool %s: %w", name, err)
	}
	cleanup := func() {
		if cur, err := b.admin.CrdV1beta1().IPPools().Get(ctx, name, metav1.GetOptions{}); err == nil {
			cur.Status = v1beta1.IPPoolStatus{}
			_, _ = b.admin.CrdV1beta1().IPPools().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		}
		_ = b.admin.CrdV1beta1().IPPools().Delete(ctx, name, metav1.DeleteOptions{})
	}
	return p, cleanup, nil
}

// rawWriteRate writes the status of one pool holding `entries` addresses as fast as one client
// can, one write after the other, each changing one entry, for the given duration.
func (b *bench) rawWriteRate(ctx context.Context, entries int, d time.Duration) (float64, int, error) {
	pool, cleanup, err := b.createPool(ctx, "bench-raw")
	if err != nil {
		return 0, 0, err
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
	pool.Status.Usage = v1beta1.IPPoolUsage{Total: 1021, Used: entries}
	client := b.admin.CrdV1beta1().IPPools()
	if pool, err = client.UpdateStatus(ctx, pool, metav1.UpdateOptions{}); err != nil {
		return 0, 0, err
	}
	writes := 0
	start := time.Now()
	for time.Since(start) < d {
		last := &pool.Status.IPAddresses[len(pool.Status.IPAddresses)-1]
		last.Owner.Pod.IFName = fmt.Sprintf("net%d", writes%2) // a real change, so the server really writes
		if pool, err = client.UpdateStatus(ctx, pool, metav1.UpdateOptions{}); err != nil {
			return 0, 0, err
		}
		writes++
	}
	return float64(writes) / time.Since(start).Seconds(), writes, nil
}

// allocationRun makes `allocations` allocations on a fresh pool with n allocators, then releases
// them all, and checks that no address was handed out twice and that the pool ends up empty.
func (b *bench) allocationRun(ctx context.Context, n, inFlight, allocations int) (run, int, error) {
	r := run{Allocators: n, InFlight: inFlight, Allocations: allocations}
	pool, cleanup, err := b.createPool(ctx, fmt.Sprintf("bench-ipam-%d", n))
	if err != nil {
		return r, 0, err
	}
	defer cleanup()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	allocators := make([]*ipam.Allocator, n)
	for i := range allocators {
		if allocators[i], err = b.newAllocator(runCtx, pool.Name); err != nil {
			return r, 0, err
		}
	}

	owners := make([]ipam.Owner, allocations)
	for i := range owners {
		owners[i] = ipam.Owner{Namespace: "bench", Name: fmt.Sprintf("pod-%d", i), UID: fmt.Sprintf("uid-%d", i),
			ContainerID: fmt.Sprintf("%064x", rand.Uint64()), IFName: "net1"}
	}
	got := make([]netip.Addr, allocations)
	errs := make([]error, allocations)
	start := time.Now()
	each(n, inFlight, allocations, func(agent, i int) {
		res, err := allocators[agent].Allocate(ctx, ipam.Request{Owner: owners[i], Pools: []string{pool.Name}})
		if err == nil {
			got[i] = res.IPs[0].Address.Addr()
		}
		errs[i] = err
	})
	r.Seconds = time.Since(start).Seconds()
	r.AllocsPerSec = float64(allocations) / r.Seconds
	if err := errors.Join(errs...); err != nil {
		return r, 0, fmt.Errorf("allocations failed: %w", err)
	}
	seen := map[netip.Addr]bool{}
	for _, a := range got {
		if seen[a] {
			return r, 0, fmt.Errorf("address %s handed out twice", a)
		}
		seen[a] = true
	}
	for _, a := range allocators {
		s := a.Stats()
		r.StatusWrites += s.Writes
		r.ConflictRetries += s.Conflicts
	}
	cur, err := b.admin.CrdV1beta1().IPPools().Get(ctx, pool.Name, metav1.GetOptions{})
	if err != nil {
		return r, 0, err
	}
	if cur.Status.Usage.Used != allocations || len(cur.Status.IPAddresses) != allocations {
		return r, 0, fmt.Errorf("pool records %d addresses (usage %+v) after %d allocations",
			len(cur.Status.IPAddresses), cur.Status.Usage, allocations)
	}

	start = time.Now()
	each(n, inFlight, allocations, func(agent, i int) { errs[i] = allocators[agent].Release(ctx, owners[i]) })
	r.ReleaseSeconds = time.Since(start).Seconds()
	r.ReleasesPerSec = float64(allocations) / r.ReleaseSeconds
	if err := errors.Join(errs...); err != nil {
		return r, 0, fmt.Errorf("releases failed: %w", err)
	}
	if cur, err = b.admin.CrdV1beta1().IPPools().Get(ctx, pool.Name, metav1.GetOptions{}); err != nil {
		return r, 0, err
	}
	if cur.Status.Usage.Used != 0 || len(cur.Status.IPAddresses) != 0 {
		return r, 0, fmt.Errorf("pool still records %d addresses after releasing all", len(cur.Status.IPAddresses))
	}
	return r, cur.Status.Usage.Total, nil
}

// each runs fn for every request i, spread round-robin over the agents; with inFlight > 0 each
// agent has at most that many requests outstanding, otherwise all are issued at once.
func each(agents, inFlight, requests int, fn func(agent, i int)) {
	var wg sync.WaitGroup
	if inFlight <= 0 {
		for i := range requests {
			wg.Go(func() { fn(i%agents, i) })
		}
		wg.Wait()
		return
	}
	for agent := range agents {
		for worker := range inFlight {
			wg.Go(func() {
				for i := agent + worker*agents; i < requests; i += agents * inFlight {
					fn(agent, i)
				}
			})
		}
	}
	wg.Wait()
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
	a, err := ipam.NewAllocator(client, pools, ipam.Options{})
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

func printTable(rep report) {
	fmt.Printf("IPPool allocator on one %d-address pool (%d allocatable), %d CPUs\n",
		rep.PoolAddresses, rep.PoolAllocatable, rep.CPUs)
	fmt.Printf("raw status write rate, one client, %d-entry status: %.1f writes/s (%d writes)\n\n",
		rep.RawWriteEntries, rep.RawWritesPerSec, rep.RawWrites)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "allocators\tin flight/alloc\tallocations\tseconds\tallocs/s\tstatus writes\tconflict retries\tratio to raw\treleases/s\t")
	for _, r := range rep.Runs {
		inFlight := "all"
		if r.InFlight > 0 {
			inFlight = strconv.Itoa(r.InFlight)
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%.2f\t%.1f\t%d\t%d\t%.2fx\t%.1f\t\n", r.Allocators, inFlight, r.Allocations, r.Seconds,
			r.AllocsPerSec, r.StatusWrites, r.ConflictRetries, r.RatioToRaw, r.ReleasesPerSec)
	}
	w.Flush()
	verdict := "MET"
	if !rep.TargetMet {
		verdict = "NOT MET"
	}
	fmt.Printf("\ntarget: >= %.0f allocations/s at 8 allocators (all at once): %s\n", rep.TargetAt8, verdict)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// kubeconfigFromEnvFile reads KUBECONFIG from the cluster env file hack/ scripts write.
func kubeconfigFromEnvFile() (string, error) {
	path, err := teststack.EnvFile()
	if err != nil {
		return "", err
	}
	vars, err := teststack.ReadEnvFile(path)
	if err != nil {
		return "", fmt.Errorf("no -kubeconfig and no cluster env file: %w", err)
	}
	if v := vars["KUBECONFIG"]; v != "" {
		return v, nil
	}
	return "", fmt.Errorf("%s sets no KUBECONFIG", path)
}
