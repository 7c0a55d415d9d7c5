package validation

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// MaxVLAN is the highest usable 802.1Q VLAN ID.
const MaxVLAN = 4094

// ValidateIPPool checks a pool on creation: its spec alone.
func ValidateIPPool(pool *v1beta1.IPPool) field.ErrorList {
	return ValidateIPPoolSpec(&pool.Spec, field.NewPath("spec"))
}

// ValidateIPPoolSpec checks subnetInfo and every range, and that the ranges do not overlap.
func ValidateIPPoolSpec(spec *v1beta1.IPPoolSpec, path *field.Path) field.ErrorList {
	subnet, errs := validateSubnetInfo(spec.SubnetInfo, path.Child("subnetInfo"))
	rangesPath := path.Child("ipRanges")
	if len(spec.IPRanges) == 0 {
		errs = append(errs, field.Required(rangesPath, "at least one range: a cidr, or a start and an end"))
	}
	parsed := make([]Range, len(spec.IPRanges))
	valid := make([]bool, len(spec.IPRanges))
	for i, r := range spec.IPRanges {
		rangeErrs := validateRange(r, subnet, rangesPath.Index(i))
		errs = append(errs, rangeErrs...)
		if len(rangeErrs) == 0 {
			parsed[i], _ = ParseRange(r)
			valid[i] = true
		}
	}
	errs = append(errs, validateNoOverlapWithin(parsed, valid, rangesPath)...)
	return errs
}

// validateSubnetInfo returns the parsed subnet, or nil when gateway and prefixLength do not make one.
func validateSubnetInfo(info v1beta1.SubnetInfo, path *field.Path) (*Subnet, field.ErrorList) {
	var errs field.ErrorList
	if info.VLAN < 0 || info.VLAN > MaxVLAN {
		errs = append(errs, field.Invalid(path.Child("vlan"), info.VLAN,
			fmt.Sprintf("must be 0 (untagged) or a VLAN ID from 1 to %d", MaxVLAN)))
	}
	gwPath := path.Child("gateway")
	if info.Gateway == "" {
		return nil, append(errs, field.Required(gwPath, "the subnet's router address, e.g. 10.10.1.1"))
	}
	gw, err := parseAddr(info.Gateway)
	if err != nil {
		return nil, append(errs, field.Invalid(gwPath, info.Gateway, err.Error()))
	}
	if info.PrefixLength < 1 || int(info.PrefixLength) > gw.BitLen() {
		return nil, append(errs, field.Invalid(path.Child("prefixLength"), info.PrefixLength,
			fmt.Sprintf("must be between 1 and %d for the %s gateway %s", gw.BitLen(), familyOf(gw), gw)))
	}
	subnet, _ := ParseSubnet(info)
	if subnet.hasNetworkAndBroadcast() {
		if gw == subnet.NetworkAddress() {
			errs = append(errs, field.Invalid(gwPath, info.Gateway,
				fmt.Sprintf("is the network address of %s, not a host address", subnet.Prefix)))
		} else if gw.Is4() && gw == subnet.LastAddress() {
			errs = append(errs, field.Invalid(gwPath, info.Gateway,
				fmt.Sprintf("is the broadcast address of %s, not a host address", subnet.Prefix)))
		}
	}
	if len(errs) > 0 && !subnetUsable(errs, path) {
		return nil, errs
	}
	return &subnet, errs
}

// subnetUsable reports whether the subnet can still judge the ranges: only a bad VLAN was found.
func subnetUsable(errs field.ErrorList, path *field.Path) bool {
	for _, e := range errs {
		if e.Field != path.Child("vlan").String() {
			return false
		}
	}
	return true
}

