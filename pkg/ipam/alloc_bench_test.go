package ipam

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/podvlan/podvlan/pkg/client/informers/externalversions"
)

// BenchmarkAllocateInsideTheNodesBlocks measures the steady-state ADD-path cost of an allocation
// with address blocks on: the Node's blocks have room, so a request takes an address, writes the
// Node's block record and answers, with no API call. Blocks are claimed from a fake API (64
// addresses each, one claim per 64 allocations); each allocation is released again so the
// benchmark runs at a constant pool size.
func BenchmarkAllocateInsideTheNodesBlocks(b *testing.B) {
	pool := testPool("bench", "10.1.0.1", 16, cidr("10.1.0.0/16"))
	api := newFakeAPI(b, pool)
	factory := externalversions.NewSharedInformerFactory(api, 0)
	a, err := NewAllocator(api, factory.Crd().V1beta1().IPPools(), Options{
		NodeName: "bench-node", StateDir: stateDir(b), ReleasedHold: -1,
		Blocks: factory.Crd().V1beta1().IPPoolBlocks(), BlockSyncDelay: time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); factory.Shutdown() }()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	// Warm up: the first request loads the records and claims the first block.
	for i := range 200 {
		if _, err := a.Allocate(ctx, request(fmt.Sprintf("warm-%d", i), "bench")); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := request(fmt.Sprintf("c-%d", i), "bench")
		if _, err := a.Allocate(ctx, req); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := a.Release(ctx, req.Owner); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func stateDir(b *testing.B) string {
	if d := os.Getenv("BENCH_STATE_PARENT"); d != "" {
		dir, err := os.MkdirTemp(d, "bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}
