package benchharness

import (
	"errors"
	"fmt"
)

// The charts of docs/performance.md are decided here and drawn elsewhere: the summary writes
// what each chart shows (charts.json, the types below) and hack/tools/plot, a module of its own
// so that the product's go.mod does not carry a plotting library, draws them with gonum/plot.
// Field names are the file's format, shared with that program.

// Roles name what a series stands for, so that every chart draws each in the same color: the
// agent and its references, and the peers as series of their own.
const (
	RoleFloor       = "floor"
	RoleAgent       = "agent"
	RoleAgentPart2  = "agent-2"
	RoleAgentPart3  = "agent-3"
	RoleShimAlone   = "shim-alone"
	RoleExecFloor   = "exec-floor"
	RoleNoNetworks  = "no-networks"
	RoleOVSCNI      = "ovs-cni"
	RoleOVSCNIFast  = "ovs-cni-fast"
	RoleWhereabouts = "whereabouts"
	RoleTarget      = "target"
)

// Point is one (x, y) of a series.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Line is one series of a line chart.
type Line struct {
	Name   string  `json:"name"`
	Role   string  `json:"role"`
	Points []Point `json:"points"`
	// Dashed draws a second series of the same role apart (e.g. another Node count).
	Dashed bool `json:"dashed,omitempty"`
	// Dots marks every point instead of joining them (raw samples).
	Dots bool `json:"dots,omitempty"`
}

// BarSeries is one bar in every group of a bar chart: Values[i] is its height in group i. A
// series with StackOn is drawn on top of the series of that name.
type BarSeries struct {
	Name    string    `json:"name"`
	Role    string    `json:"role"`
	Values  []float64 `json:"values"`
	StackOn string    `json:"stack_on,omitempty"`
}

// Reference is a horizontal line across a chart, such as a target.
type Reference struct {
	Name string  `json:"name"`
	Y    float64 `json:"y"`
	Role string  `json:"role"`
}

// Chart is one PNG file: either Lines against a numeric x axis, or Bars in Groups.
type Chart struct {
	File   string `json:"file"`
	Title  string `json:"title"`
	XLabel string `json:"x_label,omitempty"`
	YLabel string `json:"y_label"`
	// LogY draws the y axis in powers of ten, for values spanning several of them.
	LogY bool `json:"log_y,omitempty"`
	// YMax caps the y axis (0: fit every point).
	YMax       float64     `json:"y_max,omitempty"`
	Lines      []Line      `json:"lines,omitempty"`
	Groups     []string    `json:"groups,omitempty"`
	Bars       []BarSeries `json:"bars,omitempty"`
	References []Reference `json:"references,omitempty"`
}

// Validate reports a chart that cannot be drawn: no data, both kinds, bars that do not fill
// every group, or a stack on a series that is not there.
func (c Chart) Validate() error {
	if c.File == "" {
		return errors.New("chart without a file name")
	}
	if (len(c.Lines) == 0) == (len(c.Bars) == 0) {
		return fmt.Errorf("chart %s: wants either lines or bars", c.File)
	}
	names := map[string]bool{}
	for _, b := range c.Bars {
		if len(b.Values) != len(c.Groups) {
			return fmt.Errorf("chart %s: bar series %q has %d values for %d groups", c.File, b.Name, len(b.Values), len(c.Groups))
		}
		if b.StackOn != "" && !names[b.StackOn] {
			return fmt.Errorf("chart %s: bar series %q stacks on %q, which does not come before it", c.File, b.Name, b.StackOn)
		}
		names[b.Name] = true
	}
	for _, l := range c.Lines {
		if len(l.Points) == 0 {
			return fmt.Errorf("chart %s: line %q has no points", c.File, l.Name)
		}
	}
	return nil
}

// RollingMedian smooths points with the median of a window of n points around each.
func RollingMedian(points []Point, n int) []Point {
	out := make([]Point, len(points))
	for i := range points {
		lo, hi := max(0, i-n/2), min(len(points), i+n/2+1)
		ys := make([]float64, 0, hi-lo)
		for _, p := range points[lo:hi] {
			ys = append(ys, p.Y)
		}
		out[i] = Point{X: points[i].X, Y: Median(ys)}
	}
	return out
}
