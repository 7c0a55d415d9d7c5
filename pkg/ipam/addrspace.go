package ipam

import (
	"net/netip"
	"sort"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/apis/crd/validation"
)

// family is an address family.
type family int

const (
	ipv4 family = 4
	ipv6 family = 6
)

func (f family) String() string {
	if f == ipv4 {
		return "IPv4"
	}
	return "IPv6"
}

func familyOf(a netip.Addr) family {
	if a.Is4() {
		return ipv4
	}
	return ipv6
}

// addrRange is an inclusive range of addresses of one family.
type addrRange struct{ first, last netip.Addr }

// poolSpace is what a pool's spec allows: the merged ranges, the reserved addresses, and the subnet
// data every allocation returns. It is derived from the spec only, so it is cached per generation.
// The rules (what is reserved, how usage.total counts) are those of pkg/apis/crd/validation, shared
// with the admission webhook and the controller.
type poolSpace struct {
	family   family
	gateway  netip.Addr
	subnet   netip.Prefix
	vlan     int
	ranges   []addrRange // sorted by first address, non-overlapping, non-adjacent
	reserved func(netip.Addr) bool
	total    int // status.usage.total
}

// newPoolSpace checks a pool's spec and computes its address space.
func newPoolSpace(pool *v1beta1.IPPool) (*poolSpace, error) {
	p, err := validation.ParsePool(pool)
	if err != nil {
		return nil, &InvalidPoolError{Pool: pool.Name, Reason: err.Error()}
	}
	s := &poolSpace{
		family:   familyOf(p.Subnet.Gateway),
		gateway:  p.Subnet.Gateway,
		subnet:   p.Subnet.Prefix,
		vlan:     p.Subnet.VLAN,
		reserved: p.IsReserved,
		total:    p.UsageTotal(),
	}
	ranges := make([]addrRange, 0, len(p.Ranges))
	for _, r := range p.Ranges {
		ranges = append(ranges, addrRange{first: r.Start, last: r.End})
	}
	s.ranges = mergeRanges(ranges)
	return s, nil
}

func mergeRanges(in []addrRange) []addrRange {
	sort.Slice(in, func(i, j int) bool { return in[i].first.Less(in[j].first) })
	var out []addrRange
	for _, r := range in {
		if n := len(out); n > 0 {
			prev := &out[n-1]
			// Overlapping or adjacent: extend the previous range.
			if next := prev.last.Next(); !next.IsValid() || r.first.Compare(next) <= 0 {
				if r.last.Compare(prev.last) > 0 {
					prev.last = r.last
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// rangeIndex returns the index of the first range whose last address is >= a.
func (s *poolSpace) rangeIndex(a netip.Addr) int {
	return sort.Search(len(s.ranges), func(i int) bool { return s.ranges[i].last.Compare(a) >= 0 })
}

// contains reports whether a lies inside one of the pool's ranges.
func (s *poolSpace) contains(a netip.Addr) bool {
	i := s.rangeIndex(a)
	return i < len(s.ranges) && s.ranges[i].first.Compare(a) <= 0
}

// isReserved reports whether a is one of the addresses never handed out: the subnet's network
// address, its IPv4 broadcast address and the gateway.
func (s *poolSpace) isReserved(a netip.Addr) bool { return s.reserved(a) }

// nextFree returns the first allocatable address after `after` for which taken is false, scanning
// the ranges in order and wrapping around to the first range. An invalid `after`, or one outside
// the ranges, starts the scan at the next range. The scan visits each address at most once.
func (s *poolSpace) nextFree(after netip.Addr, taken func(netip.Addr) bool) (netip.Addr, bool) {
	n := len(s.ranges)
	if n == 0 {
		return netip.Addr{}, false
	}
	start, begin := 0, s.ranges[0].first
	if after.IsValid() && familyOf(after) == s.family {
		i := s.rangeIndex(after)
		switch {
		case i == n: // beyond the last range: wrap
		case s.ranges[i].first.Compare(after) > 0: // in a gap before range i
			start, begin = i, s.ranges[i].first
		case after == s.ranges[i].last:
			start = (i + 1) % n
			begin = s.ranges[start].first
		default:
			start, begin = i, after.Next()
		}
	}
	free := func(a netip.Addr) bool { return !s.isReserved(a) && !taken(a) }
	if a, ok := scan(begin, s.ranges[start].last, free); ok {
		return a, true
	}
	for k := 1; k < n; k++ {
		r := s.ranges[(start+k)%n]
		if a, ok := scan(r.first, r.last, free); ok {
			return a, true
		}
	}
	if first := s.ranges[start].first; first != begin {
		return scan(first, begin.Prev(), free)
	}
	return netip.Addr{}, false
}

// scan returns the first address in [from, to] for which ok is true.
func scan(from, to netip.Addr, ok func(netip.Addr) bool) (netip.Addr, bool) {
	for a := from; a.IsValid() && a.Compare(to) <= 0; a = a.Next() {
		if ok(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}
