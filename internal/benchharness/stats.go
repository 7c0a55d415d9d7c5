package benchharness

import (
	"math"
	"slices"
	"time"
)

// Stats summarises a set of durations, in milliseconds.
type Stats struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// Summarize returns the statistics of ds; an empty set yields zeros.
func Summarize(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	ms := make([]float64, len(ds))
	sum := 0.0
	for i, d := range ds {
		ms[i] = Millis(d)
		sum += ms[i]
	}
	slices.Sort(ms)
	return Stats{N: len(ms), P50: Percentile(ms, 50), P99: Percentile(ms, 99), Max: ms[len(ms)-1],
		Mean: round2(sum / float64(len(ms)))}
}

// Percentile returns the p-th percentile of sorted values by the nearest-rank method (the
// smallest value that at least p percent of the values do not exceed).
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Millis is d in milliseconds, rounded to two decimals.
func Millis(d time.Duration) float64 { return round2(float64(d) / float64(time.Millisecond)) }

// Median returns the median of values (the lower middle one for an even count).
func Median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// Ratio is a/b rounded to two decimals, or 0 when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round2(a / b)
}
