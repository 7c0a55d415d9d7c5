package benchharness

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// Colors of the charts.
var (
	ColorFloor  = color.RGBA{0x4c, 0x72, 0xb0, 0xff}
	ColorAgent  = color.RGBA{0xdd, 0x84, 0x52, 0xff}
	ColorAgent2 = color.RGBA{0x55, 0xa8, 0x68, 0xff}
	ColorAgent3 = color.RGBA{0x81, 0x72, 0xb3, 0xff}
	ColorAgent4 = color.RGBA{0xc4, 0x4e, 0x52, 0xff}
	ColorTarget = color.RGBA{0xc0, 0x00, 0x00, 0xff}
	colorAxis   = color.RGBA{0x30, 0x30, 0x30, 0xff}
	colorGrid   = color.RGBA{0xe4, 0xe4, 0xe4, 0xff}
	colorText   = color.RGBA{0x20, 0x20, 0x20, 0xff}
	colorBG     = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

// Point is one (x, y) of a series.
type Point struct{ X, Y float64 }

// Series is one line (and/or dots) of a line chart.
type Series struct {
	Name   string
	Color  color.RGBA
	Points []Point
	Line   bool // connect the points
	Dots   bool // mark each point
	Faint  bool // draw in a lighter shade (raw samples behind a smoothed line)
}

// Reference is a horizontal line across a chart, such as a target.
type Reference struct {
	Name  string
	Y     float64
	Color color.RGBA
}

// LineChart describes a chart of series against a numeric x axis.
type LineChart struct {
	Title, XLabel, YLabel string
	// YMax caps the y axis (points above it are drawn at the top); 0 fits every point.
	YMax       float64
	Series     []Series
	References []Reference
}

// Segment is one part of a stacked bar.
type Segment struct {
	Name  string
	Value float64
	Color color.RGBA
}

// Bar is a stacked bar; Label goes under it, and the total above it.
type Bar struct {
	Label    string
	Segments []Segment
}

// BarGroup is bars side by side under a group label.
type BarGroup struct {
	Label string
	Bars  []Bar
}

// BarChart describes a chart of grouped, stacked bars.
type BarChart struct {
	Title, YLabel string
	Groups        []BarGroup
	References    []Reference
	// Unit is appended to the totals printed above the bars.
	Unit string
	// LogY draws the y axis in powers of ten, for values spanning several of them (bars should
	// then have one segment each).
	LogY bool
}

const (
	chartW, chartH                     = 1000, 560
	marginL, marginR, marginT, marginB = 90, 30, 60, 90
	textScale                          = 2
)

type canvas struct {
	img                    *image.RGBA
	x0, y0, x1, y1         int // plot area, y0 the top
	minX, maxX, minY, maxY float64
	// logY: minY and maxY are powers of ten and py maps log10 of the value.
	logY bool
}

func newCanvas(title string) *canvas {
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	fillRect(img, 0, 0, chartW, chartH, colorBG)
	drawText(img, (chartW-textWidth(title, textScale))/2, 18, title, textScale, colorText)
	return &canvas{img: img, x0: marginL, y0: marginT, x1: chartW - marginR, y1: chartH - marginB}
}

func (c *canvas) px(x float64) int {
	return c.x0 + int(math.Round((x-c.minX)/(c.maxX-c.minX)*float64(c.x1-c.x0)))
}

func (c *canvas) py(y float64) int {
	lo, hi := c.minY, c.maxY
	if c.logY {
		y, lo, hi = math.Log10(math.Max(y, c.minY)), math.Log10(lo), math.Log10(hi)
	}
	return c.y1 - int(math.Round((y-lo)/(hi-lo)*float64(c.y1-c.y0)))
}

func (c *canvas) yTicks() []float64 {
	if !c.logY {
		return niceTicks(c.minY, c.maxY)
	}
	var out []float64
	for t := c.minY; t <= c.maxY*1.0001; t *= 10 {
		out = append(out, t)
	}
	return out
}

// yAxis draws the grid, the y ticks and the y label.
func (c *canvas) yAxis(label string) {
	for _, t := range c.yTicks() {
		y := c.py(t)
		line(c.img, c.x0, y, c.x1, y, colorGrid, 1)
		s := formatTick(t)
		drawText(c.img, c.x0-8-textWidth(s, textScale), y-7, s, textScale, colorText)
	}
	line(c.img, c.x0, c.y0, c.x0, c.y1, colorAxis, 2)
	line(c.img, c.x0, c.y1, c.x1, c.y1, colorAxis, 2)
	drawTextUp(c.img, 12, (c.y0+c.y1)/2+textWidth(label, textScale)/2, label, textScale, colorText)
}

func (c *canvas) references(refs []Reference) {
	for _, r := range refs {
		if r.Y < c.minY || r.Y > c.maxY {
			continue
		}
		y := c.py(r.Y)
		for x := c.x0; x < c.x1; x += 14 {
			line(c.img, x, y, min(x+8, c.x1), y, r.Color, 2)
		}
		drawText(c.img, c.x1-textWidth(r.Name, textScale)-4, y-18, r.Name, textScale, r.Color)
	}
}

func (c *canvas) legend(names []string, colors []color.RGBA) {
	x, y := c.x0+16, c.y0+10
	for i, n := range names {
		fillRect(c.img, x, y+2, 18, 10, colors[i])
		drawText(c.img, x+26, y, n, textScale, colorText)
		y += 22
	}
}

func (c *canvas) save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, c.img); err != nil {
		f.Close()
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return f.Close()
}

