// Command attach measures the latency of CNI ADD and DEL of Pods attached one after another
// (primary bridge + host-local with antrea chained; one VLAN network with IPv4 IPAM), per band of
// bridge size, beside what it is judged against, all measured in the same run and taking turns
// Pod by Pod, so that whatever else loads the machine weighs on all alike:
//
//   - the floor: the bare kernel and OVSDB work of one attachment, no process, on a Node of its own;
//   - the shim alone: the antrea binary against a server that does nothing;
//   - the exec floor: a minimal static Go plugin that prints its prevResult;
//   - a chained ADD of a Pod that asks for no secondary network;
//   - the peer ovs-cni with host-local IPAM, as shipped and polling the link state every 10 ms,
//     each on a Node of its own whose bridge grows as the agent's does.
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
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	bh "github.com/podvlan/podvlan/internal/benchharness"
	"github.com/podvlan/podvlan/internal/teststack"
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
	l, err := b.Lineup(ctx, "pvba-")
	if err != nil {
		return err
	}
	agentNode, agent, network, floor, shipped, fast := l.AgentNode, l.Agent, l.Network, l.Floor, l.Shipped, l.Fast
	peers := []*bh.OVSCNI{shipped, fast}

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
		if err := teststack.NewPodNetNS(ctx, floorNS[i]); err != nil {
			return err
		}
		name := floorNS[i]
		cleanup.Add(func() { bh.DeleteNetNS(context.Background(), name) })
	}
	peerNS := make([][]string, len(peers))
	for k := range peers {
		if peerNS[k], err = bh.PodNetNSes(ctx, cleanup, "pvbop-", pods+1); err != nil {
			return err
		}
	}
	// A Pod that asks for no secondary network: the chained ADD the shim answers from the Pod's
	// annotations alone, once it does (DESIGN.md), and the agent otherwise.
	plain, err := c.NewSandbox(ctx, agentNode.Name, namespace, "plain", "")
	if err != nil {
		return err
	}
	cleanup.Add(func() { bh.DeleteNetNS(context.Background(), plain.NetNS) })
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
	for k, p := range peers {
		if _, err := p.Add(ctx, warm, peerNS[k][warm]); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if _, err := p.Del(ctx, warm, peerNS[k][warm]); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	if _, err := cni.ExecFloor(ctx, "ADD", sandboxes[warm]); err != nil {
		return fmt.Errorf("warm-up exec floor: %w", err)
	}
	if _, err := cni.ExecShim(ctx, agent, "ADD", plain); err != nil {
		return fmt.Errorf("warm-up ADD of a Pod without networks: %w", err)
	}

	fmt.Printf("ADD of %d Pods: floor, agent, shim alone, exec floor, Pod without networks, ovs-cni x2 taking turns\n", pods)
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
		addExecFloor := func() error {
			d, err := cni.ExecFloor(ctx, "ADD", sandboxes[i])
			s.ExecFloor = bh.Millis(d)
			return err
		}
		addNoNetworks := func() error {
			d, err := cni.ExecShim(ctx, agent, "ADD", plain)
			s.NoNetworks = bh.Millis(d)
			return err
		}
		addShipped := func() error {
			d, err := shipped.Add(ctx, i, peerNS[0][i])
			s.OVSCNIAdd = bh.Millis(d)
			return err
		}
		addFast := func() error {
			d, err := fast.Add(ctx, i, peerNS[1][i])
			s.OVSCNIFastAdd = bh.Millis(d)
			return err
		}
		if err := rotate(i, addFloor, addAgent, addShimAlone, addExecFloor, addNoNetworks, addShipped, addFast); err != nil {
			return err
		}
	}
	breakdowns, err := bh.ReadBreakdowns(agent.LogPath)
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
	ports, err := agentNode.Vsctl(ctx, "list-ports", teststack.SecondaryBridge)
	if err != nil {
		return err
	}
	if n := len(strings.Fields(ports)); n != pods {
		return fmt.Errorf("%s has %d ports after %d ADDs", teststack.SecondaryBridge, n, pods)
	}
	for _, p := range peers {
		if n, err := p.Ports(ctx); err != nil || n != pods {
			return fmt.Errorf("%s's bridge has %d ports after %d ADDs (%v)", p.Name, n, pods, err)
		}
	}

	fmt.Printf("DEL of %d Pods, floor, agent and ovs-cni x2 taking turns\n", pods)
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
		delShipped := func() error {
			d, err := shipped.Del(ctx, idx, peerNS[0][idx])
			s.OVSCNIDel = bh.Millis(d)
			return err
		}
		delFast := func() error {
			d, err := fast.Del(ctx, idx, peerNS[1][idx])
			s.OVSCNIFastDel = bh.Millis(d)
			return err
		}
		if err := rotate(i, delFloor, delAgent, delShipped, delFast); err != nil {
			return err
		}
	}
	ports, err = agentNode.Vsctl(ctx, "list-ports", teststack.SecondaryBridge)
	if err != nil {
		return err
	}
	if n := len(strings.Fields(ports)); n != 0 {
		return fmt.Errorf("%s still has %d ports after every DEL", teststack.SecondaryBridge, n)
	}
	if _, err := c.WaitPoolAllocations(ctx, network.Pool, 0, 15*time.Second); err != nil {
		return fmt.Errorf("after every DEL: %w", err)
	}

	rep.Bands, rep.All, rep.Targets = evaluate(rep.Samples)
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

