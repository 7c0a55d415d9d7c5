package validation

import (
	"math/big"
	"net/netip"
	"slices"
	"testing"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

func TestIsReserved(t *testing.T) {
	v4 := v1beta1.SubnetInfo{Gateway: "10.0.0.1", PrefixLength: 24}
	v6 := v1beta1.SubnetInfo{Gateway: "fd00::1", PrefixLength: 64}
	tests := []struct {
		name   string
		subnet v1beta1.SubnetInfo
		ip     string
		want   bool
	}{
		{name: "IPv4 network address is reserved", subnet: v4, ip: "10.0.0.0", want: true},
		{name: "IPv4 broadcast address is reserved", subnet: v4, ip: "10.0.0.255", want: true},
		{name: "IPv4 gateway is reserved", subnet: v4, ip: "10.0.0.1", want: true},
		{name: "IPv4 host address is free", subnet: v4, ip: "10.0.0.2", want: false},
		{name: "IPv4 next-to-last address is free", subnet: v4, ip: "10.0.0.254", want: false},
		{name: "IPv6 subnet-router anycast address is reserved", subnet: v6, ip: "fd00::", want: true},
		{name: "IPv6 gateway is reserved", subnet: v6, ip: "fd00::1", want: true},
		{name: "IPv6 last address is free (no broadcast in IPv6)", subnet: v6, ip: "fd00::ffff:ffff:ffff:ffff", want: false},
		{name: "gateway inside a /31 is reserved", subnet: v1beta1.SubnetInfo{Gateway: "10.0.0.0", PrefixLength: 31}, ip: "10.0.0.0", want: true},
		{name: "other address of a /31 is free (RFC 3021)", subnet: v1beta1.SubnetInfo{Gateway: "10.0.0.0", PrefixLength: 31}, ip: "10.0.0.1", want: false},
		{name: "other address of an IPv6 /127 is free (RFC 6164)", subnet: v1beta1.SubnetInfo{Gateway: "fd00::1", PrefixLength: 127}, ip: "fd00::", want: false},
		{name: "IPv4-mapped form of the gateway is reserved", subnet: v4, ip: "::ffff:10.0.0.1", want: true},
		{name: "an unparsable subnet reserves everything", subnet: v1beta1.SubnetInfo{Gateway: "bad", PrefixLength: 24}, ip: "10.0.0.2", want: true},
		{name: "a prefix too long for the family reserves everything", subnet: v1beta1.SubnetInfo{Gateway: "10.0.0.1", PrefixLength: 33}, ip: "10.0.0.2", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsReserved(tt.subnet, netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Fatalf("IsReserved(%+v, %s) = %v, want %v", tt.subnet, tt.ip, got, tt.want)
			}
		})
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		name      string
		pool      *v1beta1.IPPool
		want      string
		wantUsage int
	}{
		{name: "cidr covering the whole /24 loses network, gateway and broadcast",
			pool: pool("p", "10.0.0.1", 24, 0, cidr("10.0.0.0/24")), want: "253", wantUsage: 253},
		{name: "contract example: /26 from the network address plus an 11-address range",
			pool: pool("p", "10.10.1.1", 24, 0, cidr("10.10.1.0/26"), span("10.10.1.100", "10.10.1.110")), want: "73", wantUsage: 73},
		{name: "gateway inside a start-end range is not counted",
			pool: pool("p", "10.0.0.15", 24, 0, span("10.0.0.10", "10.0.0.20")), want: "10", wantUsage: 10},
		{name: "gateway outside every range costs nothing",
			pool: pool("p", "10.0.0.1", 24, 0, span("10.0.0.10", "10.0.0.20")), want: "11", wantUsage: 11},
		{name: "a cidr in the middle of the subnet reserves its network address",
			pool: pool("p", "10.0.0.1", 24, 0, cidr("10.0.0.64/26")), want: "63", wantUsage: 63},
		{name: "a range of only the gateway has nothing to allocate",
			pool: pool("p", "10.0.0.1", 24, 0, span("10.0.0.1", "10.0.0.1")), want: "0", wantUsage: 0},
		{name: "/31 subnet allocates its other address",
			pool: pool("p", "10.0.0.0", 31, 0, cidr("10.0.0.0/31")), want: "1", wantUsage: 1},
		{name: "IPv6 /120 loses only the anycast and gateway addresses",
			pool: pool("p", "fd00::1", 120, 0, cidr("fd00::/120")), want: "254", wantUsage: 254},
		{name: "an IPv6 /64 is counted exactly and saturates the usage total",
			pool: pool("p", "fd00::1", 64, 0, cidr("fd00::/64")), want: "18446744073709551614", wantUsage: MaxUsageTotal},
		{name: "a huge IPv4 pool is below the cap",
			pool: pool("p", "10.0.0.1", 8, 0, cidr("10.0.0.0/8")), want: "16777213", wantUsage: 16777213},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePool(tt.pool)
			if err != nil {
				t.Fatalf("ParsePool() = %v", err)
			}
			want, _ := new(big.Int).SetString(tt.want, 10)
			if got := p.Count(); got.Cmp(want) != 0 {
				t.Fatalf("Count() = %s, want %s", got, want)
			}
			if got := p.UsageTotal(); got != tt.wantUsage {
				t.Fatalf("UsageTotal() = %d, want %d", got, tt.wantUsage)
			}
			if got, err := CountAllocatable(tt.pool); err != nil || got.Cmp(want) != 0 {
				t.Fatalf("CountAllocatable() = %v, %v, want %s", got, err, want)
			}
		})
	}
}

