// Command plot draws the benchmark charts that hack/bench/summary describes in charts.json (see
// internal/benchharness/chart.go for the format): line charts and grouped, stacked bar charts,
// with gonum/plot. Each series is colored by its role, so that the agent, its references and
// the peers look the same in every chart.
//
//	go run . -in _output/bench/charts.json -out docs/performance
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The chart format, as internal/benchharness writes it.
type (
	point struct {
		X float64 `json:"x"`
		Y float64 `json:"y"`
	}
	line struct {
		Name   string  `json:"name"`
		Role   string  `json:"role"`
		Points []point `json:"points"`
		Dashed bool    `json:"dashed"`
		Dots   bool    `json:"dots"`
	}
	barSeries struct {
		Name    string    `json:"name"`
		Role    string    `json:"role"`
		Values  []float64 `json:"values"`
		StackOn string    `json:"stack_on"`
	}
	reference struct {
		Name string  `json:"name"`
		Y    float64 `json:"y"`
		Role string  `json:"role"`
	}
	chart struct {
		File       string      `json:"file"`
		Title      string      `json:"title"`
		XLabel     string      `json:"x_label"`
		YLabel     string      `json:"y_label"`
		LogY       bool        `json:"log_y"`
		YMax       float64     `json:"y_max"`
		Lines      []line      `json:"lines"`
		Groups     []string    `json:"groups"`
		Bars       []barSeries `json:"bars"`
		References []reference `json:"references"`
	}
)

// colors by role: the agent warm, its references cool, the peers grey and violet.
var colors = map[string]color.RGBA{
	"floor":        {0x4c, 0x72, 0xb0, 0xff},
	"agent":        {0xdd, 0x84, 0x52, 0xff},
	"agent-2":      {0xe8, 0xb0, 0x50, 0xff},
	"agent-3":      {0xc4, 0x4e, 0x52, 0xff},
	"shim-alone":   {0x64, 0xb5, 0xcd, 0xff},
	"exec-floor":   {0x55, 0xa8, 0x68, 0xff},
	"no-networks":  {0x2a, 0x9d, 0x8f, 0xff},
	"ovs-cni":      {0x59, 0x59, 0x59, 0xff},
	"ovs-cni-fast": {0x81, 0x72, 0xb3, 0xff},
	"whereabouts":  {0x81, 0x72, 0xb3, 0xff},
	"target":       {0xc0, 0x00, 0x00, 0xff},
}

func colorOf(role string) color.RGBA {
	if c, ok := colors[role]; ok {
		return c
	}
	return color.RGBA{0, 0, 0, 0xff}
}

func main() {
	in := flag.String("in", "", "charts.json written by hack/bench/summary")
	out := flag.String("out", ".", "directory for the PNG files")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	if in == "" {
		return errors.New("-in is required")
	}
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var charts []chart
	if err := json.Unmarshal(data, &charts); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, c := range charts {
		p, err := render(c)
		if err != nil {
			return fmt.Errorf("%s: %w", c.File, err)
		}
		if err := p.Save(10*vg.Inch, 5.6*vg.Inch, filepath.Join(out, c.File)); err != nil {
			return fmt.Errorf("%s: %w", c.File, err)
		}
	}
	fmt.Printf("plot: drew %d charts in %s\n", len(charts), out)
	return nil
}

func render(c chart) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = c.Title
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.Legend.TextStyle.Font.Size = vg.Points(11)
	p.X.Label.TextStyle.Font.Size = vg.Points(12)
	p.Y.Label.TextStyle.Font.Size = vg.Points(12)
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	var err error
	switch {
	case len(c.Lines) > 0:
		err = addLines(p, c)
	case len(c.Bars) > 0:
		err = addBars(p, c)
	default:
		err = errors.New("no data")
	}
	if err != nil {
		return nil, err
	}
	for _, r := range c.References {
		y := r.Y
		f := plotter.NewFunction(func(float64) float64 { return y })
		f.Color = colorOf(r.Role)
		f.Width = vg.Points(1.5)
		f.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
		p.Add(f)
		p.Legend.Add(r.Name, f)
		p.Y.Max = math.Max(p.Y.Max, y*1.05)
	}
	if c.YMax > 0 {
		p.Y.Max = c.YMax
	}
	if c.LogY {
		// A log axis needs a positive minimum: a bit under the smallest positive value drawn.
		lo := smallestPositive(c)
		if lo == 0 {
			return nil, errors.New("a log axis without a positive value")
		}
		p.Y.Scale = clampedLog{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Min = lo / 2
		p.Y.Max *= 6 // room for the legend
	} else {
		p.Y.Min = 0
		p.Y.Max *= 1.4 // room for the legend
	}
	return p, nil
}

