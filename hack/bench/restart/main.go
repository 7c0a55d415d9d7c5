// Command restart measures how long antrea-agent takes, after a crash (kill -9) with 110 Pods
// of two networks each on its Node, until CNI STATUS answers ready, which it does only once the
// caches are synced, the bridge is ensured and the start-up reconciliation is done. It checks that
// the restart disturbed nothing: no OVS port recreated (same row UUIDs and OpenFlow port numbers),
// no address or MAC changed in any Pod, no IPPool allocation changed.
//
//	go run ./hack/bench/restart [-pods 110] [-restarts 3] [-out _output/bench/restart.json]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bh "github.com/podvlan/podvlan/internal/benchharness"
)

func main() {
	pods := flag.Int("pods", 110, "Pods on the Node, each with two networks")
	restarts := flag.Int("restarts", 3, "kill -9 and restart this many times")
	out := flag.String("out", "", "JSON output (default <repo>/_output/bench/restart.json)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *pods, *restarts, *out); err != nil {
		fmt.Fprintln(os.Stderr, "restart bench:", err)
		os.Exit(1)
	}
}

// state is what a restart must leave as it was.
type state struct {
	ports map[string]bh.PortRecord
	addrs map[string]string
	pools map[string]string
}

func run(ctx context.Context, pods, restarts int, out string) error {
	b, err := bh.Start(ctx, "restart")
	if err != nil {
		return err
	}
	c, bins, namespace, cleanup := b.Cluster, b.Bins, b.Namespace, &b.Cleanup
	defer cleanup.Run()
	if out == "" {
		out = filepath.Join(c.OutputDir(), "restart.json")
	}
	rep := bh.RestartReport{Benchmark: "restart", Pods: pods, Networks: 2, Machine: bh.NewMachine()}
	node, agent, networks, err := b.AgentNode(ctx, "pvbr-", 101, 102)
	if err != nil {
		return err
	}

	fmt.Printf("Attaching %d Pods with 2 networks each\n", pods)
	sandboxes, err := c.Sandboxes(ctx, cleanup, node.Name, namespace, "p", "net-1,net-2", pods)
	if err != nil {
		return err
	}
	cni := bh.NewCNI(bins, "")
	start := time.Now()
	if err := cni.AttachAll(ctx, agent, sandboxes, 4); err != nil {
		return fmt.Errorf("%w\nagent log:\n%s", err, agent.LogTail(20))
	}
	rep.AttachSeconds = time.Since(start).Seconds()
	cleanup.Add(func() {
		if err := cni.DetachAll(context.Background(), agent, sandboxes, 4); err != nil {
			fmt.Fprintln(os.Stderr, "restart bench: cleanup:", err)
		}
	})

	// The holders of the Node's blocks reach the API server about a second after the ADDs.
	for _, n := range networks {
		if _, err := c.WaitPoolAllocations(ctx, n.Pool, pods, 15*time.Second); err != nil {
			return fmt.Errorf("after attaching: %w", err)
		}
	}
	snapshot := func() (state, error) {
		var s state
		var err error
		if s.ports, err = node.Ports(ctx); err != nil {
			return s, err
		}
		s.addrs = map[string]string{}
		for _, sb := range sandboxes {
			addrs, err := bh.PodAddresses(sb.NetNS)
			if err != nil {
				return s, err
			}
			s.addrs[sb.Pod.Name] = strings.Join(addrs, "; ")
		}
		s.pools = map[string]string{}
		for _, n := range networks {
			allocs, err := c.PoolAllocations(ctx, n.Pool)
			if err != nil {
				return s, err
			}
			for addr, owner := range allocs {
				s.pools[n.Pool+" "+addr] = owner
			}
		}
		return s, nil
	}
	before, err := snapshot()
	if err != nil {
		return err
	}
	podPorts := 0
	for name := range before.ports {
		if strings.HasPrefix(name, "pvl") {
			podPorts++
		}
	}
	rep.Ports = podPorts
	if podPorts != 2*pods || len(before.pools) != 2*pods {
		return fmt.Errorf("after attaching: %d Pod ports and %d allocations, want %d of each", podPorts, len(before.pools), 2*pods)
	}

	var readies []float64
	for r := range restarts {
		agent.Kill()
		if err := agent.Start(); err != nil {
			return err
		}
		ready, err := agent.WaitReady(ctx, time.Minute)
		if err != nil {
			return err
		}
		after, err := snapshot()
		if err != nil {
			return err
		}
		res := bh.Restart{ReadySeconds: ready.Seconds(), RecreatedPorts: bh.Diff(before.ports, after.ports),
			ChangedAddresses: bh.Diff(before.addrs, after.addrs), ChangedPools: bh.Diff(before.pools, after.pools)}
		fmt.Printf("restart %d: ready after %.3f s; ports recreated %d, Pods with changed addresses %d, changed allocations %d\n",
			r+1, res.ReadySeconds, len(res.RecreatedPorts), len(res.ChangedAddresses), len(res.ChangedPools))
		rep.Restarts = append(rep.Restarts, res)
		readies = append(readies, res.ReadySeconds)
	}

	recreated, changed, pools := 0, 0, 0
	for _, r := range rep.Restarts {
		recreated += len(r.RecreatedPorts)
		changed += len(r.ChangedAddresses)
		pools += len(r.ChangedPools)
		rep.MaxReadySec = max(rep.MaxReadySec, r.ReadySeconds)
	}
	rep.MedianReadySec = bh.Median(readies)
	detail := fmt.Sprintf("%d Pods x 2 networks; median %.2f s of %d restarts", pods, rep.MedianReadySec, restarts)
	rep.Targets = []bh.Target{
		bh.NewTarget("restart", "kill -9 to STATUS ready (reconciled), worst", rep.MaxReadySec, 2, "s", detail),
		bh.NewTarget("restart", "ports recreated by restarts", float64(recreated), 0, "ports", ""),
		bh.NewTarget("restart", "Pods whose addresses changed", float64(changed+pools), 0, "changes",
			fmt.Sprintf("%d in Pods, %d in IPPools", changed, pools)),
	}
	rep.Machine.Finish()
	fmt.Println()
	bh.PrintTargets(os.Stdout, rep.Targets)
	fmt.Printf("load average %s -> %s, %.0f s\n", rep.Machine.LoadStart, rep.Machine.LoadEnd, rep.Machine.DurationSec)
	if err := bh.WriteJSON(out, rep); err != nil {
		return err
	}
	fmt.Println("Wrote", out)
	return nil
}