func total(steps bh.Steps) time.Duration {
	var d time.Duration
	for _, s := range steps {
		d += s.Duration
	}
	return d
}

// Targets of issue 18, as ratios to figures of the same run.
const (
	targetFloorShim    = 1.2 // ADD p50 <= 1.2 x (floor p50 + shim-alone p50), every band
	targetFloorShimP99 = 1.5 // ADD p99 <= 1.5 x (floor p99 + shim-alone p99), every band
	targetFastPoll     = 1.0 // ADD p50 below ovs-cni fast poll, every band
	targetShipped      = 0.2 // ADD p50 <= 0.2 x ovs-cni as shipped, from 51 ports
	targetShimExec     = 2.0 // shim alone <= 2 x the exec floor
	targetNoNetworks   = 1.1 // a Pod without networks <= 1.1 x the exec floor
)

// band summarizes the samples whose bridge size lies in [from, to].
func band(name string, from, to int, samples []bh.AttachSample) (bh.AttachBand, bool) {
	var fa, aa, ca, fd, ad, cd, sa, ef, nn, oa, of, od, ofd []time.Duration
	var shim, handler, engine, alloc, ovsWait, veth []float64
	for _, s := range samples {
		if s.Ports < from || s.Ports > to {
			continue
		}
		shim = append(shim, s.AgentAdd-s.Server)
		handler = append(handler, s.Server-s.Engine)
		engine = append(engine, s.Engine)
		alloc = append(alloc, s.Allocate)
		ovsWait = append(ovsWait, s.OVS)
		veth = append(veth, s.Veth)
		fa, sa, aa, ca = append(fa, ms(s.FloorAdd)), append(sa, ms(s.ShimAlone)), append(aa, ms(s.AgentAdd)), append(ca, ms(s.ChainAdd))
		fd, ad, cd = append(fd, ms(s.FloorDel)), append(ad, ms(s.AgentDel)), append(cd, ms(s.ChainDel))
		ef, nn = append(ef, ms(s.ExecFloor)), append(nn, ms(s.NoNetworks))
		oa, of, od, ofd = append(oa, ms(s.OVSCNIAdd)), append(of, ms(s.OVSCNIFastAdd)), append(od, ms(s.OVSCNIDel)), append(ofd, ms(s.OVSCNIFastDel))
	}
	if len(fa) == 0 {
		return bh.AttachBand{}, false
	}
	r := bh.AttachBand{Band: name, FloorAdd: bh.Summarize(fa), AgentAdd: bh.Summarize(aa), ChainAdd: bh.Summarize(ca),
		FloorDel: bh.Summarize(fd), AgentDel: bh.Summarize(ad), ChainDel: bh.Summarize(cd), ShimAlone: bh.Summarize(sa),
		ExecFloor: bh.Summarize(ef), NoNetworks: bh.Summarize(nn), OVSCNIAdd: bh.Summarize(oa), OVSCNIFast: bh.Summarize(of),
		OVSCNIDel: bh.Summarize(od), OVSCNIFDel: bh.Summarize(ofd)}
	r.Shim, r.Handler, r.Engine = bh.Median(shim), bh.Median(handler), bh.Median(engine)
	r.Allocate, r.OVS, r.Veth = bh.Median(alloc), bh.Median(ovsWait), bh.Median(veth)
	r.P50Ratio = bh.Ratio(r.AgentAdd.P50, r.FloorAdd.P50+r.ShimAlone.P50)
	r.P99Ratio = bh.Ratio(r.AgentAdd.P99, r.FloorAdd.P99+r.ShimAlone.P99)
	return r, true
}