// Render draws the line chart into a PNG file.
func (lc LineChart) Render(path string) error {
	c := newCanvas(lc.Title)
	c.minX, c.maxX = math.Inf(1), math.Inf(-1)
	c.maxY = 0
	for _, s := range lc.Series {
		for _, p := range s.Points {
			c.minX, c.maxX = math.Min(c.minX, p.X), math.Max(c.maxX, p.X)
			c.maxY = math.Max(c.maxY, p.Y)
		}
	}
	for _, r := range lc.References {
		c.maxY = math.Max(c.maxY, r.Y)
	}
	if math.IsInf(c.minX, 1) || c.maxX == c.minX {
		return fmt.Errorf("chart %q has no data to draw", lc.Title)
	}
	if lc.YMax > 0 {
		c.maxY = lc.YMax
	}
	c.maxY = niceMax(c.maxY)
	c.yAxis(lc.YLabel)
	for _, t := range niceTicks(c.minX, c.maxX) {
		x := c.px(t)
		line(c.img, x, c.y1, x, c.y1+6, colorAxis, 2)
		s := formatTick(t)
		drawText(c.img, x-textWidth(s, textScale)/2, c.y1+12, s, textScale, colorText)
	}
	drawText(c.img, (c.x0+c.x1-textWidth(lc.XLabel, textScale))/2, c.y1+44, lc.XLabel, textScale, colorText)
	var names []string
	var colors []color.RGBA
	for _, s := range lc.Series {
		col := s.Color
		if s.Faint {
			col = lighten(col)
		}
		for i, p := range s.Points {
			x, y := c.px(p.X), c.py(math.Min(p.Y, c.maxY))
			if s.Dots {
				fillRect(c.img, x-2, y-2, 4, 4, col)
			}
			if s.Line && i > 0 {
				q := s.Points[i-1]
				line(c.img, c.px(q.X), c.py(math.Min(q.Y, c.maxY)), x, y, col, 3)
			}
		}
		if s.Name != "" {
			names, colors = append(names, s.Name), append(colors, s.Color)
		}
	}
	c.references(lc.References)
	c.legend(names, colors)
	return c.save(path)
}

