package validation

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

func pool(name, gateway string, prefix int32, vlan int32, ranges ...v1beta1.IPRange) *v1beta1.IPPool {
	return &v1beta1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.IPPoolSpec{
			IPRanges:   ranges,
			SubnetInfo: v1beta1.SubnetInfo{Gateway: gateway, PrefixLength: prefix, VLAN: vlan},
		},
	}
}

func cidr(c string) v1beta1.IPRange { return v1beta1.IPRange{CIDR: c} }

func span(start, end string) v1beta1.IPRange { return v1beta1.IPRange{Start: start, End: end} }

// errorText joins the errors the way a webhook response shows them.
func errorText(t *testing.T, errs interface{ Error() string }) string {
	t.Helper()
	return errs.Error()
}

func TestValidateIPPool(t *testing.T) {
	tests := []struct {
		name string
		pool *v1beta1.IPPool
		want string // the full error text; "" for a valid pool
	}{
		{name: "contract example pool is valid",
			pool: pool("p", "10.10.1.1", 24, 100, cidr("10.10.1.0/26"), span("10.10.1.100", "10.10.1.120"))},
		{name: "IPv6 pool is valid",
			pool: pool("p", "fd00:10::1", 64, 0, cidr("fd00:10::/120"), span("fd00:10::1:0", "fd00:10::1:ff"))},
		{name: "prefix 32 pool is valid", pool: pool("p", "10.0.0.1", 32, 0, cidr("10.0.0.1/32"))},
		{name: "prefix 128 pool is valid", pool: pool("p", "fd00::1", 128, 0, cidr("fd00::1/128"))},
		{name: "VLAN 4094 is valid", pool: pool("p", "10.0.0.1", 24, 4094, cidr("10.0.0.0/24"))},
		{name: "no ranges",
			pool: pool("p", "10.0.0.1", 24, 0),
			want: "spec.ipRanges: Required value: at least one range: a cidr, or a start and an end"},
		{name: "missing gateway",
			pool: pool("p", "", 24, 0, cidr("10.0.0.0/24")),
			want: "spec.subnetInfo.gateway: Required value: the subnet's router address, e.g. 10.10.1.1"},
		{name: "gateway not an address",
			pool: pool("p", "10.0.0", 24, 0, cidr("10.0.0.0/24")),
			want: `spec.subnetInfo.gateway: Invalid value: "10.0.0": not an IP address`},
		{name: "gateway IPv4-mapped",
			pool: pool("p", "::ffff:10.0.0.1", 24, 0, cidr("10.0.0.0/24")),
			want: `spec.subnetInfo.gateway: Invalid value: "::ffff:10.0.0.1": write IPv4 addresses in dotted form (10.0.0.1), not IPv4-mapped IPv6`},
		{name: "gateway with zone",
			pool: pool("p", "fe80::1%eth0", 64, 0, cidr("fe80::/64")),
			want: `spec.subnetInfo.gateway: Invalid value: "fe80::1%eth0": must not carry a zone`},
		{name: "IPv4 prefix 0",
			pool: pool("p", "10.0.0.1", 0, 0, cidr("10.0.0.0/24")),
			want: "spec.subnetInfo.prefixLength: Invalid value: 0: must be between 1 and 32 for the IPv4 gateway 10.0.0.1"},
		{name: "IPv4 prefix 33",
			pool: pool("p", "10.0.0.1", 33, 0, cidr("10.0.0.0/24")),
			want: "spec.subnetInfo.prefixLength: Invalid value: 33: must be between 1 and 32 for the IPv4 gateway 10.0.0.1"},
		{name: "IPv6 prefix 129",
			pool: pool("p", "fd00::1", 129, 0, cidr("fd00::/120")),
			want: "spec.subnetInfo.prefixLength: Invalid value: 129: must be between 1 and 128 for the IPv6 gateway fd00::1"},
		{name: "VLAN 4095",
			pool: pool("p", "10.0.0.1", 24, 4095, cidr("10.0.0.0/24")),
			want: "spec.subnetInfo.vlan: Invalid value: 4095: must be 0 (untagged) or a VLAN ID from 1 to 4094"},
		{name: "negative VLAN",
			pool: pool("p", "10.0.0.1", 24, -1, cidr("10.0.0.0/24")),
			want: "spec.subnetInfo.vlan: Invalid value: -1: must be 0 (untagged) or a VLAN ID from 1 to 4094"},
		{name: "gateway is the network address",
			pool: pool("p", "10.0.0.0", 24, 0, cidr("10.0.0.0/24")),
			want: `spec.subnetInfo.gateway: Invalid value: "10.0.0.0": is the network address of 10.0.0.0/24, not a host address`},
		{name: "gateway is the broadcast address",
			pool: pool("p", "10.0.0.255", 24, 0, cidr("10.0.0.0/24")),
			want: `spec.subnetInfo.gateway: Invalid value: "10.0.0.255": is the broadcast address of 10.0.0.0/24, not a host address`},
		{name: "range with cidr and start",
			pool: pool("p", "10.0.0.1", 24, 0, v1beta1.IPRange{CIDR: "10.0.0.0/26", Start: "10.0.0.1", End: "10.0.0.2"}),
			want: `spec.ipRanges[0]: Invalid value: "cidr 10.0.0.0/26, start 10.0.0.1, end 10.0.0.2": give either cidr or start and end, not both`},
		{name: "empty range",
			pool: pool("p", "10.0.0.1", 24, 0, v1beta1.IPRange{}),
			want: "spec.ipRanges[0]: Required value: a cidr, or a start and an end"},
		{name: "start without end",
			pool: pool("p", "10.0.0.1", 24, 0, span("10.0.0.10", "")),
			want: "spec.ipRanges[0].end: Required value: start and end go together"},
		{name: "end without start",
			pool: pool("p", "10.0.0.1", 24, 0, span("", "10.0.0.10")),
			want: "spec.ipRanges[0].start: Required value: start and end go together"},
		{name: "cidr does not parse",
			pool: pool("p", "10.0.0.1", 24, 0, cidr("10.0.0.0/33")),
			want: `spec.ipRanges[0].cidr: Invalid value: "10.0.0.0/33": not a CIDR such as 10.10.1.0/26 or fd00:10::/120`},
		{name: "cidr with host bits",
			pool: pool("p", "10.0.0.1", 24, 0, cidr("10.0.0.5/26")),
			want: `spec.ipRanges[0].cidr: Invalid value: "10.0.0.5/26": has host bits set; did you mean 10.0.0.0/26?`},
		{name: "cidr IPv4-mapped",
			pool: pool("p", "10.0.0.1", 24, 0, cidr("::ffff:10.0.0.0/120")),
			want: `spec.ipRanges[0].cidr: Invalid value: "::ffff:10.0.0.0/120": write IPv4 networks in dotted form, not IPv4-mapped IPv6`},
		{name: "cidr of the other family",
			pool: pool("p", "10.0.0.1", 24, 0, cidr("fd00::/120")),
			want: `spec.ipRanges[0].cidr: Invalid value: "fd00::/120": is IPv6 but the gateway 10.0.0.1 is IPv4`},
		{name: "cidr outside the subnet",
			pool: pool("p", "10.0.0.1", 24, 0, cidr("10.0.1.0/26")),
			want: `spec.ipRanges[0].cidr: Invalid value: "10.0.1.0/26": is not inside the subnet 10.0.0.0/24 (gateway/prefixLength)`},
		{name: "cidr larger than the subnet",
			pool: pool("p", "10.0.0.1", 24, 0, cidr("10.0.0.0/23")),
			want: `spec.ipRanges[0].cidr: Invalid value: "10.0.0.0/23": is not inside the subnet 10.0.0.0/24 (gateway/prefixLength)`},
		{name: "start does not parse",
			pool: pool("p", "10.0.0.1", 24, 0, span("10.0.0.x", "10.0.0.20")),
			want: `spec.ipRanges[0].start: Invalid value: "10.0.0.x": not an IP address`},
		{name: "start of the other family",
			pool: pool("p", "10.0.0.1", 24, 0, span("fd00::1", "10.0.0.20")),
			want: `spec.ipRanges[0].start: Invalid value: "fd00::1": is IPv6 but the gateway 10.0.0.1 is IPv4`},
		{name: "end outside the subnet",
			pool: pool("p", "10.0.0.1", 24, 0, span("10.0.0.10", "10.0.1.20")),
			want: `spec.ipRanges[0].end: Invalid value: "10.0.1.20": is outside the subnet 10.0.0.0/24 (gateway/prefixLength)`},
		{name: "start after end",
			pool: pool("p", "10.0.0.1", 24, 0, span("10.0.0.20", "10.0.0.10")),
			want: `spec.ipRanges[0].end: Invalid value: "10.0.0.10": is before start 10.0.0.20`},
		{name: "start equal to end is valid", pool: pool("p", "10.0.0.1", 24, 0, span("10.0.0.20", "10.0.0.20"))},
		{name: "overlapping cidr and start-end",
			pool: pool("p", "10.0.0.1", 24, 0, cidr("10.0.0.0/26"), span("10.0.0.60", "10.0.0.70")),
			want: `spec.ipRanges[1]: Invalid value: "10.0.0.60-10.0.0.70": overlaps spec.ipRanges[0] (10.0.0.0/26)`},
		{name: "later range overlapping is reported on the later index",
			pool: pool("p", "10.0.0.1", 24, 0, span("10.0.0.60", "10.0.0.70"), cidr("10.0.0.0/26")),
			want: `spec.ipRanges[1]: Invalid value: "10.0.0.0/26": overlaps spec.ipRanges[0] (10.0.0.60-10.0.0.70)`},
		{name: "touching ranges do not overlap",
			pool: pool("p", "10.0.0.1", 24, 0, cidr("10.0.0.0/26"), span("10.0.0.64", "10.0.0.70"))},
		{name: "identical ranges overlap",
			pool: pool("p", "10.0.0.1", 24, 0, cidr("10.0.0.0/26"), cidr("10.0.0.0/26")),
			want: `spec.ipRanges[1]: Invalid value: "10.0.0.0/26": overlaps spec.ipRanges[0] (10.0.0.0/26)`},
		{name: "a range nested in a wide earlier one overlaps",
			pool: pool("p", "10.0.0.1", 24, 0, span("10.0.0.10", "10.0.0.200"), span("10.0.0.20", "10.0.0.30"), span("10.0.0.100", "10.0.0.110")),
			want: `[spec.ipRanges[1]: Invalid value: "10.0.0.20-10.0.0.30": overlaps spec.ipRanges[0] (10.0.0.10-10.0.0.200), spec.ipRanges[2]: Invalid value: "10.0.0.100-10.0.0.110": overlaps spec.ipRanges[0] (10.0.0.10-10.0.0.200)]`},
		{name: "every problem is reported at once",
			pool: pool("p", "10.0.0.1", 24, 5000, cidr("10.0.1.0/26"), span("10.0.0.20", "10.0.0.10")),
			want: `[spec.subnetInfo.vlan: Invalid value: 5000: must be 0 (untagged) or a VLAN ID from 1 to 4094, spec.ipRanges[0].cidr: Invalid value: "10.0.1.0/26": is not inside the subnet 10.0.0.0/24 (gateway/prefixLength), spec.ipRanges[1].end: Invalid value: "10.0.0.10": is before start 10.0.0.20]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			errs := ValidateIPPool(tt.pool)
			if want == "" {
				if len(errs) > 0 {
					t.Fatalf("ValidateIPPool() = %v, want no error", errs.ToAggregate())
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("ValidateIPPool() = no error, want %s", want)
			}
			if got := errorText(t, errs.ToAggregate()); got != want {
				t.Fatalf("ValidateIPPool() =\n  %s\nwant\n  %s", got, want)
			}
		})
	}
}

func TestValidateNoOverlapWithOthers(t *testing.T) {
	others := []v1beta1.IPPool{
		*pool("other", "10.0.0.1", 24, 0, cidr("10.0.0.128/26"), span("10.0.0.240", "10.0.0.250")),
		*pool("v6", "fd00::1", 64, 0, cidr("fd00::/120")),
		*pool("mine", "10.0.0.1", 24, 0, cidr("10.0.0.0/26")),
	}
	tests := []struct {
		name string
		pool *v1beta1.IPPool
		want string
	}{
		{name: "disjoint ranges are accepted", pool: pool("mine", "10.0.0.1", 24, 0, cidr("10.0.0.64/26"))},
		{name: "the pool's own previous version is ignored", pool: pool("mine", "10.0.0.1", 24, 0, cidr("10.0.0.0/26"))},
		{name: "same numbers in another family do not overlap", pool: pool("x", "fd00:1::1", 64, 0, cidr("fd00:1::/120"))},
		{name: "overlap with a cidr of another pool names pool and range",
			pool: pool("x", "10.0.0.1", 24, 0, cidr("10.0.0.64/26"), span("10.0.0.190", "10.0.0.200")),
			want: `spec.ipRanges[1]: Invalid value: "10.0.0.190-10.0.0.200": overlaps 10.0.0.128/26 of IPPool "other" (spec.ipRanges[0])`},
		{name: "overlap with two pools is reported twice",
			pool: pool("x", "10.0.0.1", 24, 0, span("10.0.0.50", "10.0.0.130")),
			want: `[spec.ipRanges[0]: Invalid value: "10.0.0.50-10.0.0.130": overlaps 10.0.0.128/26 of IPPool "other" (spec.ipRanges[0]), spec.ipRanges[0]: Invalid value: "10.0.0.50-10.0.0.130": overlaps 10.0.0.0/26 of IPPool "mine" (spec.ipRanges[0])]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := ValidateNoOverlapWithOthers(tt.pool, others)
			if tt.want == "" {
				if len(errs) > 0 {
					t.Fatalf("got %v, want no error", errs.ToAggregate())
				}
				return
			}
			if len(errs) == 0 || errs.ToAggregate().Error() != tt.want {
				t.Fatalf("got\n  %v\nwant\n  %s", errs.ToAggregate(), tt.want)
			}
		})
	}
}

