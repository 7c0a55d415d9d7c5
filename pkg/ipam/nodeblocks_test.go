package ipam

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/podvlan/podvlan/pkg/client/informers/externalversions"
)

// TestConcurrentRequestsOfANodeNeverFindAPoolWithFreeBlocksExhausted is the IPAM bench's fill in
// small: a Node's requests run at once, a claim takes an API round trip, and the requests that
// find a free address take a block's addresses before a request that waited for the claim gets to
// them. Every request must still get an address while the pool has blocks left (two find-or-claim
// rounds called such a pool exhausted: 34 to 48 of 6,000 requests in the bench).
func TestConcurrentRequestsOfANodeNeverFindAPoolWithFreeBlocksExhausted(t *testing.T) {
	pool := testPool("busy", "10.2.0.1", 16, cidr("10.2.0.0/16"))
	api := newFakeAPI(t, pool)
	api.PrependReactor("create", "ippoolblocks", func(k8stesting.Action) (bool, runtime.Object, error) {
		time.Sleep(5 * time.Millisecond) // the API server's round trip; the tracker then stores it
		return false, nil, nil
	})
	factory := externalversions.NewSharedInformerFactory(api, 0)
	a, err := NewAllocator(api, factory.Crd().V1beta1().IPPools(), Options{
		NodeName: "node-a", StateDir: t.TempDir(), ReleasedHold: -1, BlockSize: 16,
		Blocks: factory.Crd().V1beta1().IPPoolBlocks(), BlockSyncDelay: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer func() { cancel(); factory.Shutdown() }()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	// As the agent's callers: a fixed number of requests in flight, each followed at once by the
	// next, so that requests which do not wait for a claim keep taking the addresses.
	const inFlight, each = 16, 64
	var wg sync.WaitGroup
	errs := make([]error, inFlight*each)
	for w := range inFlight {
		wg.Go(func() {
			for i := range each {
				_, errs[w*each+i] = a.Allocate(ctx, request(fmt.Sprintf("c-%d-%d", w, i), "busy"))
			}
		})
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		var ex *PoolExhaustedError
		if err != nil {
			failed++
			if failed <= 3 || !errors.As(err, &ex) {
				t.Errorf("request %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed, on a pool whose blocks are mostly unclaimed", failed, len(errs))
	}
}
