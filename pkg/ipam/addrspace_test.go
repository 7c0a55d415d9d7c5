package ipam

import (
	"errors"
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

func testPool(name, gateway string, prefixLength int32, ranges ...v1beta1.IPRange) *v1beta1.IPPool {
	return &v1beta1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.IPPoolSpec{
			IPRanges:   ranges,
			SubnetInfo: v1beta1.SubnetInfo{Gateway: gateway, PrefixLength: prefixLength},
		},
	}
}

func cidr(c string) v1beta1.IPRange          { return v1beta1.IPRange{CIDR: c} }
func span(start, end string) v1beta1.IPRange { return v1beta1.IPRange{Start: start, End: end} }

// allAllocatable walks the space with nextFree, taking every address it returns.
func allAllocatable(t *testing.T, s *poolSpace) []netip.Addr {
	t.Helper()
	taken := map[netip.Addr]bool{}
	var out []netip.Addr
	var cursor netip.Addr
	for {
		a, ok := s.nextFree(cursor, func(a netip.Addr) bool { return taken[a] })
		if !ok {
			return out
		}
		if taken[a] {
			t.Fatalf("nextFree returned %s twice", a)
		}
		taken[a] = true
		out = append(out, a)
		cursor = a
	}
}

func TestPoolSpaceNeverOffersReservedAddresses(t *testing.T) {
	tests := []struct {
		name      string
		pool      *v1beta1.IPPool
		wantFirst string
		wantLast  string
		wantCount int
		forbidden []string
	}{
		{
			name:      "a /29 CIDR equal to the subnet loses network, broadcast and gateway",
			pool:      testPool("p", "10.0.0.1", 29, cidr("10.0.0.0/29")),
			wantFirst: "10.0.0.2", wantLast: "10.0.0.6", wantCount: 5,
			forbidden: []string{"10.0.0.0", "10.0.0.1", "10.0.0.7"},
		},
		{
			name:      "a start/end range holding the gateway skips it",
			pool:      testPool("p", "10.0.1.5", 24, span("10.0.1.3", "10.0.1.7")),
			wantFirst: "10.0.1.3", wantLast: "10.0.1.7", wantCount: 4,
			forbidden: []string{"10.0.1.5"},
		},
		{
			name:      "a start/end range covering the whole subnet skips network and broadcast",
			pool:      testPool("p", "10.0.2.1", 30, span("10.0.2.0", "10.0.2.3")),
			wantFirst: "10.0.2.2", wantLast: "10.0.2.2", wantCount: 1,
			forbidden: []string{"10.0.2.0", "10.0.2.1", "10.0.2.3"},
		},
		{
			name:      "an IPv6 CIDR skips the subnet-router anycast address and the gateway",
			pool:      testPool("p", "fd00::1", 120, cidr("fd00::/125")),
			wantFirst: "fd00::2", wantLast: "fd00::7", wantCount: 6,
			forbidden: []string{"fd00::", "fd00::1"},
		},
		{
			name:      "several ranges are offered in address order",
			pool:      testPool("p", "10.0.3.1", 24, span("10.0.3.20", "10.0.3.21"), span("10.0.3.10", "10.0.3.11")),
			wantFirst: "10.0.3.10", wantLast: "10.0.3.21", wantCount: 4,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := newPoolSpace(tc.pool)
			if err != nil {
				t.Fatalf("newPoolSpace: %v", err)
			}
			got := allAllocatable(t, s)
			if len(got) != tc.wantCount || s.total != tc.wantCount {
				t.Fatalf("offered %d addresses %v, total %d; want %d", len(got), got, s.total, tc.wantCount)
			}
			if got[0].String() != tc.wantFirst || got[len(got)-1].String() != tc.wantLast {
				t.Errorf("offered %s..%s, want %s..%s", got[0], got[len(got)-1], tc.wantFirst, tc.wantLast)
			}
			for _, f := range tc.forbidden {
				for _, a := range got {
					if a.String() == f {
						t.Errorf("offered reserved address %s", f)
					}
				}
			}
		})
	}
}

func TestPoolSpaceNextFreeWrapsAround(t *testing.T) {
	s, err := newPoolSpace(testPool("p", "10.0.0.1", 24, span("10.0.0.10", "10.0.0.12"), span("10.0.0.20", "10.0.0.21")))
	if err != nil {
		t.Fatal(err)
	}
	none := func(netip.Addr) bool { return false }
	tests := []struct {
		name  string
		after string
		taken []string
		want  string
	}{
		{name: "no cursor starts at the first address", after: "", want: "10.0.0.10"},
		{name: "the cursor inside a range continues after it", after: "10.0.0.10", want: "10.0.0.11"},
		{name: "the end of a range moves on to the next range", after: "10.0.0.12", want: "10.0.0.20"},
		{name: "a cursor in a gap starts at the next range", after: "10.0.0.15", want: "10.0.0.20"},
		{name: "the last address wraps to the first", after: "10.0.0.21", want: "10.0.0.10"},
		{name: "taken addresses are skipped across the wrap", after: "10.0.0.20", taken: []string{"10.0.0.21", "10.0.0.10"}, want: "10.0.0.11"},
		{name: "the cursor itself is offered last", after: "10.0.0.11",
			taken: []string{"10.0.0.12", "10.0.0.20", "10.0.0.21", "10.0.0.10"}, want: "10.0.0.11"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var after netip.Addr
			if tc.after != "" {
				after = netip.MustParseAddr(tc.after)
			}
			taken := none
			if tc.taken != nil {
				set := map[netip.Addr]bool{}
				for _, a := range tc.taken {
					set[netip.MustParseAddr(a)] = true
				}
				taken = func(a netip.Addr) bool { return set[a] }
			}
			got, ok := s.nextFree(after, taken)
			if !ok || got.String() != tc.want {
				t.Fatalf("nextFree(%s) = %s, %v; want %s", tc.after, got, ok, tc.want)
			}
		})
	}
}

func TestPoolSpaceRejectsUnusablePools(t *testing.T) {
	tests := []struct {
		name string
		pool *v1beta1.IPPool
	}{
		{name: "a gateway that is not an address", pool: testPool("bad-gw", "10.0.0.x", 24, cidr("10.0.0.0/28"))},
		{name: "a range outside the subnet", pool: testPool("outside", "10.0.0.1", 24, cidr("10.0.1.0/28"))},
		{name: "a range of the other family", pool: testPool("mixed", "10.0.0.1", 24, cidr("fd00::/120"))},
		{name: "no ranges", pool: testPool("empty", "10.0.0.1", 24)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newPoolSpace(tc.pool)
			var invalid *InvalidPoolError
			if !errors.As(err, &invalid) || invalid.Pool != tc.pool.Name {
				t.Fatalf("got %v; want an InvalidPoolError naming %q", err, tc.pool.Name)
			}
		})
	}
}

func TestPoolSpaceOfLargeIPv6RangeIsSaturated(t *testing.T) {
	s, err := newPoolSpace(testPool("big", "fd00::1", 64, cidr("fd00::/64")))
	if err != nil {
		t.Fatal(err)
	}
	if s.total <= 1<<30 {
		t.Fatalf("total %d for a /64; want a saturated large count", s.total)
	}
	if a, ok := s.nextFree(netip.Addr{}, func(netip.Addr) bool { return false }); !ok || a.String() != "fd00::2" {
		t.Fatalf("first address %s; want fd00::2", a)
	}
}
