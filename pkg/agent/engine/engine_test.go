package engine

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/ipam"
)

func TestKeyedMutexSerializesOneKeyOnly(t *testing.T) {
	var k keyedMutex
	var inA atomic.Int32
	var maxA atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			unlock := k.lock("a")
			n := inA.Add(1)
			if n > maxA.Load() {
				maxA.Store(n)
			}
			time.Sleep(2 * time.Millisecond)
			inA.Add(-1)
			unlock()
		})
	}
	// Another key is not blocked by "a".
	unlockA := k.lock("a")
	done := make(chan struct{})
	go func() { k.lock("b")(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("key b waited for key a")
	}
	unlockA()
	wg.Wait()
	if maxA.Load() != 1 {
		t.Errorf("%d holders of key a at once", maxA.Load())
	}
	if len(k.locks) != 0 {
		t.Errorf("%d keys remembered after every holder left", len(k.locks))
	}
}

func TestDescribe(t *testing.T) {
	got := Describe([]Attached{
		{Attachment: plan.Attachment{Network: "ns/vlan100", IfName: "eth1", VLAN: 100},
			Addressing: plan.Addressing{IPs: []ipam.IPConfig{{Address: netip.MustParsePrefix("10.1.0.5/24")}}}},
		{Attachment: plan.Attachment{Network: "ns/raw", IfName: "eth2"}},
	})
	want := "attached eth1 10.1.0.5/24 (ns/vlan100, VLAN 100); eth2 no address (ns/raw, VLAN 0)"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
