// Command summary reads the results the other benchmark programs wrote under _output/bench/,
// prints one table with every target of issue 9 and whether it was met, writes
// _output/bench/summary.json, and draws the charts of docs/performance.md as PNG files.
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
	"path/filepath"
	"slices"
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
	if dir == "" {
		root, err := teststack.FindRepoRoot()
		if err != nil {
			return err
		}
		dir = filepath.Join(root, "_output", "bench")
	}
	if plots == "" {
		plots = dir
	}
	var sum Summary
	var charts []func() error
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
		charts = append(charts, func() error { return attachCharts(plots, attach) })
	}
	var burst bh.BurstReport
	if load("burst.json", &burst) {
		sum.Targets = append(sum.Targets, burst.Targets...)
		charts = append(charts, func() error { return burstChart(plots, burst) })
	}
	var ipam bh.IPAMReport
	if load("ipam.json", &ipam) {
		sum.Targets = append(sum.Targets, ipamTarget(ipam))
		charts = append(charts, func() error { return ipamChart(plots, ipam) })
	}
	var restart bh.RestartReport
	if load("restart.json", &restart) {
		sum.Targets = append(sum.Targets, restart.Targets...)
		charts = append(charts, func() error { return restartChart(plots, restart) })
	}
	var memory bh.MemoryReport
	if load("memory.json", &memory) {
		sum.Targets = append(sum.Targets, memory.Targets...)
		charts = append(charts, func() error { return memoryChart(plots, memory, burst) })
	}

	for _, t := range sum.Targets {
		if t.Pass {
			sum.Passed++
		} else {
			sum.Missed++
		}
	}
	fmt.Println("Issue 9 targets (each figure measured against a floor or ceiling of the same run):")
	bh.PrintTargets(os.Stdout, sum.Targets)
	fmt.Printf("%d PASS, %d MISS", sum.Passed, sum.Missed)
	if len(sum.Missing) > 0 {
		fmt.Printf(", not run: %s", strings.Join(sum.Missing, ", "))
	}
	fmt.Println()
	for _, draw := range charts {
		if err := draw(); err != nil {
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

// ipamTarget judges ipam.json the way hack/bench/ipam does: 8 allocators issuing every request at
// once on one 1,024-address pool.
func ipamTarget(r bh.IPAMReport) bh.Target {
	limit := r.TargetAt8
	if limit == 0 {
		limit = 150
	}
	value, detail := 0.0, "no run with 8 allocators"
	for _, run := range r.Runs {
		if run.Allocators == 8 && run.InFlight == 0 {
			value = run.AllocsPerSec
			detail = fmt.Sprintf("%d status writes, %d conflict retries, no duplicate; raw single-object writes %.0f/s",
				run.StatusWrites, run.ConflictRetries, r.RawWritesPerSec)
		}
	}
	return bh.NewMinimumTarget("ipam", "allocations/s with 8 allocating Nodes", value, limit, "allocations/s", detail)
}

func attachCharts(dir string, r bh.AttachReport) error {
	var floor, agent, shim []bh.Point
	var top []float64
	for _, s := range r.Samples {
		floor = append(floor, bh.Point{X: float64(s.Ports), Y: s.FloorAdd})
		agent = append(agent, bh.Point{X: float64(s.Ports), Y: s.AgentAdd})
		if s.ShimAlone > 0 {
			shim = append(shim, bh.Point{X: float64(s.Ports), Y: s.ShimAlone})
		}
		top = append(top, s.AgentAdd, s.FloorAdd)
	}
	yMax := 0.0
	if len(top) > 0 {
		yMax = percentile(top, 97) * 1.1
	}
	lc := bh.LineChart{
		Title:  "CNI ADD latency, one Pod after another",
		XLabel: "Pod ports on the bridge",
		YLabel: "ADD latency (ms)",
		YMax:   yMax,
		Series: []bh.Series{
			{Color: bh.ColorFloor, Points: floor, Dots: true, Faint: true},
			{Color: bh.ColorAgent, Points: agent, Dots: true, Faint: true},
			{Name: "floor (rolling median of 15)", Color: bh.ColorFloor, Points: bh.RollingMedian(floor, 15), Line: true},
			{Name: "agent through the shim (rolling median of 15)", Color: bh.ColorAgent, Points: bh.RollingMedian(agent, 15), Line: true},
		},
	}
	if len(shim) > 0 {
		lc.Series = append(lc.Series, bh.Series{Name: "the shim alone, against a server doing nothing (rolling median of 15)",
			Color: bh.ColorAgent3, Points: bh.RollingMedian(shim, 15), Line: true})
	}
	if err := lc.Render(filepath.Join(dir, "attach-latency.png")); err != nil {
		return err
	}
	bc := bh.BarChart{Title: "Median ADD by bridge size: the floor, the agent's parts, the shim alone", YLabel: "milliseconds", Unit: ""}
	for _, b := range r.Bands {
		bc.Groups = append(bc.Groups, bh.BarGroup{Label: b.Band + " ports", Bars: []bh.Bar{
			{Label: "floor", Segments: []bh.Segment{{Name: "floor", Value: b.FloorAdd.P50, Color: bh.ColorFloor}}},
			{Label: "agent", Segments: []bh.Segment{
				{Name: "engine: allocation beside veth and OVS port", Value: b.Engine, Color: bh.ColorAgent},
				{Name: "handler: Pod and networks", Value: b.Handler, Color: bh.ColorAgent2},
				{Name: "shim: exec and call", Value: b.Shim, Color: bh.ColorAgent3},
			}},
			{Label: "shim", Segments: []bh.Segment{{Name: "shim: exec and call", Value: b.ShimAlone.P50, Color: bh.ColorAgent3}}},
		}})
	}
	return bc.Render(filepath.Join(dir, "attach-breakdown.png"))
}

func burstChart(dir string, r bh.BurstReport) error {
	bc := bh.BarChart{Title: fmt.Sprintf("%d Pods ADDed at once (medians of %d rounds)", r.Pods, len(r.Rounds)), YLabel: "seconds until all done", Unit: " s"}
	bc.Groups = []bh.BarGroup{{Label: "", Bars: []bh.Bar{
		{Label: "floor", Segments: []bh.Segment{{Name: "floor", Value: r.FloorMedianS, Color: bh.ColorFloor}}},
		{Label: "agent", Segments: []bh.Segment{
			{Name: "agent: until the last shim's request is in", Value: r.ReceivedMedianS, Color: bh.ColorAgent3},
			{Name: "agent: until the engine attached the last Pod", Value: max(0, r.EngineMedianS-r.ReceivedMedianS), Color: bh.ColorAgent},
			{Name: "agent: answers", Value: max(0, r.AgentMedianS-r.EngineMedianS), Color: bh.ColorAgent2},
		}},
		{Label: "shim alone", Segments: []bh.Segment{{Name: "the shims alone, answered by a server doing nothing", Value: r.ShimAloneMedianS, Color: bh.ColorAgent4}}},
	}}}
	bc.References = []bh.Reference{{Name: "target 1.2 x floor", Y: 1.2 * r.FloorMedianS, Color: bh.ColorTarget}}
	return bc.Render(filepath.Join(dir, "burst.png"))
}

func ipamChart(dir string, r bh.IPAMReport) error {
	bc := bh.BarChart{Title: "IPPool allocations/s on one 1,024-address pool", YLabel: "allocations per second", LogY: true}
	byAllocators := map[int][]bh.Bar{}
	var order []int
	for _, run := range r.Runs {
		if _, ok := byAllocators[run.Allocators]; !ok {
			order = append(order, run.Allocators)
		}
		label, name, col := "burst", "every request at once", bh.ColorAgent
		if run.InFlight > 0 {
			label, name, col = fmt.Sprintf("%d MAX", run.InFlight), fmt.Sprintf("at most %d requests in flight per Node", run.InFlight), bh.ColorAgent2
		}
		byAllocators[run.Allocators] = append(byAllocators[run.Allocators], bh.Bar{Label: label,
			Segments: []bh.Segment{{Name: name, Value: run.AllocsPerSec, Color: col}}})
	}
	for _, n := range order {
		bc.Groups = append(bc.Groups, bh.BarGroup{Label: fmt.Sprintf("%d Nodes", n), Bars: byAllocators[n]})
	}
	bc.References = []bh.Reference{
		{Name: "target 150/s at 8 Nodes", Y: 150, Color: bh.ColorTarget},
		{Name: "raw writes/s of one object", Y: r.RawWritesPerSec, Color: bh.ColorFloor},
	}
	return bc.Render(filepath.Join(dir, "ipam.png"))
}

func restartChart(dir string, r bh.RestartReport) error {
	bc := bh.BarChart{Title: fmt.Sprintf("kill -9 to ready, %d Pods x %d networks", r.Pods, r.Networks), YLabel: "seconds", Unit: " s"}
	var bars []bh.Bar
	for i, x := range r.Restarts {
		bars = append(bars, bh.Bar{Label: fmt.Sprintf("#%d", i+1), Segments: []bh.Segment{{Name: "STATUS ready, reconciled", Value: x.ReadySeconds, Color: bh.ColorAgent}}})
	}
	bc.Groups = []bh.BarGroup{{Label: "restarts", Bars: bars}}
	bc.References = []bh.Reference{{Name: "target 2 s", Y: 2, Color: bh.ColorTarget}}
	return bc.Render(filepath.Join(dir, "restart.png"))
}

func memoryChart(dir string, m bh.MemoryReport, burst bh.BurstReport) error {
	bc := bh.BarChart{Title: "antrea-agent resident memory", YLabel: "MiB", Unit: ""}
	bc.Groups = []bh.BarGroup{{Label: fmt.Sprintf("%d Pods on its Node", m.Pods), Bars: []bh.Bar{
		{Label: "0 others", Segments: []bh.Segment{{Name: "RSS", Value: m.RSSBaseMiB, Color: bh.ColorAgent}}},
		{Label: fmt.Sprintf("%d others", m.OtherPods), Segments: []bh.Segment{{Name: "RSS", Value: m.RSSWithOthersMiB, Color: bh.ColorAgent}}},
	}}}
	if burst.AgentPeakRSSMiB > 0 {
		bc.Groups = append(bc.Groups, bh.BarGroup{Label: fmt.Sprintf("burst of %d ADDs", burst.Pods), Bars: []bh.Bar{
			{Label: "peak", Segments: []bh.Segment{{Name: "peak RSS (VmHWM)", Value: burst.AgentPeakRSSMiB, Color: bh.ColorAgent4}}},
		}})
		bc.References = []bh.Reference{{Name: "burst target 80 MiB", Y: 80, Color: bh.ColorTarget}}
	}
	return bc.Render(filepath.Join(dir, "memory.png"))
}

func percentile(values []float64, p float64) float64 {
	s := slices.Clone(values)
	slices.Sort(s)
	return bh.Percentile(s, p)
}
