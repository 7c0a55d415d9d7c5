// Command summary reads the results the other benchmark programs wrote under _output/bench/,
// prints one table with every target (issue 18's ratios to the floors, the shim alone and the
// peers ovs-cni and Whereabouts, measured in the same run) and whether it was met, by how much
// when it was not, writes _output/bench/summary.json, and has the charts of docs/performance.md
// drawn: it writes what each chart shows to charts.json and runs hack/tools/plot (gonum/plot, a
// module of its own) on it.
//
//	go run ./hack/bench/summary [-dir _output/bench] [-plots DIR]
//
// `make bench` runs it last (hack/bench.sh runs the programs in name order); pass
// -plots docs/performance to refresh the documentation's charts from a run.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	bh "github.com/podvlan/podvlan/internal/benchharness"
	"github.com/podvlan/podvlan/internal/teststack"
)

// Summary is summary.json.
type Summary struct {
	Targets []bh.Target `json:"targets"`
	Missing []string    `json:"missing,omitempty"`
	Passed  int         `json:"passed"`
	Missed  int         `json:"missed"`
}

func main() {
	dir := flag.String("dir", "", "where the results are (default <repo>/_output/bench)")
	plots := flag.String("plots", "", "where to write the charts (default the results directory)")
	flag.Parse()
	if err := run(*dir, *plots); err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(1)
	}
}

func run(dir, plots string) error {
	root, err := teststack.FindRepoRoot()
	if err != nil {
		return err
	}
	if dir == "" {
		dir = filepath.Join(root, "_output", "bench")
	}
	if plots == "" {
		plots = dir
	}
	var sum Summary
	var charts []bh.Chart
	load := func(name string, v any) bool {
		err := bh.ReadJSON(filepath.Join(dir, name), v)
		if errors.Is(err, fs.ErrNotExist) {
			sum.Missing = append(sum.Missing, name)
			return false
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "summary:", err)
			sum.Missing = append(sum.Missing, name)
			return false
		}
		return true
	}

	var attach bh.AttachReport
	if load("attach.json", &attach) {
		sum.Targets = append(sum.Targets, attach.Targets...)
		charts = append(charts, attachCharts(attach)...)
	}
	var burst bh.BurstReport
	if load("burst.json", &burst) {
		sum.Targets = append(sum.Targets, burst.Targets...)
		charts = append(charts, burstChart(burst))
	}
	var ipam bh.IPAMReport
	if load("ipam.json", &ipam) {
		sum.Targets = append(sum.Targets, ipam.Targets...)
		charts = append(charts, ipamCharts(ipam)...)
	}
	var restart bh.RestartReport
	if load("restart.json", &restart) {
		sum.Targets = append(sum.Targets, restart.Targets...)
		charts = append(charts, restartChart(restart))
	}
	var memory bh.MemoryReport
	if load("memory.json", &memory) {
		sum.Targets = append(sum.Targets, memory.Targets...)
		charts = append(charts, memoryChart(memory, burst))
	}

	for _, t := range sum.Targets {
		if t.Pass {
			sum.Passed++
		} else {
			sum.Missed++
		}
	}
	fmt.Println("Targets (each a ratio to a floor, a reference or a peer measured in the same run):")
	bh.PrintTargets(os.Stdout, sum.Targets)
	fmt.Printf("%d PASS, %d MISS", sum.Passed, sum.Missed)
	if len(sum.Missing) > 0 {
		fmt.Printf(", not run: %s", strings.Join(sum.Missing, ", "))
	}
	fmt.Println()
	if len(charts) > 0 {
		if err := draw(root, dir, plots, charts); err != nil {
			return err
		}
	}
	out := filepath.Join(dir, "summary.json")
	if err := bh.WriteJSON(out, sum); err != nil {
		return err
	}
	fmt.Printf("Wrote %s and the charts in %s\n", out, plots)
	return nil
}

