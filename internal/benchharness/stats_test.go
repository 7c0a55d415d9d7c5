package benchharness

import (
	"testing"
	"time"
)

func TestPercentileIsTheNearestRank(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"p50 of 1..100 is 50", hundred, 50, 50},
		{"p99 of 1..100 is 99", hundred, 99, 99},
		{"p100 is the largest", hundred, 100, 100},
		{"p99 of three values is the largest", []float64{1, 2, 3}, 99, 3},
		{"p50 of two values is the lower", []float64{1, 2}, 50, 1},
		{"no values gives zero", nil, 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarizeSortsAndConvertsToMilliseconds(t *testing.T) {
	got := Summarize([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond})
	want := Stats{N: 3, P50: 2, P99: 3, Max: 3, Mean: 2}
	if got != want {
		t.Errorf("Summarize() = %+v, want %+v", got, want)
	}
}

func TestTargetVerdicts(t *testing.T) {
	tests := []struct {
		name   string
		target Target
		want   string
	}{
		{"at the limit passes", NewTarget("b", "t", 1.2, 1.2, "x floor", ""), "PASS"},
		{"above a maximum misses by the factor", NewTarget("b", "t", 1.8, 1.2, "x floor", ""), "MISS by 1.50x"},
		{"above a limit of 0 misses by the excess", NewTarget("b", "t", 3, 0, "failures", ""), "MISS by 3"},
		{"above a minimum passes", NewMinimumTarget("b", "t", 151, 150, "/s", ""), "PASS"},
		{"below a minimum misses by the factor", NewMinimumTarget("b", "t", 75, 150, "/s", ""), "MISS by 2.00x"},
		{"no value misses", NewMinimumTarget("b", "t", 0, 150, "/s", ""), "MISS (no value)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.target.Verdict(); got != tt.want {
				t.Errorf("Verdict() = %s, want %s", got, tt.want)
			}
		})
	}
}
