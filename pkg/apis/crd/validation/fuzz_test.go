package validation

import (
	"math/big"
	"testing"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// FuzzValidateIPPool checks that whatever the validator accepts, the allocator can rely on: the
// pool parses, its ranges lie in the subnet without overlapping, the gateway is never
// allocatable, and the count matches the addresses actually handed out.
func FuzzValidateIPPool(f *testing.F) {
	f.Add("10.10.1.1", int32(24), int32(100), "10.10.1.0/26", "", "", "", "10.10.1.100", "10.10.1.120")
	f.Add("fd00::1", int32(120), int32(0), "fd00::/121", "", "", "", "fd00::90", "fd00::9f")
	f.Add("10.0.0.0", int32(31), int32(0), "10.0.0.0/31", "", "", "", "", "")
	f.Add("10.0.0.1", int32(24), int32(4095), "10.0.0.5/26", "x", "", "", "10.0.0.20", "10.0.0.10")
	f.Add("::ffff:1.2.3.4", int32(120), int32(-1), "", "", "", "1.2.3.0/24", "1.2.3.4", "fd00::1")
	f.Fuzz(func(t *testing.T, gw string, prefix, vlan int32, cidr1, start1, end1, cidr2, start2, end2 string) {
		p := pool("fuzz", gw, prefix, vlan,
			v1beta1.IPRange{CIDR: cidr1, Start: start1, End: end1},
			v1beta1.IPRange{CIDR: cidr2, Start: start2, End: end2})
		if errs := ValidateIPPool(p); len(errs) > 0 {
			if _, err := ParsePool(p); err == nil {
				t.Fatalf("ParsePool accepted a pool ValidateIPPool rejects: %v", errs.ToAggregate())
			}
			return
		}
		parsed, err := ParsePool(p)
		if err != nil {
			t.Fatalf("ParsePool() = %v for a valid pool", err)
		}
		if vlan < 0 || vlan > MaxVLAN {
			t.Fatalf("accepted VLAN %d", vlan)
		}
		for i, r := range parsed.Ranges {
			if !parsed.Subnet.Prefix.Contains(r.Start) || !parsed.Subnet.Prefix.Contains(r.End) || r.End.Less(r.Start) {
				t.Fatalf("accepted range %s outside %s or reversed", r, parsed.Subnet.Prefix)
			}
			for _, o := range parsed.Ranges[i+1:] {
				if r.Overlaps(o) {
					t.Fatalf("accepted overlapping ranges %s and %s", r, o)
				}
			}
		}
		if parsed.IsAllocatable(parsed.Subnet.Gateway) {
			t.Fatalf("gateway %s is allocatable", parsed.Subnet.Gateway)
		}
		count := parsed.Count()
		if count.Sign() < 0 {
			t.Fatalf("Count() = %s", count)
		}
		if count.Cmp(big.NewInt(4096)) <= 0 {
			n := int64(0)
			for ip := range parsed.Addresses() {
				if parsed.IsReserved(ip) {
					t.Fatalf("Addresses() yielded reserved %s", ip)
				}
				n++
			}
			if n != count.Int64() {
				t.Fatalf("Addresses() yielded %d addresses, Count() = %s", n, count)
			}
		}
	})
}