func TestCountAllocatableRejectsAnInvalidPool(t *testing.T) {
	_, err := CountAllocatable(pool("p", "10.0.0.1", 24, 0, cidr("10.0.1.0/24")))
	want := `spec.ipRanges[0].cidr: Invalid value: "10.0.1.0/24": is not inside the subnet 10.0.0.0/24 (gateway/prefixLength)`
	if err == nil || err.Error() != want {
		t.Fatalf("CountAllocatable() error = %v, want %s", err, want)
	}
}

func TestAddressesSkipsReservedAndMatchesCount(t *testing.T) {
	p, err := ParsePool(pool("p", "10.0.0.5", 28, 0, cidr("10.0.0.0/29"), span("10.0.0.14", "10.0.0.15")))
	if err != nil {
		t.Fatalf("ParsePool() = %v", err)
	}
	var got []string
	for ip := range p.Addresses() {
		got = append(got, ip.String())
		if !p.IsAllocatable(ip) {
			t.Errorf("Addresses() yielded %s, which IsAllocatable refuses", ip)
		}
	}
	want := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.6", "10.0.0.7", "10.0.0.14"}
	if !slices.Equal(got, want) {
		t.Fatalf("Addresses() = %v, want %v", got, want)
	}
	if p.Count().Int64() != int64(len(want)) {
		t.Fatalf("Count() = %s, want %d", p.Count(), len(want))
	}
}

func TestAddressesStopsWhenAsked(t *testing.T) {
	p, err := ParsePool(pool("p", "fd00::1", 64, 0, cidr("fd00::/64")))
	if err != nil {
		t.Fatalf("ParsePool() = %v", err)
	}
	n := 0
	for range p.Addresses() {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("iterated %d addresses, want 3", n)
	}
}

func TestPoolIsReservedIncludesNetworkAddressesOfCIDRRanges(t *testing.T) {
	p, err := ParsePool(pool("p", "10.0.0.1", 24, 0, cidr("10.0.0.64/26"), cidr("10.0.0.200/32"), span("10.0.0.128", "10.0.0.140")))
	if err != nil {
		t.Fatalf("ParsePool() = %v", err)
	}
	for ip, want := range map[string]bool{
		"10.0.0.64": true, "10.0.0.65": false, "10.0.0.127": false, // a /26 keeps its last address: not a broadcast
		"10.0.0.128": false, // start of a start/end range
		"10.0.0.200": false, // a /32 has no network address to spare
		"10.0.0.1":   true, "10.0.0.0": true, "10.0.0.255": true,
	} {
		if got := p.IsReserved(netip.MustParseAddr(ip)); got != want {
			t.Errorf("IsReserved(%s) = %v, want %v", ip, got, want)
		}
	}
}

