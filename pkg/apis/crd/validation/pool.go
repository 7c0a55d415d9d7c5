package validation

import (
	"iter"
	"math"
	"math/big"
	"net/netip"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// Pool is a validated IPPool spec in parsed form, for the allocator.
type Pool struct {
	// Name of the IPPool.
	Name string
	// Subnet is the parsed subnetInfo.
	Subnet Subnet
	// Ranges in spec order; they do not overlap.
	Ranges []Range
}

// ParsePool validates pool's spec and returns it parsed; the error lists every problem.
func ParsePool(pool *v1beta1.IPPool) (*Pool, error) {
	if errs := ValidateIPPool(pool); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	subnet, _ := ParseSubnet(pool.Spec.SubnetInfo)
	p := &Pool{Name: pool.Name, Subnet: subnet}
	for _, r := range pool.Spec.IPRanges {
		parsed, _ := ParseRange(r)
		p.Ranges = append(p.Ranges, parsed)
	}
	return p, nil
}

// IsAllocatable reports whether ip lies in one of the ranges and is not reserved.
func (p *Pool) IsAllocatable(ip netip.Addr) bool {
	if p.IsReserved(ip) {
		return false
	}
	for _, r := range p.Ranges {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

// Addresses yields the allocatable addresses in range order, skipping reserved ones.
func (p *Pool) Addresses() iter.Seq[netip.Addr] {
	return func(yield func(netip.Addr) bool) {
		for _, r := range p.Ranges {
			for ip := r.Start; ip.IsValid() && ip.Compare(r.End) <= 0; ip = ip.Next() {
				if p.IsReserved(ip) {
					continue
				}
				if !yield(ip) {
					return
				}
			}
		}
	}
}

// Count is the exact number of allocatable addresses: the sizes of the ranges minus the reserved
// addresses that fall inside them (the ranges do not overlap, so each is counted once).
func (p *Pool) Count() *big.Int {
	total := new(big.Int)
	for _, r := range p.Ranges {
		total.Add(total, r.Size())
	}
	for _, ip := range p.reserved() {
		for _, r := range p.Ranges {
			if r.Contains(ip) {
				total.Sub(total, big.NewInt(1))
				break
			}
		}
	}
	return total
}

// IsReserved reports whether ip is never handed out: the subnet's reserved addresses (network,
// IPv4 broadcast, gateway), and the network address of every range written as a CIDR, as
// Antrea's users expect of a CIDR range.
func (p *Pool) IsReserved(ip netip.Addr) bool {
	ip = ip.Unmap()
	if p.Subnet.IsReserved(ip) {
		return true
	}
	for _, r := range p.Ranges {
		if r.CIDR.IsValid() && r.CIDR.Bits() < r.CIDR.Addr().BitLen()-1 && ip == r.CIDR.Masked().Addr() {
			return true
		}
	}
	return false
}

// reserved lists the pool's reserved addresses without duplicates.
func (p *Pool) reserved() []netip.Addr {
	out := p.Subnet.reserved()
	seen := make(map[netip.Addr]bool, len(out))
	for _, a := range out {
		seen[a] = true
	}
	for _, r := range p.Ranges {
		if r.CIDR.IsValid() && r.CIDR.Bits() < r.CIDR.Addr().BitLen()-1 {
			if a := r.CIDR.Masked().Addr(); !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// MaxUsageTotal caps status.usage.total. IPv6 pools easily exceed any integer; 2^31-1 is exact in
// every client (JSON numbers are doubles in many of them) and is plenty to mean "cannot run out".
const MaxUsageTotal = math.MaxInt32

// UsageTotal is the value for status.usage.total: Count, saturated at MaxUsageTotal.
func (p *Pool) UsageTotal() int {
	n := p.Count()
	if n.Cmp(big.NewInt(MaxUsageTotal)) > 0 {
		return MaxUsageTotal
	}
	return int(n.Int64())
}

// CountAllocatable validates pool and returns its exact number of allocatable addresses.
func CountAllocatable(pool *v1beta1.IPPool) (*big.Int, error) {
	p, err := ParsePool(pool)
	if err != nil {
		return nil, err
	}
	return p.Count(), nil
}