func evaluate(samples []bh.AttachSample) ([]bh.AttachBand, bh.AttachBand, []bh.Target) {
	var results []bh.AttachBand
	var targets []bh.Target
	for _, b := range bands {
		r, ok := band(b.Name, b.From, b.To, samples)
		if !ok {
			continue
		}
		results = append(results, r)
		targets = append(targets,
			bh.NewTarget("attach", "ADD p50 vs floor + shim alone, "+b.Name+" ports", r.P50Ratio, targetFloorShim, "x (floor + shim alone)",
				fmt.Sprintf("agent %.1f ms; floor %.1f + shim alone %.1f ms", r.AgentAdd.P50, r.FloorAdd.P50, r.ShimAlone.P50)),
			bh.NewTarget("attach", "ADD p99 vs floor p99 + shim-alone p99, "+b.Name+" ports", r.P99Ratio, targetFloorShimP99,
				"x (floor + shim alone)", fmt.Sprintf("agent %.1f ms; floor %.1f + shim alone %.1f ms", r.AgentAdd.P99, r.FloorAdd.P99, r.ShimAlone.P99)),
			bh.NewTarget("attach", "ADD p50 vs ovs-cni fast poll, "+b.Name+" ports", bh.Ratio(r.AgentAdd.P50, r.OVSCNIFast.P50), targetFastPoll,
				"x ovs-cni fast poll", fmt.Sprintf("agent %.1f ms, ovs-cni (10 ms poll) %.1f ms", r.AgentAdd.P50, r.OVSCNIFast.P50)))
		if b.From > 50 {
			targets = append(targets, bh.NewTarget("attach", "ADD p50 vs ovs-cni as shipped, "+b.Name+" ports",
				bh.Ratio(r.AgentAdd.P50, r.OVSCNIAdd.P50), targetShipped, "x ovs-cni",
				fmt.Sprintf("agent %.1f ms, ovs-cni as shipped %.1f ms", r.AgentAdd.P50, r.OVSCNIAdd.P50)))
		}
	}
	all, _ := band("all", 0, math.MaxInt, samples)
	targets = append(targets,
		bh.NewTarget("attach", "shim alone vs exec floor, ADD p50", bh.Ratio(all.ShimAlone.P50, all.ExecFloor.P50), targetShimExec,
			"x exec floor", fmt.Sprintf("shim alone %.1f ms, exec floor %.1f ms", all.ShimAlone.P50, all.ExecFloor.P50)),
		bh.NewTarget("attach", "chained ADD of a Pod without networks vs exec floor, p50", bh.Ratio(all.NoNetworks.P50, all.ExecFloor.P50),
			targetNoNetworks, "x exec floor", fmt.Sprintf("%.1f ms, exec floor %.1f ms", all.NoNetworks.P50, all.ExecFloor.P50)))
	return results, all, targets
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func printReport(rep bh.AttachReport) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "band (ports)\tfloor ADD p50/p99\tagent ADD p50/p99\tshim alone p50/p99\tovs-cni p50/p99\tovs-cni fast poll p50/p99\tchain ADD p50\t")
	for _, b := range rep.Bands {
		fmt.Fprintf(tw, "%s\t%.1f / %.1f ms\t%.1f / %.1f ms\t%.1f / %.1f ms\t%.1f / %.1f ms\t%.1f / %.1f ms\t%.1f ms\t\n", b.Band,
			b.FloorAdd.P50, b.FloorAdd.P99, b.AgentAdd.P50, b.AgentAdd.P99, b.ShimAlone.P50, b.ShimAlone.P99,
			b.OVSCNIAdd.P50, b.OVSCNIAdd.P99, b.OVSCNIFast.P50, b.OVSCNIFast.P99, b.ChainAdd.P50)
	}
	tw.Flush()
	fmt.Printf("exec floor ADD p50/p99 %.1f / %.1f ms; Pod without networks %.1f / %.1f ms (all bands)\n\n",
		rep.All.ExecFloor.P50, rep.All.ExecFloor.P99, rep.All.NoNetworks.P50, rep.All.NoNetworks.P99)
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "band (ports)\tfloor DEL p50\tagent DEL p50/p99\tovs-cni DEL p50/p99\tovs-cni fast poll DEL p50/p99\t")
	for _, b := range rep.Bands {
		fmt.Fprintf(tw, "%s\t%.1f ms\t%.1f / %.1f ms\t%.1f / %.1f ms\t%.1f / %.1f ms\t\n", b.Band, b.FloorDel.P50,
			b.AgentDel.P50, b.AgentDel.P99, b.OVSCNIDel.P50, b.OVSCNIDel.P99, b.OVSCNIFDel.P50, b.OVSCNIFDel.P99)
	}
	tw.Flush()
	fmt.Println()
	fmt.Println("Where the agent's ADD time goes (medians, ms): shim = exec of the shim and the call; handler = Pod and networks;")
	fmt.Println("engine = attach engine, whose steps overlap (allocate, veth, OVS port: when each was done, from the engine's start)")
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
