package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestRunDrawsEveryKindOfChart(t *testing.T) {
	charts := []chart{
		{File: "lines.png", Title: "t", XLabel: "x", YLabel: "y", LogY: true, Lines: []line{
			{Name: "agent", Role: "agent", Points: []point{{1, 20}, {2, 25}, {3, 30}}},
			{Name: "peer", Role: "ovs-cni", Points: []point{{1, 600}, {2, 610}, {3, 0}}, Dashed: true},
			{Name: "raw", Role: "floor", Points: []point{{1, 5}, {2, 6}}, Dots: true}},
			References: []reference{{Name: "target", Y: 50, Role: "target"}}},
		{File: "bars.png", Title: "t", YLabel: "ms", Groups: []string{"a", "b"}, Bars: []barSeries{
			{Name: "floor", Role: "floor", Values: []float64{5, 10}},
			{Name: "+ shim", Role: "shim-alone", Values: []float64{8, 8}, StackOn: "floor"},
			{Name: "agent", Role: "agent", Values: []float64{20, 30}}}},
		{File: "logbars.png", Title: "t", YLabel: "ms", LogY: true, Groups: []string{"a"}, Bars: []barSeries{
			{Name: "agent", Role: "agent", Values: []float64{20}}, {Name: "zero", Role: "exec-floor", Values: []float64{0}},
			{Name: "peer", Role: "ovs-cni", Values: []float64{650}}}},
	}
	dir := t.TempDir()
	data, err := json.Marshal(charts)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "charts.json")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in, dir); err != nil {
		t.Fatalf("run() = %v", err)
	}
	for _, c := range charts {
		f, err := os.Open(filepath.Join(dir, c.File))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.File, err)
		}
		if b := img.Bounds(); b.Dx() < 500 || b.Dy() < 300 {
			t.Errorf("%s is %dx%d", c.File, b.Dx(), b.Dy())
		}
	}
}

func TestRunRefusesAChartWithoutData(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "charts.json")
	if err := os.WriteFile(in, []byte(`[{"file":"empty.png","title":"t"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in, dir); err == nil {
		t.Error("a chart without data was drawn")
	}
}
