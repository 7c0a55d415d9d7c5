package ipam

import (
	"crypto/sha256"
	"encoding/hex"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// DefaultBlockSize is the largest block a Node claims at once when Options.BlockSize is unset.
const DefaultBlockSize = 64

// minBlocksPerSubnet is how many blocks a subnet is cut into at least: a /24 gets blocks of 4
// addresses, so that 64 Nodes can each own one before the pool falls back to shared blocks.
const minBlocksPerSubnet = 64

// blockBits returns the prefix length of a pool's blocks: the subnet cut into at least
// minBlocksPerSubnet blocks of at most maxSize addresses (a power of two). It depends only on the
// subnet, which the admission webhook keeps immutable, and on maxSize, which must be the same on
// every Node; so every agent cuts a pool the same way.
func blockBits(subnet netip.Prefix, maxSize int) int {
	addrBits := subnet.Addr().BitLen()
	hostBits := addrBits - subnet.Bits()
	maxBits := 0
	if maxSize > 1 {
		maxBits = bits.Len(uint(maxSize)) - 1 // floor(log2)
	}
	sizeBits := min(maxBits, max(0, hostBits-bits.Len(minBlocksPerSubnet-1)))
	return addrBits - sizeBits
}

// blockOf returns the block holding addr.
func blockOf(addr netip.Addr, bits int) netip.Prefix {
	return netip.PrefixFrom(addr, bits).Masked()
}

// BlockName is the name of the IPPoolBlock of a pool holding the given CIDR. Creating the object
// under this name is the claim: the API server lets only one creation of a name succeed.
func BlockName(pool string, cidr netip.Prefix) string {
	addr := strings.NewReplacer(".", "-", ":", "-").Replace(cidr.Addr().String())
	addr = strings.Trim(addr, "-")
	if addr == "" {
		addr = "0"
	}
	name := pool + "." + addr + "-" + strconv.Itoa(cidr.Bits())
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(pool + "/" + cidr.String()))
	return pool[:200] + "." + hex.EncodeToString(sum[:8])
}

// lastOf returns the last address of a prefix.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As16()
	host := 128 - p.Bits()
	if p.Addr().Is4() {
		host = 32 - p.Bits()
	}
	for i := 15; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		return a.Unmap()
	}
	return a
}

// blockAddrs calls yield for every allocatable address of the block: inside the pool's ranges and
// not reserved, in order.
func (s *poolSpace) blockAddrs(block netip.Prefix, yield func(netip.Addr) bool) {
	first, last := block.Addr(), lastOf(block)
	for i := s.rangeIndex(first); i < len(s.ranges); i++ {
		r := s.ranges[i]
		if r.first.Compare(last) > 0 {
			return
		}
		from, to := r.first, r.last
		if from.Less(first) {
			from = first
		}
		if last.Less(to) {
			to = last
		}
		for a := from; a.IsValid() && a.Compare(to) <= 0; a = a.Next() {
			if !s.isReserved(a) && !yield(a) {
				return
			}
		}
	}
}

// nextBlock returns the first block at or after start (wrapping around the pool's ranges once)
// that skip rejects not, and whether there is one. The scan is lazy: it visits blocks one by one
// and stops at the first acceptable one, so even an IPv6 range of 2^60 blocks costs only as many
// steps as blocks are skipped.
func (s *poolSpace) nextBlock(start netip.Addr, bits int, skip func(netip.Prefix) bool) (netip.Prefix, bool) {
	n := len(s.ranges)
	if n == 0 {
		return netip.Prefix{}, false
	}
	i := 0
	if start.IsValid() {
		if i = s.rangeIndex(start); i == n {
			i, start = 0, netip.Addr{}
		} else if start.Less(s.ranges[i].first) {
			start = netip.Addr{}
		}
	}
	visit := func(from, to netip.Addr) (netip.Prefix, bool) {
		var prev netip.Prefix
		for b := blockOf(from, bits); ; {
			if b != prev && !skip(b) {
				return b, true
			}
			prev = b
			next := lastOf(b).Next()
			if !next.IsValid() || next.Compare(to) > 0 {
				return netip.Prefix{}, false
			}
			b = blockOf(next, bits)
		}
	}
	for k := 0; k <= n; k++ {
		r := s.ranges[(i+k)%n]
		from := r.first
		if k == 0 && start.IsValid() {
			from = start
		}
		to := r.last
		if k == n { // back at the start range: the part before start
			if !start.IsValid() {
				break
			}
			to = start
		}
		if b, ok := visit(from, to); ok {
			return b, true
		}
	}
	return netip.Prefix{}, false
}

// blockRef is what the allocator needs of an IPPoolBlock object.
type blockRef struct {
	name string
	cidr netip.Prefix
	node string // empty: shared
}

// parseBlock reads a block object; ok is false when its CIDR does not parse.
func parseBlock(b *v1beta1.IPPoolBlock) (blockRef, bool) {
	p, err := netip.ParsePrefix(b.Spec.CIDR)
	if err != nil {
		return blockRef{}, false
	}
	return blockRef{name: b.Name, cidr: p.Masked(), node: b.Spec.NodeName}, true
}
