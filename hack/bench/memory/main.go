// Command memory measures antrea-agent's resident memory with the 110 Pods of its own Node
// attached, first while the cluster holds no other Pods of the benchmark, then once it holds
// 5,000 Pods bound to another (simulated) Node. The agent watches only its own Node's Pods, so
// the second figure must stay within a few MiB of the first.
//
//	go run ./hack/bench/memory [-pods 110] [-others 5000] [-out _output/bench/memory.json]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bh "github.com/podvlan/podvlan/internal/benchharness"
)

func main() {
	pods := flag.Int("pods", 110, "Pods attached on the agent's Node")
	others := flag.Int("others", 5000, "Pods created on another Node")
	settle := flag.Duration("settle", 10*time.Second, "wait before sampling memory")
	out := flag.String("out", "", "JSON output (default <repo>/_output/bench/memory.json)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *pods, *others, *settle, *out); err != nil {
		fmt.Fprintln(os.Stderr, "memory bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, pods, others int, settle time.Duration, out string) error {
	b, err := bh.Start(ctx, "memory")
	if err != nil {
		return err
	}
	c, bins, namespace, cleanup := b.Cluster, b.Bins, b.Namespace, &b.Cleanup
	defer cleanup.Run()
	if out == "" {
		out = filepath.Join(c.OutputDir(), "memory.json")
	}
	rep := bh.MemoryReport{Benchmark: "memory", Pods: pods, OtherPods: others, Machine: bh.NewMachine()}
	node, agent, networks, err := b.AgentNode(ctx, "pvbm-", 100)
	if err != nil {
		return err
	}
	network := networks[0]

	fmt.Printf("Attaching %d Pods\n", pods)
	sandboxes, err := c.Sandboxes(ctx, cleanup, node.Name, namespace, "p", network.Name, pods)
	if err != nil {
		return err
	}
	cni := bh.NewCNI(bins, "")
	if err := cni.AttachAll(ctx, agent, sandboxes, 4); err != nil {
		return err
	}
	cleanup.Add(func() {
		if err := cni.DetachAll(context.Background(), agent, sandboxes, 4); err != nil {
			fmt.Fprintln(os.Stderr, "memory bench: cleanup:", err)
		}
	})

	// sample returns five RSS samples a second apart after the agent rested, and the median of
	// their anonymous part (the binary's file pages, which the kernel maps in large folios, make
	// the RSS move run to run; the anonymous part is the agent's own memory).
	sample := func() ([]float64, float64, error) {
		time.Sleep(settle)
		var rss, anon []float64
		for range 5 {
			m, err := agent.Memory()
			if err != nil {
				return nil, 0, err
			}
			rss, anon = append(rss, m.RSS), append(anon, m.Anon)
			time.Sleep(time.Second)
		}
		return rss, bh.Median(anon), nil
	}
	if rep.SamplesBase, rep.AnonBaseMiB, err = sample(); err != nil {
		return err
	}
	rep.RSSBaseMiB = bh.Median(rep.SamplesBase)
	fmt.Printf("RSS with %d Pods on the Node and no others: %.1f MiB\n", pods, rep.RSSBaseMiB)

	simulated := bh.UniqueName("pvbench-sim-")
	if _, err := c.Kube.CoreV1().Nodes().Create(ctx, bh.BenchNodeObject(simulated), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Node %s: %w", simulated, err)
	}
	cleanup.Add(func() { _ = c.Kube.CoreV1().Nodes().Delete(context.Background(), simulated, metav1.DeleteOptions{}) })
	otherNS, err := c.CreateNamespace(ctx, "pvbench-others-")
	if err != nil {
		return err
	}
	cleanup.Add(func() { _ = c.DeleteNamespace(context.Background(), otherNS) })
	fmt.Printf("Creating %d Pods on Node %s\n", others, simulated)
	start := time.Now()
	err = bh.ForEach(ctx, others, 32, func(i int) error {
		_, err := c.CreatePod(ctx, simulated, otherNS, fmt.Sprintf("o-%05d", i), network.Namespace+"/"+network.Name)
		return err
	})
	if err != nil {
		return err
	}
	rep.CreateOthersSec = time.Since(start).Seconds()
	if rep.SamplesOthers, rep.AnonWithOthersMiB, err = sample(); err != nil {
		return err
	}
	rep.RSSWithOthersMiB = bh.Median(rep.SamplesOthers)
	m, err := agent.Memory()
	if err != nil {
		return err
	}
	rep.PeakRSSMiB = m.Peak
	rep.DeltaMiB = rep.RSSWithOthersMiB - rep.RSSBaseMiB
	fmt.Printf("RSS with %d other Pods in the cluster: %.1f MiB\n", others, rep.RSSWithOthersMiB)
	rep.Targets = []bh.Target{bh.NewTarget("memory", fmt.Sprintf("RSS growth with %d Pods on other Nodes", others),
		rep.DeltaMiB, 5, "MiB", fmt.Sprintf("%.1f -> %.1f MiB (medians of 5; anonymous %.1f -> %.1f MiB), %d Pods on the Node",
			rep.RSSBaseMiB, rep.RSSWithOthersMiB, rep.AnonBaseMiB, rep.AnonWithOthersMiB, pods))}
	rep.Machine.Finish()
	fmt.Println()
	bh.PrintTargets(os.Stdout, rep.Targets)
	if err := bh.WriteJSON(out, rep); err != nil {
		return err
	}
	fmt.Println("Wrote", out)
	return nil
}