// validateRange checks one range and, when the subnet is known, that it lies inside it.
func validateRange(r v1beta1.IPRange, subnet *Subnet, path *field.Path) field.ErrorList {
	switch {
	case r.CIDR != "" && (r.Start != "" || r.End != ""):
		return field.ErrorList{field.Invalid(path, rangeText(r), "give either cidr or start and end, not both")}
	case r.CIDR == "" && r.Start == "" && r.End == "":
		return field.ErrorList{field.Required(path, "a cidr, or a start and an end")}
	case r.CIDR != "":
		return validateCIDRRange(r.CIDR, subnet, path.Child("cidr"))
	}
	var errs field.ErrorList
	var start, end netip.Addr
	for _, part := range []struct {
		name, value string
		into        *netip.Addr
	}{{"start", r.Start, &start}, {"end", r.End, &end}} {
		p := path.Child(part.name)
		if part.value == "" {
			errs = append(errs, field.Required(p, "start and end go together"))
			continue
		}
		a, err := parseAddr(part.value)
		if err != nil {
			errs = append(errs, field.Invalid(p, part.value, err.Error()))
			continue
		}
		*part.into = a
		if subnet == nil {
			continue
		}
		if a.BitLen() != subnet.Gateway.BitLen() {
			errs = append(errs, field.Invalid(p, part.value, fmt.Sprintf("is %s but the gateway %s is %s",
				familyOf(a), subnet.Gateway, familyOf(subnet.Gateway))))
		} else if !subnet.Prefix.Contains(a) {
			errs = append(errs, field.Invalid(p, part.value,
				fmt.Sprintf("is outside the subnet %s (gateway/prefixLength)", subnet.Prefix)))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if start.BitLen() != end.BitLen() {
		return field.ErrorList{field.Invalid(path.Child("end"), r.End,
			fmt.Sprintf("is %s but start %s is %s", familyOf(end), start, familyOf(start)))}
	}
	if end.Less(start) {
		return field.ErrorList{field.Invalid(path.Child("end"), r.End, fmt.Sprintf("is before start %s", start))}
	}
	return nil
}

func validateCIDRRange(cidr string, subnet *Subnet, path *field.Path) field.ErrorList {
	parsed, err := ParseRange(v1beta1.IPRange{CIDR: cidr})
	if err != nil {
		p, _ := netip.ParsePrefix(cidr)
		detail := "not a CIDR such as 10.10.1.0/26 or fd00:10::/120"
		switch {
		case p.IsValid() && p.Addr().Is4In6():
			detail = "write IPv4 networks in dotted form, not IPv4-mapped IPv6"
		case p.IsValid() && p != p.Masked():
			detail = fmt.Sprintf("has host bits set; did you mean %s?", p.Masked())
		}
		return field.ErrorList{field.Invalid(path, cidr, detail)}
	}
	if subnet == nil {
		return nil
	}
	p := parsed.CIDR
	if p.Addr().BitLen() != subnet.Gateway.BitLen() {
		return field.ErrorList{field.Invalid(path, cidr, fmt.Sprintf("is %s but the gateway %s is %s",
			familyOf(p.Addr()), subnet.Gateway, familyOf(subnet.Gateway)))}
	}
	if p.Bits() < subnet.Prefix.Bits() || !subnet.Prefix.Contains(p.Addr()) {
		return field.ErrorList{field.Invalid(path, cidr,
			fmt.Sprintf("is not inside the subnet %s (gateway/prefixLength)", subnet.Prefix))}
	}
	return nil
}

func rangeText(r v1beta1.IPRange) string {
	switch {
	case r.CIDR != "" && (r.Start != "" || r.End != ""):
		return fmt.Sprintf("cidr %s, start %s, end %s", r.CIDR, r.Start, r.End)
	case r.CIDR != "":
		return r.CIDR
	default:
		return r.Start + "-" + r.End
	}
}

// validateNoOverlapWithin reports each range that overlaps an earlier one, in O(n log n) so that
// a pool of many ranges cannot slow the webhook down.
func validateNoOverlapWithin(ranges []Range, valid []bool, path *field.Path) field.ErrorList {
	var order []int
	for i := range ranges {
		if valid[i] {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := cmp.Compare(ranges[a].Start.BitLen(), ranges[b].Start.BitLen()); c != 0 {
			return c
		}
		return ranges[a].Start.Compare(ranges[b].Start)
	})
	var errs field.ErrorList
	reach := -1 // the index of the range reaching furthest among those seen
	for _, i := range order {
		if reach >= 0 && ranges[reach].Overlaps(ranges[i]) {
			first, second := min(reach, i), max(reach, i)
			errs = append(errs, field.Invalid(path.Index(second), ranges[second].String(),
				fmt.Sprintf("overlaps %s (%s)", path.Index(first), ranges[first])))
		}
		if reach < 0 || ranges[reach].Start.BitLen() != ranges[i].Start.BitLen() || ranges[reach].End.Less(ranges[i].End) {
			reach = i
		}
	}
	slices.SortStableFunc(errs, func(a, b *field.Error) int { return cmp.Compare(a.Field, b.Field) })
	return errs
}

// Overlap is a range of one pool that shares addresses with a range of another pool.
type Overlap struct {
	// Index and Range are the range of the pool being checked.
	Index int
	Range Range
	// Pool, OtherIndex and Other are the conflicting pool and its range.
	Pool       string
	OtherIndex int
	Other      Range
}

// FindOverlaps returns every overlap between pool's ranges and those of others. Pools named like
// pool (its own previous version on update) are skipped, and so are ranges that do not parse.
func FindOverlaps(pool *v1beta1.IPPool, others []v1beta1.IPPool) []Overlap {
	var out []Overlap
	for i, r := range pool.Spec.IPRanges {
		mine, err := ParseRange(r)
		if err != nil {
			continue
		}
		for _, other := range others {
			if other.Name == pool.Name {
				continue
			}
			for j, or := range other.Spec.IPRanges {
				theirs, err := ParseRange(or)
				if err != nil || !mine.Overlaps(theirs) {
					continue
				}
				out = append(out, Overlap{Index: i, Range: mine, Pool: other.Name, OtherIndex: j, Other: theirs})
			}
		}
	}
	return out
}

// ValidateNoOverlapWithOthers rejects ranges that share addresses with another pool: two pools
// handing out one address would give it to two Pods.
func ValidateNoOverlapWithOthers(pool *v1beta1.IPPool, others []v1beta1.IPPool) field.ErrorList {
	var errs field.ErrorList
	rangesPath := field.NewPath("spec", "ipRanges")
	for _, o := range FindOverlaps(pool, others) {
		errs = append(errs, field.Invalid(rangesPath.Index(o.Index), o.Range.String(),
			fmt.Sprintf("overlaps %s of IPPool %q (spec.ipRanges[%d])", o.Other, o.Pool, o.OtherIndex)))
	}
	return errs
}

// ValidateIPPoolUpdate checks newPool and the update rules against oldPool: gateway and
// prefixLength are immutable; ranges may be added but not removed or changed; the VLAN may not
// change while addresses are allocated (their Pods would stay on the old VLAN).
func ValidateIPPoolUpdate(newPool, oldPool *v1beta1.IPPool) field.ErrorList {
	errs := ValidateIPPool(newPool)
	subnetPath := field.NewPath("spec", "subnetInfo")
	newInfo, oldInfo := newPool.Spec.SubnetInfo, oldPool.Spec.SubnetInfo
	if !sameAddrText(newInfo.Gateway, oldInfo.Gateway) {
		errs = append(errs, field.Invalid(subnetPath.Child("gateway"), newInfo.Gateway,
			fmt.Sprintf("is immutable (was %s); create a new IPPool for another subnet", oldInfo.Gateway)))
	}
	if newInfo.PrefixLength != oldInfo.PrefixLength {
		errs = append(errs, field.Invalid(subnetPath.Child("prefixLength"), newInfo.PrefixLength,
			fmt.Sprintf("is immutable (was %d); create a new IPPool for another subnet", oldInfo.PrefixLength)))
	}
	if newInfo.VLAN != oldInfo.VLAN {
		if n := len(oldPool.Status.IPAddresses); n > 0 {
			errs = append(errs, field.Forbidden(subnetPath.Child("vlan"), fmt.Sprintf(
				"cannot change from %d to %d while %d addresses are allocated: their Pods would stay on VLAN %d",
				oldInfo.VLAN, newInfo.VLAN, n, oldInfo.VLAN)))
		}
	}
	rangesPath := field.NewPath("spec", "ipRanges")
	for i, old := range oldPool.Spec.IPRanges {
		if !containsRange(newPool.Spec.IPRanges, old) {
			errs = append(errs, field.Forbidden(rangesPath, fmt.Sprintf(
				"range %s (was spec.ipRanges[%d]) was removed or changed; ranges can only be added",
				rangeText(old), i)))
		}
	}
	return errs
}

func sameAddrText(a, b string) bool {
	pa, errA := netip.ParseAddr(a)
	pb, errB := netip.ParseAddr(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return pa == pb
}

// containsRange reports whether ranges still hold old, written in any form that covers the same
// addresses.
func containsRange(ranges []v1beta1.IPRange, old v1beta1.IPRange) bool {
	oldParsed, oldErr := ParseRange(old)
	for _, r := range ranges {
		if r == old {
			return true
		}
		if oldErr != nil {
			continue
		}
		if parsed, err := ParseRange(r); err == nil && parsed.sameAddresses(oldParsed) {
			return true
		}
	}
	return false
}

// ValidateIPPoolDelete refuses to delete a pool that still records allocations: their Pods would
// keep addresses that could later be handed out again by a new pool.
func ValidateIPPoolDelete(pool *v1beta1.IPPool) field.ErrorList {
	addrs := pool.Status.IPAddresses
	if len(addrs) == 0 {
		if n := pool.Status.Usage.InBlocks; n > 0 {
			return field.ErrorList{field.Forbidden(field.NewPath("status", "usage", "inBlocks"), fmt.Sprintf(
				"IPPool %s has %d addresses allocated in its IPPoolBlocks (kubectl get ippoolblocks); delete their Pods first",
				pool.Name, n))}
		}
		return nil
	}
	first := addrs[0]
	owner := "an unknown owner"
	if pod := first.Owner.Pod; pod != nil {
		owner = fmt.Sprintf("Pod %s/%s", pod.Namespace, pod.Name)
	}
	return field.ErrorList{field.Forbidden(field.NewPath("status", "ipAddresses"), fmt.Sprintf(
		"IPPool %s has %d allocated addresses (e.g. %s held by %s); delete their Pods first",
		pool.Name, len(addrs), first.IPAddress, owner))}
}
