package benchharness

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNiceMaxRoundsUpToARoundValue(t *testing.T) {
	tests := []struct{ in, want float64 }{
		{0, 1}, {0.7, 0.8}, {1, 1}, {3.68, 4}, {5.2, 6}, {97, 100}, {101, 150}, {7523, 8000},
	}
	for _, tt := range tests {
		if got := niceMax(tt.in); got != tt.want {
			t.Errorf("niceMax(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestChartsRenderAsPNG(t *testing.T) {
	dir := t.TempDir()
	points := []Point{{1, 5}, {2, 7}, {3, 6}, {4, 30}}
	charts := map[string]interface{ Render(string) error }{
		"line.png": LineChart{Title: "t", XLabel: "x", YLabel: "y", YMax: 10,
			Series:     []Series{{Name: "s", Color: ColorAgent, Points: points, Line: true, Dots: true}},
			References: []Reference{{Name: "target", Y: 8, Color: ColorTarget}}},
		"bars.png": BarChart{Title: "t", YLabel: "y", Groups: []BarGroup{{Label: "g", Bars: []Bar{
			{Label: "a", Segments: []Segment{{Name: "one", Value: 2, Color: ColorFloor}, {Name: "two", Value: 3, Color: ColorAgent}}}}}}},
		"log.png": BarChart{Title: "t", YLabel: "y", LogY: true, Groups: []BarGroup{{Label: "g", Bars: []Bar{
			{Label: "a", Segments: []Segment{{Name: "n", Value: 7523, Color: ColorAgent}}},
			{Label: "b", Segments: []Segment{{Name: "m", Value: 56, Color: ColorAgent2}}}}}}},
	}
	for name, c := range charts {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := c.Render(path); err != nil {
				t.Fatalf("Render() = %v", err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatalf("decode %s: %v", name, err)
			}
			if b := img.Bounds(); b.Dx() != chartW || b.Dy() != chartH {
				t.Errorf("%s is %dx%d, want %dx%d", name, b.Dx(), b.Dy(), chartW, chartH)
			}
		})
	}
}

func TestChartsWithoutDataAreRefused(t *testing.T) {
	dir := t.TempDir()
	if err := (LineChart{Title: "empty"}).Render(filepath.Join(dir, "a.png")); err == nil {
		t.Error("a line chart without points rendered")
	}
	if err := (BarChart{Title: "empty"}).Render(filepath.Join(dir, "b.png")); err == nil {
		t.Error("a bar chart without bars rendered")
	}
}

func TestTicksAreRoundNumbers(t *testing.T) {
	var got []string
	for _, v := range niceTicks(0, 0.9) {
		got = append(got, formatTick(v))
	}
	if want := "0 0.2 0.4 0.6 0.8"; strings.Join(got, " ") != want {
		t.Errorf("ticks of 0..0.9 = %v, want %s", got, want)
	}
}