func TestFindOverlapsReturnsTheConflict(t *testing.T) {
	others := []v1beta1.IPPool{*pool("other", "10.0.0.1", 24, 0, cidr("10.0.0.0/28"), cidr("10.0.0.128/26"))}
	got := FindOverlaps(pool("x", "10.0.0.1", 24, 0, cidr("10.0.0.160/27")), others)
	if len(got) != 1 {
		t.Fatalf("FindOverlaps() = %+v, want one overlap", got)
	}
	o := got[0]
	if o.Index != 0 || o.Pool != "other" || o.OtherIndex != 1 || o.Other.String() != "10.0.0.128/26" || o.Range.String() != "10.0.0.160/27" {
		t.Fatalf("FindOverlaps() = %+v", o)
	}
}

func withAllocations(p *v1beta1.IPPool, n int) *v1beta1.IPPool {
	for i := 0; i < n; i++ {
		p.Status.IPAddresses = append(p.Status.IPAddresses, v1beta1.IPAddressState{
			IPAddress: "10.0.0.2", Phase: v1beta1.IPAddressPhaseAllocated,
			Owner: v1beta1.IPAddressOwner{Pod: &v1beta1.PodOwner{Name: "web", Namespace: "shop", ContainerID: "c1", IFName: "eth1"}},
		})
	}
	return p
}

