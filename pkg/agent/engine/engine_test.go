package engine

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podvlan/podvlan/pkg/cni/netconf"
	"github.com/podvlan/podvlan/pkg/ipam"
)

func TestKernelAddressesRoutesUseTheGatewayOfTheirFamily(t *testing.T) {
	ips := []ipam.IPConfig{
		{Address: netip.MustParsePrefix("10.1.0.5/24"), Gateway: netip.MustParseAddr("10.1.0.1")},
		{Address: netip.MustParsePrefix("fd00::5/64"), Gateway: netip.MustParseAddr("fd00::1")},
	}
	routes := []netconf.Route{
		{Dst: netip.MustParsePrefix("192.0.2.0/24")},
		{Dst: netip.MustParsePrefix("2001:db8::/32")},
		{Dst: netip.MustParsePrefix("198.51.100.0/24"), GW: netip.MustParseAddr("10.1.0.9")},
	}
	addrs, rs := kernelAddresses(ips, routes)
	if len(addrs) != 2 || addrs[0].Address.String() != "10.1.0.5/24" || addrs[0].Gateway.String() != "10.1.0.1" ||
		addrs[1].Address.String() != "fd00::5/64" {
		t.Errorf("addresses %+v", addrs)
	}
	want := []string{"192.0.2.0/24 via 10.1.0.1", "2001:db8::/32 via fd00::1", "198.51.100.0/24 via 10.1.0.9"}
	for i, r := range rs {
		if got := r.Dst.String() + " via " + r.GW.String(); got != want[i] {
			t.Errorf("route %d: %s, want %s", i, got, want[i])
		}
	}
}

func TestKernelAddressesRouteWithoutGatewayStaysOnLink(t *testing.T) {
	_, rs := kernelAddresses(nil, []netconf.Route{{Dst: netip.MustParsePrefix("192.0.2.0/24")}})
	if len(rs) != 1 || rs[0].GW != nil {
		t.Errorf("routes %+v, want one without gateway", rs)
	}
}

func TestParseAddressesRejectsGarbage(t *testing.T) {
	if _, err := parseAddresses([]string{"10.1.0.5/24", "nonsense"}); err == nil {
		t.Error("no error for a malformed recorded address")
	}
	got, err := parseAddresses([]string{"10.1.0.5/24"})
	if err != nil || len(got) != 1 || got[0].Address.String() != "10.1.0.5/24" {
		t.Errorf("got %+v, %v", got, err)
	}
}

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
	got := Describe([]Attachment{
		{Network: Network{Key: "ns/vlan100", IfName: "eth1"}, VLAN: 100, IPs: []ipam.IPConfig{{Address: netip.MustParsePrefix("10.1.0.5/24")}}},
		{Network: Network{Key: "ns/raw", IfName: "eth2"}},
	})
	want := "attached eth1 10.1.0.5/24 (ns/vlan100, VLAN 100); eth2 no address (ns/raw, VLAN 0)"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
