// Command attach measures the latency of CNI ADD and DEL through the shim for Pods attached one
// after another (primary bridge + host-local with antrea chained; one VLAN network with IPv4
// IPAM), per band of bridge size, against the floor (the bare kernel and OVSDB work, no agent)
// measured in the same run on a bridge of the same size. Floor and agent attachments alternate,
// so that whatever else loads the machine weighs on both alike.
//
// The agent's figure is the antrea plugin's part of the chained call (shim start, the agent's
// work, the answer); the whole chain, primary plugins included, is reported next to it.
//
//	go run ./hack/bench/attach [-pods 200] [-out _output/bench/attach.json]
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
	"text/tabwriter"
	"time"

	bh "github.com/podvlan/podvlan/internal/benchharness"
)

// Band is a range of bridge sizes (Pod ports on the bridge once the ADD is done).
type Band struct {
	Name     string `json:"name"`
	From, To int
}

var bands = []Band{{"1-50", 1, 50}, {"51-110", 51, 110}, {"111-200", 111, 200}}

func main() {
	pods := flag.Int("pods", 200, "Pods to attach one after another")
	out := flag.String("out", "", "JSON output (default <repo>/_output/bench/attach.json)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *pods, *out); err != nil {
		fmt.Fprintln(os.Stderr, "attach bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, pods int, out string) error {
	b, err := bh.Start(ctx, "attach")
	if err != nil {
		return err
	}
	c, bins, namespace, cleanup := b.Cluster, b.Bins, b.Namespace, &b.Cleanup
	defer cleanup.Run()
	if out == "" {
		out = filepath.Join(c.OutputDir(), "attach.json")
	}
	rep := bh.AttachReport{Benchmark: "attach", Pods: pods, Machine: bh.NewMachine()}
	agentNode, agent, networks, err := b.AgentNode(ctx, "pvba-", 100)
	if err != nil {
		return err
	}
	network := networks[0]
	floor, err := b.FloorNode(ctx, "pvbf-")
	if err != nil {
		return err
	}

	// One extra Pod of each kind warms caches (page cache of the plugins, the agent's first
	// lookups) and is not counted.
	fmt.Printf("Creating %d sandboxes and %d floor namespaces\n", pods+1, pods+1)
	sandboxes := make([]*bh.Sandbox, pods+1)
	floorNS := make([]string, pods+1)
	for i := range pods + 1 {
		sb, err := c.NewSandbox(ctx, agentNode.Name, namespace, fmt.Sprintf("p-%03d", i), network.Name)
		if err != nil {
			return err
		}
		sandboxes[i] = sb
		cleanup.Add(func() { bh.DeleteNetNS(context.Background(), sb.NetNS) })
		floorNS[i] = bh.UniqueName("pvbfp-")
		if err := bh.NewPodNetNS(ctx, floorNS[i]); err != nil {
			return err
		}
		name := floorNS[i]
		cleanup.Add(func() { bh.DeleteNetNS(context.Background(), name) })
	}
	cni := bh.NewCNI(bins, filepath.Join(agentNode.Dir, "cni-cache"))
	null, err := bh.StartNullAgent()
	if err != nil {
		return err
	}
	cleanup.Add(null.Stop)
	list, err := bh.ChainedList(agent, "10.252.0.0/16")
	if err != nil {
		return err
	}

	warm := pods
	if _, err := floor.Add(ctx, warm, floorNS[warm]); err != nil {
		return fmt.Errorf("warm-up floor ADD: %w", err)
	}
	if _, err := cni.Add(ctx, agentNode, list, sandboxes[warm]); err != nil {
		return fmt.Errorf("warm-up ADD: %w", err)
	}
	if _, err := floor.Del(ctx, warm); err != nil {
		return fmt.Errorf("warm-up floor DEL: %w", err)
	}
	if _, err := cni.Del(ctx, agentNode, list, sandboxes[warm]); err != nil {
		return fmt.Errorf("warm-up DEL: %w", err)
	}

	fmt.Printf("ADD of %d Pods, floor and agent alternating\n", pods)
	rep.Samples = make([]bh.AttachSample, pods)
	for i := range pods {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := &rep.Samples[i]
		s.Ports = i + 1
		addFloor := func() error {
			d, err := floor.Add(ctx, i, floorNS[i])
			s.FloorAdd = bh.Millis(d)
			return err
		}
		addAgent := func() error {
			steps, err := cni.Add(ctx, agentNode, list, sandboxes[i])
			if err != nil {
				return fmt.Errorf("ADD of Pod %d: %w\nagent log:\n%s", i, err, agent.LogTail(20))
			}
			s.AgentAdd, s.ChainAdd = bh.Millis(steps.Of("antrea")), bh.Millis(total(steps))
			return nil
		}
		addShimAlone := func() error {
			d, err := cni.ExecShimAt(ctx, null.Socket, "ADD", sandboxes[i])
			s.ShimAlone = bh.Millis(d)
			return err
		}
		if err := rotate(i, addFloor, addAgent, addShimAlone); err != nil {
			return err
		}
	}
	breakdowns, err := bh.ReadBreakdowns(agent.LogPath())
	if err != nil {
		return err
	}
	missing := 0
	defer func() {
		if missing > 0 {
			fmt.Printf("note: the agent log had no engine figures for %d ADDs (an agent that does not log them at -v 2)\n", missing)
		}
	}()
	for i := range pods {
		b, ok := breakdowns[sandboxes[i].ContainerID]
		if !ok || b.Engine == 0 {
			missing++
		}
		s := &rep.Samples[i]
		s.Server, s.Engine, s.Allocate = bh.Millis(b.Server), bh.Millis(b.Engine), bh.Millis(b.Allocate)
		s.Veth, s.Configure, s.OVS = bh.Millis(b.Veth), bh.Millis(b.Configure), bh.Millis(b.OVS)
	}
	ports, err := agentNode.Vsctl(ctx, "list-ports", bh.BridgeName)
	if err != nil {
		return err
	}
	if n := len(strings.Fields(ports)); n != pods {
		return fmt.Errorf("%s has %d ports after %d ADDs", bh.BridgeName, n, pods)
	}

	fmt.Printf("DEL of %d Pods, floor and agent alternating\n", pods)
	for i := range pods {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := &rep.Samples[pods-1-i] // the last attached goes first, so the bridge shrinks band by band
		idx := pods - 1 - i
		delFloor := func() error {
			d, err := floor.Del(ctx, idx)
			s.FloorDel = bh.Millis(d)
			return err
		}
		delAgent := func() error {
			steps, err := cni.Del(ctx, agentNode, list, sandboxes[idx])
			if err != nil {
				return fmt.Errorf("DEL of Pod %d: %w", idx, err)
			}
			s.AgentDel, s.ChainDel = bh.Millis(steps.Of("antrea")), bh.Millis(total(steps))
			return nil
		}
		if err := alternate(i, delFloor, delAgent); err != nil {
			return err
		}
	}
	ports, err = agentNode.Vsctl(ctx, "list-ports", bh.BridgeName)
	if err != nil {
		return err
	}
	if n := len(strings.Fields(ports)); n != 0 {
		return fmt.Errorf("%s still has %d ports after every DEL", bh.BridgeName, n)
	}
	allocs, err := c.PoolAllocations(ctx, network.Pool)
	if err != nil {
		return err
	}
	if len(allocs) != 0 {
		return fmt.Errorf("IPPool %s still records %d addresses after every DEL", network.Pool, len(allocs))
	}

	rep.Bands, rep.Targets = evaluate(rep.Samples)
	rep.Machine.Finish()
	printReport(rep)
	if err := bh.WriteJSON(out, rep); err != nil {
		return err
	}
	fmt.Println("Wrote", out)
	return nil
}

// rotate runs the steps in an order that changes every round, so that none always runs right
// after another (whose after-effects, such as the agent's writes after answering, would weigh
// on it alone).
func rotate(round int, steps ...func() error) error {
	for k := range steps {
		if err := steps[(round+k)%len(steps)](); err != nil {
			return err
		}
	}
	return nil
}

// alternate runs both steps, the floor's first on even rounds and the agent's first on odd ones.
func alternate(round int, floor, agent func() error) error {
	first, second := floor, agent
	if round%2 == 1 {
		first, second = agent, floor
	}
	if err := first(); err != nil {
		return err
	}
	return second()
}

func total(steps bh.Steps) time.Duration {
	var d time.Duration
	for _, s := range steps {
		d += s.Duration
	}
	return d
}

func evaluate(samples []bh.AttachSample) ([]bh.AttachBand, []bh.Target) {
	var results []bh.AttachBand
	var targets []bh.Target
	for _, b := range bands {
		var fa, aa, ca, fd, ad, cd, sa []time.Duration
		var shim, handler, engine, alloc, ovsWait, veth []float64
		for _, s := range samples {
			if s.Ports < b.From || s.Ports > b.To {
				continue
			}
			shim = append(shim, s.AgentAdd-s.Server)
			handler = append(handler, s.Server-s.Engine)
			engine = append(engine, s.Engine)
			alloc = append(alloc, s.Allocate)
			ovsWait = append(ovsWait, s.OVS)
			veth = append(veth, s.Veth)
			fa = append(fa, ms(s.FloorAdd))
			sa = append(sa, ms(s.ShimAlone))
			aa = append(aa, ms(s.AgentAdd))
			ca = append(ca, ms(s.ChainAdd))
			fd = append(fd, ms(s.FloorDel))
			ad = append(ad, ms(s.AgentDel))
			cd = append(cd, ms(s.ChainDel))
		}
		if len(fa) == 0 {
			continue
		}
		r := bh.AttachBand{Band: b.Name, FloorAdd: bh.Summarize(fa), AgentAdd: bh.Summarize(aa), ChainAdd: bh.Summarize(ca),
			FloorDel: bh.Summarize(fd), AgentDel: bh.Summarize(ad), ChainDel: bh.Summarize(cd), ShimAlone: bh.Summarize(sa)}
		r.Shim, r.Handler, r.Engine = bh.Median(shim), bh.Median(handler), bh.Median(engine)
		r.Allocate, r.OVS, r.Veth = bh.Median(alloc), bh.Median(ovsWait), bh.Median(veth)
		r.P50Ratio = bh.Ratio(r.AgentAdd.P50, r.FloorAdd.P50)
		r.P99Ratio = bh.Ratio(r.AgentAdd.P99, r.FloorAdd.P99)
		results = append(results, r)
		targets = append(targets,
			bh.NewTarget("attach", "ADD p50 vs floor, "+b.Name+" ports", r.P50Ratio, 1.0, "x floor",
				fmt.Sprintf("agent %.1f ms, floor %.1f ms; shim alone %.1f ms", r.AgentAdd.P50, r.FloorAdd.P50, r.ShimAlone.P50)),
			bh.NewTarget("attach", "ADD p99 vs floor, "+b.Name+" ports", r.P99Ratio, 1.3, "x floor",
				fmt.Sprintf("agent %.1f ms, floor %.1f ms; shim alone %.1f ms", r.AgentAdd.P99, r.FloorAdd.P99, r.ShimAlone.P99)))
	}
	return results, targets
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func printReport(rep bh.AttachReport) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "band (ports)\tfloor ADD p50/p99\tagent ADD p50/p99\tratio p50/p99\tshim alone p50/p99\tchain ADD p50\tfloor DEL p50\tagent DEL p50/p99\t")
	for _, b := range rep.Bands {
		fmt.Fprintf(tw, "%s\t%.1f / %.1f ms\t%.1f / %.1f ms\t%.2f / %.2f\t%.1f / %.1f ms\t%.1f ms\t%.1f ms\t%.1f / %.1f ms\t\n", b.Band,
			b.FloorAdd.P50, b.FloorAdd.P99, b.AgentAdd.P50, b.AgentAdd.P99, b.P50Ratio, b.P99Ratio, b.ShimAlone.P50, b.ShimAlone.P99,
			b.ChainAdd.P50, b.FloorDel.P50, b.AgentDel.P50, b.AgentDel.P99)
	}
	fmt.Println("shim alone = the antrea binary's ADD against a server that does no work: the exec and the gRPC call, the least")
	fmt.Println("any plugin that hands its work to a daemon costs here; the floor has no exec.")
	tw.Flush()
	fmt.Println()
	fmt.Println("Where the agent's ADD time goes (medians, ms): shim = exec of the shim and the call; handler = Pod and networks;")
	fmt.Println("engine = attach engine, whose steps overlap (allocate, veth, OVS port: when each was done, from the engine's start):")
	fmt.Println("the API write runs beside the veth and the OVS port, which is added as soon as the veth exists")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "band (ports)\tshim\thandler\tengine\tallocate\tveth\tOVS port\tfloor\t")
	for _, b := range rep.Bands {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", b.Band, b.Shim, b.Handler, b.Engine, b.Allocate, b.Veth, b.OVS, b.FloorAdd.P50)
	}
	tw.Flush()
	fmt.Println()
	bh.PrintTargets(os.Stdout, rep.Targets)
	fmt.Printf("load average %s -> %s, %.0f s\n", rep.Machine.LoadStart, rep.Machine.LoadEnd, rep.Machine.DurationSec)
}
