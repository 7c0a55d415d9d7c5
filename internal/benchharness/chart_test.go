package benchharness

import "testing"

func TestChartValidate(t *testing.T) {
	line := []Line{{Name: "a", Role: RoleAgent, Points: []Point{{1, 2}}}}
	tests := []struct {
		name  string
		chart Chart
		ok    bool
	}{
		{"lines", Chart{File: "a.png", Lines: line}, true},
		{"stacked bars", Chart{File: "b.png", Groups: []string{"g1", "g2"}, Bars: []BarSeries{
			{Name: "x", Values: []float64{1, 2}}, {Name: "y", Values: []float64{3, 4}, StackOn: "x"}}}, true},
		{"no file", Chart{Lines: line}, false},
		{"no data", Chart{File: "c.png"}, false},
		{"both kinds", Chart{File: "d.png", Lines: line, Groups: []string{"g"}, Bars: []BarSeries{{Name: "x", Values: []float64{1}}}}, false},
		{"short bars", Chart{File: "e.png", Groups: []string{"g1", "g2"}, Bars: []BarSeries{{Name: "x", Values: []float64{1}}}}, false},
		{"stack on later series", Chart{File: "f.png", Groups: []string{"g"}, Bars: []BarSeries{
			{Name: "y", Values: []float64{1}, StackOn: "x"}, {Name: "x", Values: []float64{1}}}}, false},
		{"empty line", Chart{File: "g.png", Lines: []Line{{Name: "a"}}}, false},
	}
	for _, tt := range tests {
		if err := tt.chart.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestRollingMedianSmoothsAnOutlier(t *testing.T) {
	got := RollingMedian([]Point{{1, 5}, {2, 5}, {3, 50}, {4, 5}, {5, 5}}, 3)
	for _, p := range got {
		if p.Y != 5 {
			t.Fatalf("RollingMedian = %v, want every y 5", got)
		}
	}
}