func TestValidateIPPoolUpdate(t *testing.T) {
	old := pool("p", "10.0.0.1", 24, 100, cidr("10.0.0.0/26"), span("10.0.0.100", "10.0.0.110"))
	tests := []struct {
		name string
		old  *v1beta1.IPPool
		new  *v1beta1.IPPool
		want string
	}{
		{name: "unchanged pool is accepted", old: old, new: old},
		{name: "adding a range is accepted", old: old,
			new: pool("p", "10.0.0.1", 24, 100, cidr("10.0.0.0/26"), span("10.0.0.100", "10.0.0.110"), cidr("10.0.0.128/26"))},
		{name: "reordering ranges is accepted", old: old,
			new: pool("p", "10.0.0.1", 24, 100, span("10.0.0.100", "10.0.0.110"), cidr("10.0.0.0/26"))},
		{name: "rewriting a cidr as the same start-end is accepted", old: old,
			new: pool("p", "10.0.0.1", 24, 100, span("10.0.0.0", "10.0.0.63"), span("10.0.0.100", "10.0.0.110"))},
		{name: "changing the VLAN without allocations is accepted", old: old,
			new: pool("p", "10.0.0.1", 24, 200, cidr("10.0.0.0/26"), span("10.0.0.100", "10.0.0.110"))},
		{name: "gateway is immutable", old: old,
			new:  pool("p", "10.0.0.2", 24, 100, cidr("10.0.0.0/26"), span("10.0.0.100", "10.0.0.110")),
			want: `spec.subnetInfo.gateway: Invalid value: "10.0.0.2": is immutable (was 10.0.0.1); create a new IPPool for another subnet`},
		{name: "gateway written differently is not a change",
			old: pool("p", "fd00::1", 64, 0, cidr("fd00::/120")),
			new: pool("p", "fd00:0::1", 64, 0, cidr("fd00::/120"))},
		{name: "prefixLength is immutable", old: old,
			new:  pool("p", "10.0.0.1", 25, 100, cidr("10.0.0.0/26"), span("10.0.0.100", "10.0.0.110")),
			want: "spec.subnetInfo.prefixLength: Invalid value: 25: is immutable (was 24); create a new IPPool for another subnet"},
		{name: "removing a range is refused", old: old,
			new:  pool("p", "10.0.0.1", 24, 100, cidr("10.0.0.0/26")),
			want: "spec.ipRanges: Forbidden: range 10.0.0.100-10.0.0.110 (was spec.ipRanges[1]) was removed or changed; ranges can only be added"},
		{name: "shrinking a range is refused", old: old,
			new:  pool("p", "10.0.0.1", 24, 100, cidr("10.0.0.0/27"), span("10.0.0.100", "10.0.0.110")),
			want: "spec.ipRanges: Forbidden: range 10.0.0.0/26 (was spec.ipRanges[0]) was removed or changed; ranges can only be added"},
		{name: "changing the VLAN with allocations is refused", old: withAllocations(old.DeepCopy(), 3),
			new:  pool("p", "10.0.0.1", 24, 200, cidr("10.0.0.0/26"), span("10.0.0.100", "10.0.0.110")),
			want: "spec.subnetInfo.vlan: Forbidden: cannot change from 100 to 200 while 3 addresses are allocated: their Pods would stay on VLAN 100"},
		{name: "the new spec is validated too", old: old,
			new:  pool("p", "10.0.0.1", 24, 100, cidr("10.0.0.0/26"), span("10.0.0.100", "10.0.0.110"), cidr("10.0.0.32/27")),
			want: `spec.ipRanges[2]: Invalid value: "10.0.0.32/27": overlaps spec.ipRanges[0] (10.0.0.0/26)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := ValidateIPPoolUpdate(tt.new, tt.old)
			if tt.want == "" {
				if len(errs) > 0 {
					t.Fatalf("got %v, want no error", errs.ToAggregate())
				}
				return
			}
			if len(errs) == 0 || errs.ToAggregate().Error() != tt.want {
				t.Fatalf("got\n  %v\nwant\n  %s", errs.ToAggregate(), tt.want)
			}
		})
	}
}

func TestValidateIPPoolDelete(t *testing.T) {
	if errs := ValidateIPPoolDelete(pool("p", "10.0.0.1", 24, 0, cidr("10.0.0.0/26"))); len(errs) > 0 {
		t.Fatalf("deleting an empty pool: got %v, want no error", errs.ToAggregate())
	}
	errs := ValidateIPPoolDelete(withAllocations(pool("p", "10.0.0.1", 24, 0, cidr("10.0.0.0/26")), 2))
	want := "status.ipAddresses: Forbidden: IPPool p has 2 allocated addresses (e.g. 10.0.0.2 held by Pod shop/web); delete their Pods first"
	if len(errs) == 0 || errs.ToAggregate().Error() != want {
		t.Fatalf("got %v, want %s", errs.ToAggregate(), want)
	}
}