func TestIsAllocatable(t *testing.T) {
	p, err := ParsePool(pool("p", "10.0.0.1", 24, 0, cidr("10.0.0.0/26"), span("10.0.0.100", "10.0.0.110")))
	if err != nil {
		t.Fatalf("ParsePool() = %v", err)
	}
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.0.0.0", false}, {"10.0.0.1", false}, {"10.0.0.2", true}, {"10.0.0.63", true},
		{"10.0.0.64", false}, {"10.0.0.100", true}, {"10.0.0.110", true}, {"10.0.0.111", false},
		{"10.0.0.255", false}, {"fd00::2", false},
	}
	for _, tt := range tests {
		if got := p.IsAllocatable(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("IsAllocatable(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		name    string
		r       v1beta1.IPRange
		want    string
		wantErr string
	}{
		{name: "cidr", r: cidr("10.0.0.0/30"), want: "10.0.0.0/30"},
		{name: "start-end", r: span("10.0.0.5", "10.0.0.9"), want: "10.0.0.5-10.0.0.9"},
		{name: "both forms", r: v1beta1.IPRange{CIDR: "10.0.0.0/30", End: "10.0.0.1"}, wantErr: "give either cidr or start and end, not both"},
		{name: "neither form", r: v1beta1.IPRange{}, wantErr: "give cidr, or both start and end"},
		{name: "bad cidr", r: cidr("10.0.0.0"), wantErr: `cidr "10.0.0.0" is not a CIDR such as 10.10.1.0/26`},
		{name: "host bits", r: cidr("10.0.0.1/30"), wantErr: `cidr "10.0.0.1/30" has host bits set; did you mean 10.0.0.0/30?`},
		{name: "mapped cidr", r: cidr("::ffff:10.0.0.0/126"), wantErr: `cidr "::ffff:10.0.0.0/126": write IPv4 networks in dotted form, not IPv4-mapped IPv6`},
		{name: "bad start", r: span("x", "10.0.0.1"), wantErr: `start "x": not an IP address`},
		{name: "bad end", r: span("10.0.0.1", "y"), wantErr: `end "y": not an IP address`},
		{name: "mixed families", r: span("10.0.0.1", "fd00::1"), wantErr: "start 10.0.0.1 and end fd00::1 are of different address families"},
		{name: "end before start", r: span("10.0.0.9", "10.0.0.5"), wantErr: "end 10.0.0.5 is before start 10.0.0.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRange(tt.r)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseRange() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("ParseRange() = %v, %v, want %s", got, err, tt.want)
			}
		})
	}
}

func TestParseSubnetErrors(t *testing.T) {
	tests := []struct {
		name string
		info v1beta1.SubnetInfo
		want string
	}{
		{name: "bad gateway", info: v1beta1.SubnetInfo{Gateway: "nope", PrefixLength: 24}, want: `gateway "nope": not an IP address`},
		{name: "prefix too long", info: v1beta1.SubnetInfo{Gateway: "10.0.0.1", PrefixLength: 40}, want: "prefixLength 40: must be between 1 and 32 for IPv4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseSubnet(tt.info); err == nil || err.Error() != tt.want {
				t.Fatalf("ParseSubnet() error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLastAddress(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"10.0.0.0/24", "10.0.0.255"}, {"10.0.0.0/8", "10.255.255.255"}, {"10.0.0.0/30", "10.0.0.3"},
		{"10.0.0.7/32", "10.0.0.7"}, {"0.0.0.0/1", "127.255.255.255"}, {"fd00::/120", "fd00::ff"},
		{"fd00::/64", "fd00::ffff:ffff:ffff:ffff"},
	}
	for _, tt := range tests {
		if got := lastAddr(netip.MustParsePrefix(tt.prefix)); got.String() != tt.want {
			t.Errorf("lastAddr(%s) = %s, want %s", tt.prefix, got, tt.want)
		}
	}
}