func attachCharts(r bh.AttachReport) []bh.Chart {
	series := []struct {
		name, role string
		y          func(bh.AttachSample) float64
	}{
		{"floor", bh.RoleFloor, func(s bh.AttachSample) float64 { return s.FloorAdd }},
		{"agent through the shim", bh.RoleAgent, func(s bh.AttachSample) float64 { return s.AgentAdd }},
		{"shim alone (server doing nothing)", bh.RoleShimAlone, func(s bh.AttachSample) float64 { return s.ShimAlone }},
		{"exec floor", bh.RoleExecFloor, func(s bh.AttachSample) float64 { return s.ExecFloor }},
		{"Pod without networks (chained ADD)", bh.RoleNoNetworks, func(s bh.AttachSample) float64 { return s.NoNetworks }},
		{"ovs-cni, 10 ms poll", bh.RoleOVSCNIFast, func(s bh.AttachSample) float64 { return s.OVSCNIFastAdd }},
		{"ovs-cni as shipped", bh.RoleOVSCNI, func(s bh.AttachSample) float64 { return s.OVSCNIAdd }},
	}
	latency := bh.Chart{File: "attach-latency.png", Title: "CNI ADD latency, one Pod after another (rolling median of 15)",
		XLabel: "Pod ports on the bridge", YLabel: "ADD latency (ms, log scale)", LogY: true}
	for _, sr := range series {
		var pts []bh.Point
		for _, s := range r.Samples {
			if y := sr.y(s); y > 0 {
				pts = append(pts, bh.Point{X: float64(s.Ports), Y: y})
			}
		}
		if len(pts) > 0 {
			latency.Lines = append(latency.Lines, bh.Line{Name: sr.name, Role: sr.role, Points: bh.RollingMedian(pts, 15)})
		}
	}
	bands := bh.Chart{File: "attach-bands.png", Title: "Median ADD by bridge size, the agent beside its references and ovs-cni",
		YLabel: "ADD p50 (ms, log scale)", LogY: true}
	breakdown := bh.Chart{File: "attach-breakdown.png", Title: "Where the agent's median ADD goes, against floor + shim alone and ovs-cni",
		YLabel: "milliseconds"}
	var floor, shimAlone, execFloor, noNetworks, agent, fast, shipped, engine, handler, shim, floorShim []float64
	for _, b := range r.Bands {
		bands.Groups = append(bands.Groups, b.Band+" ports")
		breakdown.Groups = append(breakdown.Groups, b.Band+" ports")
		floor, shimAlone, execFloor = append(floor, b.FloorAdd.P50), append(shimAlone, b.ShimAlone.P50), append(execFloor, b.ExecFloor.P50)
		agent, fast, shipped = append(agent, b.AgentAdd.P50), append(fast, b.OVSCNIFast.P50), append(shipped, b.OVSCNIAdd.P50)
		engine, handler, shim = append(engine, b.Engine), append(handler, max(0, b.Handler)), append(shim, max(0, b.Shim))
		floorShim = append(floorShim, b.ShimAlone.P50)
		noNetworks = append(noNetworks, b.NoNetworks.P50)
	}
	bands.Bars = []bh.BarSeries{
		{Name: "exec floor", Role: bh.RoleExecFloor, Values: execFloor},
		{Name: "Pod without networks", Role: bh.RoleNoNetworks, Values: noNetworks},
		{Name: "shim alone", Role: bh.RoleShimAlone, Values: shimAlone},
		{Name: "floor", Role: bh.RoleFloor, Values: floor},
		{Name: "agent", Role: bh.RoleAgent, Values: agent},
		{Name: "ovs-cni, 10 ms poll", Role: bh.RoleOVSCNIFast, Values: fast},
		{Name: "ovs-cni as shipped", Role: bh.RoleOVSCNI, Values: shipped},
	}
	breakdown.Bars = []bh.BarSeries{
		{Name: "floor", Role: bh.RoleFloor, Values: floor},
		{Name: "+ shim alone", Role: bh.RoleShimAlone, Values: floorShim, StackOn: "floor"},
		{Name: "agent: engine", Role: bh.RoleAgent, Values: engine},
		{Name: "agent: handler", Role: bh.RoleAgentPart2, Values: handler, StackOn: "agent: engine"},
		{Name: "agent: shim, exec and call", Role: bh.RoleAgentPart3, Values: shim, StackOn: "agent: handler"},
		{Name: "ovs-cni, 10 ms poll", Role: bh.RoleOVSCNIFast, Values: fast},
	}
	return []bh.Chart{latency, bands, breakdown}
}

func burstChart(r bh.BurstReport) bh.Chart {
	c := bh.Chart{File: "burst.png", Title: fmt.Sprintf("%d Pods ADDed at once (medians of %d rounds)", r.Pods, len(r.Rounds)),
		YLabel: "seconds until all answered", Groups: []string{""}}
	c.Bars = []bh.BarSeries{
		{Name: "exec floor", Role: bh.RoleExecFloor, Values: []float64{r.ExecFloorMedianS}},
		{Name: "shim alone", Role: bh.RoleShimAlone, Values: []float64{r.ShimAloneMedianS}},
		{Name: "floor", Role: bh.RoleFloor, Values: []float64{r.FloorMedianS}},
		{Name: "agent", Role: bh.RoleAgent, Values: []float64{r.AgentMedianS}},
		{Name: "ovs-cni, 10 ms poll", Role: bh.RoleOVSCNIFast, Values: []float64{r.OVSCNIFastMedS}},
		{Name: "ovs-cni as shipped", Role: bh.RoleOVSCNI, Values: []float64{r.OVSCNIMedianS}},
	}
	c.References = []bh.Reference{
		{Name: "target 1.2 x (floor + shim alone)", Y: 1.2 * (r.FloorMedianS + r.ShimAloneMedianS), Role: bh.RoleTarget},
		{Name: "target 0.8 x ovs-cni", Y: 0.8 * r.OVSCNIMedianS, Role: bh.RoleOVSCNI},
	}
	return c
}

