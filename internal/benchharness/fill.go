package benchharness

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Completion is one request of a fill: when it finished and how long it took.
type Completion struct {
	At      time.Time
	Latency time.Duration
	Err     error
}

// Fill issues total requests from nodes Nodes with at most inFlight outstanding per Node (as
// many kubelets each running a handful of sandboxes at once), until every request is issued or
// budget has passed since the start, and returns the completions in the order they finished.
// do gets the Node's index and the request's.
func Fill(ctx context.Context, nodes, inFlight, total int, budget time.Duration, do func(node, i int) error) (time.Time, []Completion, bool) {
	var (
		next    atomic.Int64
		stopped atomic.Bool
		mu      sync.Mutex
		done    = make([]Completion, 0, total)
		wg      sync.WaitGroup
	)
	start := time.Now()
	for w := range nodes * inFlight {
		node := w / inFlight
		wg.Go(func() {
			for ctx.Err() == nil {
				if time.Since(start) > budget {
					stopped.Store(true)
					return
				}
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				t0 := time.Now()
				err := do(node, i)
				now := time.Now()
				mu.Lock()
				done = append(done, Completion{At: now, Latency: now.Sub(t0), Err: err})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return start, done, stopped.Load() && len(done) < total
}

// FillBands splits completions (in the order they finished) into bands of size: band k holds
// the (k*size+1)-th to the ((k+1)*size)-th completion, its time runs from the previous band's
// last completion (or start) to its own last, and its latencies are its requests'. A last,
// partial band is kept. Failed requests count in their band like the others.
func FillBands(start time.Time, done []Completion, size int) []IPAMBand {
	var bands []IPAMBand
	from := start
	for lo := 0; lo < len(done); lo += size {
		hi := min(lo+size, len(done))
		lat := make([]time.Duration, 0, hi-lo)
		for _, c := range done[lo:hi] {
			lat = append(lat, c.Latency)
		}
		end := done[hi-1].At
		secs := end.Sub(from).Seconds()
		b := IPAMBand{From: lo, To: hi, Seconds: round2(secs), Latency: Summarize(lat)}
		if secs > 0 {
			b.AllocsPerSec = round2(float64(hi-lo) / secs)
		}
		bands = append(bands, b)
		from = end
	}
	return bands
}
