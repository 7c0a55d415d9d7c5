package plan

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/podvlan/podvlan/pkg/cni/netconf"
	"github.com/podvlan/podvlan/pkg/ipam"
)

var dualStack = []ipam.IPConfig{
	{Address: netip.MustParsePrefix("10.1.0.5/24"), Gateway: netip.MustParseAddr("10.1.0.1")},
	{Address: netip.MustParsePrefix("10.2.0.5/24"), Gateway: netip.MustParseAddr("10.2.0.1")},
	{Address: netip.MustParsePrefix("fd00::5/64"), Gateway: netip.MustParseAddr("fd00::1")},
}

func routeStrings(rs []netconf.Route) []string {
	var out []string
	for _, r := range rs {
		s := r.Dst.String()
		if r.GW.IsValid() {
			s += " via " + r.GW.String()
		}
		out = append(out, s)
	}
	return out
}

func TestAddressResolvesNextHops(t *testing.T) {
	tests := []struct {
		name   string
		ips    []ipam.IPConfig
		routes []netconf.Route
		want   []string
	}{
		{name: "a route without next hop takes the first gateway of its family", ips: dualStack,
			routes: []netconf.Route{{Dst: netip.MustParsePrefix("192.0.2.0/24")}, {Dst: netip.MustParsePrefix("2001:db8::/32")}},
			want:   []string{"192.0.2.0/24 via 10.1.0.1", "2001:db8::/32 via fd00::1"}},
		{name: "a route's own next hop wins", ips: dualStack,
			routes: []netconf.Route{{Dst: netip.MustParsePrefix("198.51.100.0/24"), GW: netip.MustParseAddr("10.2.0.9")}},
			want:   []string{"198.51.100.0/24 via 10.2.0.9"}},
		{name: "without a gateway of its family the route is on-link", ips: dualStack[:1],
			routes: []netconf.Route{{Dst: netip.MustParsePrefix("2001:db8::/32")}},
			want:   []string{"2001:db8::/32"}},
		{name: "without addresses every route without next hop is on-link",
			routes: []netconf.Route{{Dst: netip.MustParsePrefix("192.0.2.0/24")}},
			want:   []string{"192.0.2.0/24"}},
		{name: "host bits of a destination are cleared", ips: dualStack,
			routes: []netconf.Route{{Dst: netip.MustParsePrefix("192.0.2.7/24")}},
			want:   []string{"192.0.2.0/24 via 10.1.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := routeStrings(Address(tt.routes, tt.ips).Routes); !slices.Equal(got, tt.want) {
				t.Errorf("routes %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResultKernelAndRecordAgree(t *testing.T) {
	routes := []netconf.Route{{Dst: netip.MustParsePrefix("192.0.2.0/24")}, {Dst: netip.MustParsePrefix("2001:db8::/32")}}
	x := Address(routes, dualStack)

	res := x.Result(&current.Interface{Name: "net1"}, types.DNS{})
	kernel := x.KernelRoutes()
	if len(res.Routes) != len(kernel) {
		t.Fatalf("result routes %v, kernel routes %v", res.Routes, kernel)
	}
	for i := range kernel {
		if res.Routes[i].String() != kernel[i].String() {
			t.Errorf("route %d: result %v, kernel %v", i, res.Routes[i], kernel[i])
		}
	}
	for i, ip := range res.IPs {
		if ip.Address.String() != x.KernelIPs()[i].String() || *ip.Interface != 0 {
			t.Errorf("result IP %d = %v, kernel %v", i, ip, x.KernelIPs()[i])
		}
	}

	// What a port records gives CHECK the same routes back.
	var gws []string
	for _, g := range x.Gateways() {
		gws = append(gws, g.String())
	}
	if !slices.Equal(gws, []string{"10.1.0.1", "fd00::1"}) {
		t.Errorf("gateways %v, want the first of each family", gws)
	}
	recorded, err := Recorded(x.AddressStrings(), gws)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := routeStrings(Address(routes, recorded).Routes), routeStrings(x.Routes); !slices.Equal(got, want) {
		t.Errorf("routes from the record %v, want %v", got, want)
	}
}

func TestRecordedRejectsGarbage(t *testing.T) {
	if _, err := Recorded([]string{"10.1.0.5/24", "nonsense"}, nil); err == nil {
		t.Error("no error for a malformed recorded address")
	}
	if _, err := Recorded([]string{"10.1.0.5/24"}, []string{"10.1.0.1/24"}); err == nil {
		t.Error("no error for a malformed recorded gateway")
	}
}

func TestIPNetUnmapsIPv4InIPv6(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.1.0.5/24", "10.1.0.5/24"},
		{"::ffff:10.1.0.5/120", "10.1.0.5/24"},
		{"fd00::5/64", "fd00::5/64"},
	}
	for _, tt := range tests {
		got := IPNet(netip.MustParsePrefix(tt.in))
		if got.String() != tt.want {
			t.Errorf("IPNet(%s) = %s, want %s", tt.in, got.String(), tt.want)
		}
		if tt.want == "10.1.0.5/24" && len(got.IP) != 4 {
			t.Errorf("IPNet(%s) has a %d-byte IP, want 4", tt.in, len(got.IP))
		}
	}
	if IP(netip.Addr{}) != nil {
		t.Error("IP of the zero Addr is not nil")
	}
	if got := IP(netip.MustParseAddr("::ffff:10.1.0.1")); len(got) != 4 {
		t.Errorf("IP of a mapped address has %d bytes, want 4", len(got))
	}
}
