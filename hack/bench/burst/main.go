// Command burst measures a kubelet restart's worth of sandboxes: 100 Pods ADDed at once on one
// Node through the shim (one VLAN network with IPv4 IPAM), beside, in the same run: the floor's
// 100 attachments at once on a Node of its own, 100 shims against a server that does nothing,
// 100 execs of the exec floor, and 100 ADDs of the peer ovs-cni (host-local IPAM) on Nodes of
// its own, as shipped and fast-polling. Rounds rotate which goes first; the medians are compared.
// The agent's anonymous resident memory is sampled during its bursts (its peak is reported next
// to VmHWM, which also counts the binary's file pages).
//
// The shim is run the way libcni runs the last plugin of the chained list (with the primary
// plugin's result as prevResult), so that both sides do only the secondary network's work.
//
//	go run ./hack/bench/burst [-pods 100] [-rounds 3] [-out _output/bench/burst.json]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bh "github.com/podvlan/podvlan/internal/benchharness"
)

func main() {
	pods := flag.Int("pods", 100, "Pods ADDed at once")
	rounds := flag.Int("rounds", 3, "bursts of each kind")
	out := flag.String("out", "", "JSON output (default <repo>/_output/bench/burst.json)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *pods, *rounds, *out); err != nil {
		fmt.Fprintln(os.Stderr, "burst bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, pods, rounds int, out string) error {
	b, err := bh.Start(ctx, "burst")
	if err != nil {
		return err
	}
	c, bins, namespace, cleanup := b.Cluster, b.Bins, b.Namespace, &b.Cleanup
	defer cleanup.Run()
	if out == "" {
		out = filepath.Join(c.OutputDir(), "burst.json")
	}
	rep := bh.BurstReport{Benchmark: "burst", Pods: pods, Machine: bh.NewMachine()}
	l, err := b.Lineup(ctx, "pvbb-")
	if err != nil {
		return err
	}
	agentNode, agent, network, floor, shipped, fast := l.AgentNode, l.Agent, l.Network, l.Floor, l.Shipped, l.Fast

	fmt.Printf("Creating %d sandboxes and %d floor namespaces\n", pods+1, pods+1)
	sandboxes, err := c.Sandboxes(ctx, cleanup, agentNode.Name, namespace, "p", network.Name, pods+1)
	if err != nil {
		return err
	}
	floorNS, err := bh.PodNetNSes(ctx, cleanup, "pvbfp-", pods+1)
	if err != nil {
		return err
	}
	peerNS := make([][]string, 2)
	for k := range peerNS {
		if peerNS[k], err = bh.PodNetNSes(ctx, cleanup, "pvbop-", pods+1); err != nil {
			return err
		}
	}
	cni := bh.NewCNI(bins, "")
	// Warm-up: the last sandbox of each kind, once, not counted.
	if _, err := floor.Add(ctx, pods, floorNS[pods]); err != nil {
		return fmt.Errorf("warm-up floor ADD: %w", err)
	}
	if _, err := floor.Del(ctx, pods); err != nil {
		return err
	}
	if _, err := cni.ExecShim(ctx, agent, "ADD", sandboxes[pods]); err != nil {
		return fmt.Errorf("warm-up ADD: %w", err)
	}
	if _, err := cni.ExecShim(ctx, agent, "DEL", sandboxes[pods]); err != nil {
		return fmt.Errorf("warm-up DEL: %w", err)
	}

	for k, p := range []*bh.OVSCNI{shipped, fast} {
		if _, err := p.Add(ctx, pods, peerNS[k][pods]); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if _, err := p.Del(ctx, pods, peerNS[k][pods]); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	floorBurst := func() (time.Duration, []time.Duration, error) {
		lat := make([]time.Duration, pods)
		start := time.Now()
		err := bh.ForEach(ctx, pods, 0, func(i int) error {
			d, err := floor.Add(ctx, i, floorNS[i])
			lat[i] = d
			return err
		})
		total := time.Since(start)
		if err != nil {
			return 0, nil, err
		}
		return total, lat, bh.ForEach(ctx, pods, 8, func(i int) error { _, err := floor.Del(ctx, i); return err })
	}
	var failures []string
	var mu sync.Mutex
	var peakAnon float64
	var received, engineDone time.Duration // of the last agent burst
	agentBurst := func() (time.Duration, []time.Duration, error) {
		// Every burst is new sandboxes of the same Pods, as after a kubelet restart.
		for _, sb := range sandboxes[:pods] {
			sb.ContainerID = bh.NewContainerID()
		}
		lat := make([]time.Duration, pods)
		stopSampling := sampleAnon(agent, &peakAnon)
		start := time.Now()
		_ = bh.ForEach(ctx, pods, 0, func(i int) error {
			d, err := cni.ExecShim(ctx, agent, "ADD", sandboxes[i])
			lat[i] = d
			if err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("Pod %d: %v", i, err))
				mu.Unlock()
			}
			return nil
		})
		total := time.Since(start)
		stopSampling()
		breakdowns, err := bh.ReadBreakdowns(agent.LogPath)
		if err != nil {
			return 0, nil, err
		}
		received, engineDone = 0, 0
		for _, sb := range sandboxes[:pods] {
			if b, ok := breakdowns[sb.ContainerID]; ok {
				received = max(received, b.Received.Sub(start))
				engineDone = max(engineDone, b.Attached.Sub(start))
			}
		}
		err = bh.ForEach(ctx, pods, 8, func(i int) error { _, err := cni.ExecShim(ctx, agent, "DEL", sandboxes[i]); return err })
		return total, lat, err
	}

	null, err := bh.StartNullAgent()
	if err != nil {
		return err
	}
	cleanup.Add(null.Stop)
	shimAloneBurst := func() (time.Duration, error) {
		start := time.Now()
		err := bh.ForEach(ctx, pods, 0, func(i int) error {
			_, err := cni.ExecShimAt(ctx, null.Socket, "ADD", sandboxes[i])
			return err
		})
		return time.Since(start), err
	}

	execFloorBurst := func() (time.Duration, error) {
		start := time.Now()
		err := bh.ForEach(ctx, pods, 0, func(i int) error {
			_, err := cni.ExecFloor(ctx, "ADD", sandboxes[i])
			return err
		})
		return time.Since(start), err
	}
	// ovs-cni's ADDs may fail under the burst (its link-state patience runs out): they are
	// counted, the burst's time is until the last answer, and every attachment is deleted again.
	peerBurst := func(p *bh.OVSCNI, ns []string) (time.Duration, int, error) {
		var failed atomic.Int32
		start := time.Now()
		_ = bh.ForEach(ctx, pods, 0, func(i int) error {
			if _, err := p.Add(ctx, i, ns[i]); err != nil {
				if failed.Add(1) == 1 {
					fmt.Printf("  %v\n", err)
				}
			}
			return nil
		})
		total := time.Since(start)
		err := bh.ForEach(ctx, pods, 8, func(i int) error { _, err := p.Del(ctx, i, ns[i]); return err })
		return total, int(failed.Load()), err
	}

	var floorTotals, agentTotals, receivedTotals, engineTotals, shimAloneTotals []float64
	var execFloorTotals, shippedTotals, fastTotals []float64
	for r := range rounds {
		round := bh.BurstRound{AgentFirst: r%2 == 1}
		doFloor := func() error {
			total, lat, err := floorBurst()
			round.FloorSeconds, round.FloorAdd = total.Seconds(), bh.Summarize(lat)
			return err
		}
		doAgent := func() error {
			total, lat, err := agentBurst()
			round.AgentSeconds, round.AgentAdd = total.Seconds(), bh.Summarize(lat)
			round.AgentReceivedSeconds, round.AgentEngineSeconds = received.Seconds(), engineDone.Seconds()
			return err
		}
		doShimAlone := func() error {
			total, err := shimAloneBurst()
			round.ShimAloneSeconds = total.Seconds()
			return err
		}
		doExecFloor := func() error {
			total, err := execFloorBurst()
			round.ExecFloorSeconds = total.Seconds()
			return err
		}
		doShipped := func() error {
			total, failed, err := peerBurst(shipped, peerNS[0])
			round.OVSCNISeconds, round.OVSCNIFailures = total.Seconds(), failed
			return err
		}
		doFast := func() error {
			total, failed, err := peerBurst(fast, peerNS[1])
			round.OVSCNIFastSeconds, round.OVSCNIFastFailures = total.Seconds(), failed
			return err
		}
		steps := []func() error{doFloor, doAgent, doShimAlone, doExecFloor, doShipped, doFast}
		// Each round starts with another step, so that none always follows the same one.
		steps = append(steps[r%len(steps):], steps[:r%len(steps)]...)
		for _, step := range steps {
			if err := step(); err != nil {
				return fmt.Errorf("round %d: %w", r+1, err)
			}
		}
		fmt.Printf("round %d: floor %.2f s; agent %.2f s (last request in after %.2f s, engine done after %.2f s); shim alone %.2f s;"+
			" exec floor %.2f s; ovs-cni %.2f s (%d failed); ovs-cni fast poll %.2f s (%d failed)\n", r+1,
			round.FloorSeconds, round.AgentSeconds, round.AgentReceivedSeconds, round.AgentEngineSeconds, round.ShimAloneSeconds,
			round.ExecFloorSeconds, round.OVSCNISeconds, round.OVSCNIFailures, round.OVSCNIFastSeconds, round.OVSCNIFastFailures)
		rep.Rounds = append(rep.Rounds, round)
		floorTotals = append(floorTotals, round.FloorSeconds)
		agentTotals = append(agentTotals, round.AgentSeconds)
		engineTotals = append(engineTotals, round.AgentEngineSeconds)
		receivedTotals = append(receivedTotals, round.AgentReceivedSeconds)
		shimAloneTotals = append(shimAloneTotals, round.ShimAloneSeconds)
		execFloorTotals = append(execFloorTotals, round.ExecFloorSeconds)
		shippedTotals = append(shippedTotals, round.OVSCNISeconds)
		fastTotals = append(fastTotals, round.OVSCNIFastSeconds)
	}
	mem, err := agent.Memory()
	if err != nil {
		return err
	}
	rep.AgentPeakRSSMiB, rep.AgentRSSMiB, rep.AgentAnonMiB, rep.AgentFileMiB = mem.Peak, mem.RSS, mem.Anon, mem.File
	rep.AgentPeakAnonMiB = peakAnon
	rep.Failures = len(failures)
	rep.ExecFloorMedianS, rep.OVSCNIMedianS, rep.OVSCNIFastMedS = bh.Median(execFloorTotals), bh.Median(shippedTotals), bh.Median(fastTotals)
	rep.FloorMedianS, rep.AgentMedianS = bh.Median(floorTotals), bh.Median(agentTotals)
	rep.EngineMedianS, rep.ReceivedMedianS = bh.Median(engineTotals), bh.Median(receivedTotals)
	rep.ShimAloneMedianS = bh.Median(shimAloneTotals)
	rep.Ratio = bh.Ratio(rep.AgentMedianS, rep.FloorMedianS+rep.ShimAloneMedianS)
	rep.Targets = []bh.Target{
		bh.NewTarget("burst", fmt.Sprintf("%d concurrent ADDs: failures", pods), float64(rep.Failures), 0, "failed ADDs",
			strings.Join(first(failures, 3), "; ")),
		bh.NewTarget("burst", fmt.Sprintf("%d concurrent ADDs vs floor + shim alone", pods), rep.Ratio, 1.2, "x (floor + shim alone)",
			fmt.Sprintf("agent %.2f s (all requests in at %.2f s, engine done at %.2f s); floor %.2f s + shim alone %.2f s; medians of %d",
				rep.AgentMedianS, rep.ReceivedMedianS, rep.EngineMedianS, rep.FloorMedianS, rep.ShimAloneMedianS, rounds)),
		bh.NewTarget("burst", fmt.Sprintf("%d concurrent ADDs vs ovs-cni as shipped", pods), bh.Ratio(rep.AgentMedianS, rep.OVSCNIMedianS),
			0.8, "x ovs-cni", fmt.Sprintf("agent %.2f s, ovs-cni %.2f s (fast poll %.2f s; exec floor %.2f s)", rep.AgentMedianS,
				rep.OVSCNIMedianS, rep.OVSCNIFastMedS, rep.ExecFloorMedianS)),
		bh.NewTarget("burst", "agent peak anonymous RSS", rep.AgentPeakAnonMiB, 80, "MiB",
			fmt.Sprintf("VmHWM %.1f MiB (the binary's file pages included); after the bursts RSS %.1f MiB: %.1f anonymous, %.1f file",
				rep.AgentPeakRSSMiB, rep.AgentRSSMiB, rep.AgentAnonMiB, rep.AgentFileMiB)),
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

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// sampleAnon samples the agent's anonymous resident memory every 10 ms into peak (the highest
// seen) until the returned function is called.
func sampleAnon(agent *bh.Agent, peak *float64) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := agent.Memory(); err == nil {
				*peak = max(*peak, m.Anon)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(stop); <-done }
}