func ipamCharts(r bh.IPAMReport) []bh.Chart {
	rate := bh.Chart{File: "ipam.png", Title: fmt.Sprintf("Allocations/s while a pool fills, per %d allocations", r.BandSize),
		XLabel: "allocations in the pool at the band's end", YLabel: "allocations/s (log scale)", LogY: true}
	p99 := bh.Chart{File: "ipam-p99.png", Title: fmt.Sprintf("Allocation p99 while a pool fills, per %d allocations", r.BandSize),
		XLabel: "allocations in the pool at the band's end", YLabel: "p99 (ms, log scale)", LogY: true}
	for _, run := range r.Runs {
		role, name := bh.RoleAgent, "podvlan"
		if run.Allocator == "whereabouts" {
			role, name = bh.RoleWhereabouts, "Whereabouts"
		}
		if run.Allocations == 0 {
			continue // every request failed: no rate to draw (the table says why)
		}
		var rp, pp []bh.Point
		for _, b := range run.Bands {
			rp = append(rp, bh.Point{X: float64(b.To), Y: b.AllocsPerSec})
			pp = append(pp, bh.Point{X: float64(b.To), Y: b.Latency.P99})
		}
		if len(rp) == 0 {
			continue
		}
		nodes := "Nodes"
		if run.Nodes == 1 {
			nodes = "Node"
		}
		label := fmt.Sprintf("%s, %d %s x %d in flight", name, run.Nodes, nodes, run.InFlight)
		dashed := run.Nodes != 8
		rate.Lines = append(rate.Lines, bh.Line{Name: label, Role: role, Points: rp, Dashed: dashed})
		p99.Lines = append(p99.Lines, bh.Line{Name: label, Role: role, Points: pp, Dashed: dashed})
	}
	if len(rate.Lines) == 0 {
		return nil
	}
	return []bh.Chart{rate, p99}
}

// restartChart has no peer series: neither ovs-cni nor Whereabouts runs a daemon that restarts.
func restartChart(r bh.RestartReport) bh.Chart {
	c := bh.Chart{File: "restart.png", Title: fmt.Sprintf("kill -9 to ready, %d Pods x %d networks", r.Pods, r.Networks), YLabel: "seconds"}
	var ready []float64
	for i, x := range r.Restarts {
		c.Groups = append(c.Groups, fmt.Sprintf("restart %d", i+1))
		ready = append(ready, x.ReadySeconds)
	}
	c.Bars = []bh.BarSeries{{Name: "STATUS ready, reconciled", Role: bh.RoleAgent, Values: ready}}
	c.References = []bh.Reference{{Name: "target 2 s", Y: 2, Role: bh.RoleTarget}}
	return c
}

// memoryChart has no peer series: ovs-cni and Whereabouts keep no process between calls.
func memoryChart(m bh.MemoryReport, burst bh.BurstReport) bh.Chart {
	c := bh.Chart{File: "memory.png", Title: "antrea-agent resident memory", YLabel: "MiB",
		Groups: []string{fmt.Sprintf("%d Pods, 0 others", m.Pods), fmt.Sprintf("%d Pods, %d others", m.Pods, m.OtherPods)}}
	rss := []float64{m.RSSBaseMiB, m.RSSWithOthersMiB}
	anon := []float64{m.AnonBaseMiB, m.AnonWithOthersMiB}
	if burst.AgentPeakRSSMiB > 0 {
		c.Groups = append(c.Groups, fmt.Sprintf("burst of %d ADDs (peak)", burst.Pods))
		rss = append(rss, burst.AgentPeakRSSMiB)
		anon = append(anon, burst.AgentPeakAnonMiB)
		c.References = []bh.Reference{{Name: "target 80 MiB", Y: 80, Role: bh.RoleTarget}}
	}
	c.Bars = []bh.BarSeries{{Name: "RSS (peak: VmHWM)", Role: bh.RoleAgent, Values: rss},
		{Name: "anonymous RSS (burst: peak of RssAnon)", Role: bh.RoleAgentPart2, Values: anon}}
	return c
}

// draw writes the charts' description next to the results and runs hack/tools/plot, which draws
// them into dir.
func draw(root, results, dir string, charts []bh.Chart) error {
	for _, c := range charts {
		if err := c.Validate(); err != nil {
			return err
		}
	}
	spec := filepath.Join(results, "charts.json")
	if err := bh.WriteJSON(spec, charts); err != nil {
		return err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "run", ".", "-in", spec, "-out", absDir)
	cmd.Dir = filepath.Join(root, "hack", "tools", "plot")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hack/tools/plot: %w", err)
	}
	return nil
}
