package benchharness

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestFillBandsSplitsCompletionsInOrder(t *testing.T) {
	start := time.Unix(1000, 0)
	var done []Completion
	// 5 completions one second apart, each taking 100 ms; bands of 2.
	for i := range 5 {
		done = append(done, Completion{At: start.Add(time.Duration(i+1) * time.Second), Latency: 100 * time.Millisecond})
	}
	bands := FillBands(start, done, 2)
	if len(bands) != 3 {
		t.Fatalf("got %d bands, want 3: %+v", len(bands), bands)
	}
	want := []IPAMBand{{From: 0, To: 2, Seconds: 2, AllocsPerSec: 1}, {From: 2, To: 4, Seconds: 2, AllocsPerSec: 1},
		{From: 4, To: 5, Seconds: 1, AllocsPerSec: 1}}
	for i, b := range bands {
		if b.From != want[i].From || b.To != want[i].To || b.Seconds != want[i].Seconds || b.AllocsPerSec != want[i].AllocsPerSec {
			t.Errorf("band %d = %+v, want %+v", i, b, want[i])
		}
		if b.Latency.P99 != 100 {
			t.Errorf("band %d p99 = %v ms, want 100", i, b.Latency.P99)
		}
	}
}

func TestFillKeepsInFlightPerNodeAndStopsAtBudget(t *testing.T) {
	var outstanding [3]atomic.Int32
	var worst atomic.Int32
	_, done, stopped := Fill(context.Background(), 3, 2, 60, time.Minute, func(node, i int) error {
		n := outstanding[node].Add(1)
		for {
			w := worst.Load()
			if n <= w || worst.CompareAndSwap(w, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		outstanding[node].Add(-1)
		return nil
	})
	if len(done) != 60 || stopped {
		t.Fatalf("got %d completions (stopped %v), want 60", len(done), stopped)
	}
	if worst.Load() > 2 {
		t.Errorf("a Node had %d requests in flight, want at most 2", worst.Load())
	}
	_, done, stopped = Fill(context.Background(), 1, 1, 1000, 20*time.Millisecond, func(node, i int) error {
		time.Sleep(5 * time.Millisecond)
		return nil
	})
	if !stopped || len(done) >= 1000 {
		t.Errorf("a fill past its budget made %d requests (stopped %v)", len(done), stopped)
	}
}