// Render draws the bar chart into a PNG file.
func (bc BarChart) Render(path string) error {
	c := newCanvas(bc.Title)
	c.minX, c.maxX = 0, 1
	var bars int
	for _, g := range bc.Groups {
		bars += len(g.Bars)
		for _, b := range g.Bars {
			c.maxY = math.Max(c.maxY, total(b))
		}
	}
	for _, r := range bc.References {
		c.maxY = math.Max(c.maxY, r.Y)
	}
	if bars == 0 {
		return fmt.Errorf("chart %q has no bars", bc.Title)
	}
	if bc.LogY {
		c.logY = true
		lowest := c.maxY
		for _, g := range bc.Groups {
			for _, b := range g.Bars {
				if t := total(b); t > 0 {
					lowest = math.Min(lowest, t)
				}
			}
		}
		for _, r := range bc.References {
			if r.Y > 0 {
				lowest = math.Min(lowest, r.Y)
			}
		}
		c.minY = math.Pow(10, math.Floor(math.Log10(lowest)))
		c.maxY = math.Pow(10, math.Ceil(math.Log10(c.maxY*1.5)))
	} else {
		// Room above the bars for the legend in the top left corner.
		legendLines := map[string]bool{}
		for _, g := range bc.Groups {
			for _, b := range g.Bars {
				for _, s := range b.Segments {
					legendLines[s.Name] = true
				}
			}
		}
		c.maxY = niceMax(c.maxY * (1.1 + 0.08*float64(len(legendLines))))
	}
	c.yAxis(bc.YLabel)
	// Each bar is one slot wide; groups are a slot apart.
	slots := bars + len(bc.Groups) + 1
	slot := float64(c.x1-c.x0) / float64(slots)
	pos := 1.0
	var names []string
	var colors []color.RGBA
	seen := map[string]bool{}
	for _, g := range bc.Groups {
		start := pos
		for _, b := range g.Bars {
			x := c.x0 + int(pos*slot)
			w := int(slot * 0.8)
			base := c.minY
			if !c.logY {
				base = 0
			}
			for _, s := range b.Segments {
				next := base + s.Value
				if c.logY {
					next = math.Max(s.Value, c.minY)
				}
				top := c.py(next)
				fillRect(c.img, x, top, w, c.py(base)-top, s.Color)
				base = next
				if s.Name != "" && !seen[s.Name] {
					seen[s.Name] = true
					names, colors = append(names, s.Name), append(colors, s.Color)
				}
			}
			v := formatValue(base) + bc.Unit
			drawText(c.img, x+w/2-textWidth(v, textScale)/2, c.py(base)-18, v, textScale, colorText)
			drawText(c.img, x+w/2-textWidth(b.Label, textScale)/2, c.y1+10, b.Label, textScale, colorText)
			pos++
		}
		mid := c.x0 + int((start+pos)/2*slot) - int(slot*0.1)
		drawText(c.img, mid-textWidth(g.Label, textScale)/2, c.y1+40, g.Label, textScale, colorText)
		pos++
	}
	c.references(bc.References)
	c.legend(names, colors)
	return c.save(path)
}

func total(b Bar) float64 {
	t := 0.0
	for _, s := range b.Segments {
		t += s.Value
	}
	return t
}

// niceMax rounds v up to a round multiple (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8) of a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// niceTicks returns about five round tick values from lo to hi.
func niceTicks(lo, hi float64) []float64 {
	step := niceMax((hi - lo) / 5)
	var out []float64
	// Multiples of step, not repeated additions, which would drift (0.2+0.2+0.2 is not 0.6).
	for k := math.Ceil(lo / step); k*step <= hi+step*1e-9; k++ {
		out = append(out, k*step)
	}
	return out
}

// formatTick writes a tick value without the binary rounding noise of its last digits.
func formatTick(v float64) string { return strconv.FormatFloat(math.Round(v*1e9)/1e9, 'f', -1, 64) }

func formatValue(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func lighten(c color.RGBA) color.RGBA {
	mix := func(v uint8) uint8 { return uint8((int(v) + 255) / 2) }
	return color.RGBA{mix(c.R), mix(c.G), mix(c.B), 0xff}
}

// line draws a line of the given thickness (Bresenham, with a square pen).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color, width int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		fillRect(img, x0-width/2, y0-width/2, width, width, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
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
