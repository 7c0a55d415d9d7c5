package ipam

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
)

// TestBlocksRestartReleasesAndReportsWhatTheRecordsSay restarts a Node's allocator on its records,
// as antrea-agent restarts after kill -9, and checks that the new one
//
//   - releases, as its very first operation, an address held before the restart (a DEL that was
//     spooled while the agent was away runs before anything else), and
//   - reports the holders its records have and its IPPoolBlocks' status lacks (an address released
//     just before the kill, whose report was still waiting), without any further change.
func TestBlocksRestartReleasesAndReportsWhatTheRecordsSay(t *testing.T) {
	c := newRealCluster(t)
	pool, _ := c.widePool(t, 22)
	dir := t.TempDir()
	ctx := context.Background()
	const node = "restart-node"
	// Reports of the first allocator wait longer than the test: only FlushBlocks writes them.
	first := c.nodeAllocator(t, node, dir, Options{BlockSyncDelay: time.Hour})
	for _, id := range []string{"kept", "spooled", "unreported"} {
		if _, err := first.Allocate(ctx, Request{Owner: podOwner(id, "eth1"), Pools: []string{pool}}); err != nil {
			t.Fatal(err)
		}
	}
	first.FlushBlocks()
	if err := first.Release(ctx, podOwner("unreported", "eth1")); err != nil {
		t.Fatal(err)
	}
	// The first allocator is abandoned here, as a killed agent is: its last release is recorded
	// on the Node, not reported.

	second := c.nodeAllocator(t, node, dir, Options{BlockSyncDelay: 100 * time.Millisecond})
	if err := second.ReleaseContainer(ctx, "spooled"); err != nil {
		t.Fatalf("first release after the restart: %v", err)
	}
	held, err := second.Allocations(Filter{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	var owners []string
	for _, al := range held {
		owners = append(owners, al.Owner.ContainerID)
	}
	if !slices.Equal(owners, []string{"kept"}) {
		t.Errorf("after the restart and the release the Node holds addresses of %v, want [kept]", owners)
	}
	var reported []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		holders, _ := c.blockHolders(t, pool)
		reported = slices.Sorted(maps.Values(holders))
		if slices.Equal(reported, []string{"kept/eth1"}) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Equal(reported, []string{"kept/eth1"}) {
		t.Errorf("the IPPoolBlocks report holders %v after the restart, want [kept/eth1]", fmt.Sprint(reported))
	}
}
