package benchharness

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/podvlan/podvlan/internal/teststack"
)

// ForEach calls f for 0..n-1 with at most workers calls at a time (all at once when workers <= 0)
// and returns every error, joined.
func ForEach(ctx context.Context, n, workers int, f func(i int) error) error {
	if workers <= 0 || workers > n {
		workers = n
	}
	next := make(chan int)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				errs[i] = f(i)
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			continue
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// Sandboxes makes n sandboxes for Pods named prefix-NNN on node, each asking for networks, with
// workers at a time, registering their namespaces' removal on cleanup.
func (c *Cluster) Sandboxes(ctx context.Context, cleanup *Cleanup, node, namespace, prefix, networks string, n int) ([]*Sandbox, error) {
	out := make([]*Sandbox, n)
	var mu sync.Mutex
	err := ForEach(ctx, n, 8, func(i int) error {
		sb, err := c.NewSandbox(ctx, node, namespace, fmt.Sprintf("%s-%04d", prefix, i), networks)
		if err != nil {
			return err
		}
		out[i] = sb
		mu.Lock()
		cleanup.Add(func() { DeleteNetNS(context.Background(), sb.NetNS) })
		mu.Unlock()
		return nil
	})
	return out, err
}

// PodNetNSes makes n bare sandbox namespaces named prefix<random> (for the floor).
func PodNetNSes(ctx context.Context, cleanup *Cleanup, prefix string, n int) ([]string, error) {
	out := make([]string, n)
	var mu sync.Mutex
	err := ForEach(ctx, n, 8, func(i int) error {
		name := UniqueName(prefix)
		if err := teststack.NewPodNetNS(ctx, name); err != nil {
			return err
		}
		out[i] = name
		mu.Lock()
		cleanup.Add(func() { DeleteNetNS(context.Background(), name) })
		mu.Unlock()
		return nil
	})
	return out, err
}