func addLines(p *plot.Plot, c chart) error {
	for _, l := range c.Lines {
		xys := make(plotter.XYs, 0, len(l.Points))
		for _, pt := range l.Points {
			if c.LogY && pt.Y <= 0 {
				continue
			}
			xys = append(xys, plotter.XY{X: pt.X, Y: pt.Y})
		}
		if len(xys) == 0 {
			continue
		}
		col := colorOf(l.Role)
		if l.Dots {
			s, err := plotter.NewScatter(xys)
			if err != nil {
				return err
			}
			s.GlyphStyle.Color = col
			s.GlyphStyle.Radius = vg.Points(1.5)
			s.GlyphStyle.Shape = draw.CircleGlyph{}
			p.Add(s)
			p.Legend.Add(l.Name, s)
			continue
		}
		ln, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		ln.Color = col
		ln.Width = vg.Points(2)
		pts.GlyphStyle.Color = col
		pts.GlyphStyle.Radius = vg.Points(2)
		if l.Dashed {
			ln.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			ln.Width = vg.Points(1.5)
			pts.GlyphStyle.Shape = draw.TriangleGlyph{}
		} else {
			pts.GlyphStyle.Shape = draw.CircleGlyph{}
		}
		if len(xys) > 30 {
			p.Add(ln) // dense series: the line alone
			p.Legend.Add(l.Name, ln)
		} else {
			p.Add(ln, pts)
			p.Legend.Add(l.Name, ln, pts)
		}
	}
	return nil
}

// addBars draws each series as one bar per group, side by side; a series with StackOn is drawn
// on top of that series and takes no place of its own.
func addBars(p *plot.Plot, c chart) error {
	var columns []string // series that stand on the axis, in order
	for _, b := range c.Bars {
		if b.StackOn == "" {
			columns = append(columns, b.Name)
		}
	}
	n := float64(len(columns))
	width := vg.Points(math.Min(40, 520/(n*float64(max(1, len(c.Groups))))))
	drawn := map[string]*plotter.BarChart{}
	column := map[string]int{}
	for i, name := range columns {
		column[name] = i
	}
	for _, b := range c.Bars {
		values := make(plotter.Values, len(b.Values))
		for i, v := range b.Values {
			values[i] = v
		}
		bar, err := plotter.NewBarChart(values, width)
		if err != nil {
			return err
		}
		bar.Color = colorOf(b.Role)
		bar.LineStyle.Width = vg.Points(0.5)
		if b.StackOn != "" {
			below, ok := drawn[b.StackOn]
			if !ok {
				return fmt.Errorf("bar series %q stacks on unknown %q", b.Name, b.StackOn)
			}
			bar.StackOn(below)
			bar.Offset = below.Offset
		} else {
			bar.Offset = width * vg.Length(float64(column[b.Name])-(n-1)/2)
		}
		drawn[b.Name] = bar
		p.Add(bar)
		p.Legend.Add(b.Name, bar)
	}
	p.NominalX(c.Groups...)
	return nil
}

func smallestPositive(c chart) float64 {
	lo := math.Inf(1)
	for _, l := range c.Lines {
		for _, pt := range l.Points {
			if pt.Y > 0 {
				lo = math.Min(lo, pt.Y)
			}
		}
	}
	for _, b := range c.Bars {
		for _, v := range b.Values {
			if v > 0 {
				lo = math.Min(lo, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return 0
	}
	return lo
}

// clampedLog is a log scale that draws values at or below the axis' minimum (a bar's base of 0)
// at the bottom, where plot.LogScale refuses them.
type clampedLog struct{}

func (clampedLog) Normalize(min, max, x float64) float64 {
	return plot.LogScale{}.Normalize(min, max, math.Max(x, min))
}
