package netconf

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestParseNADAccepts(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   Network
	}{
		{name: "contract example",
			config: `{"cniVersion": "0.3.0", "type": "antrea", "networkType": "vlan", "mtu": 1500, "vlan": 100,
				"ipam": {"type": "antrea", "ippools": ["vlan100-ipv4", "vlan100-ipv6"]}}`,
			want: Network{Namespace: "ns", Name: "nad", CNIVersion: "0.3.0", MTU: 1500, VLAN: 100,
				IPAM: &IPAM{IPPools: []string{"vlan100-ipv4", "vlan100-ipv6"}}}},
		{name: "without ipam the interface gets no address",
			config: `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "vlan": 7}`,
			want:   Network{Namespace: "ns", Name: "nad", CNIVersion: "1.0.0", MTU: 1500, VLAN: 7}},
		{name: "mtu 0 means 1500",
			config: `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "mtu": 0}`,
			want:   Network{Namespace: "ns", Name: "nad", CNIVersion: "1.0.0", MTU: 1500}},
		{name: "jumbo mtu is kept",
			config: `{"cniVersion": "1.1.0", "type": "antrea", "networkType": "vlan", "mtu": 9000}`,
			want:   Network{Namespace: "ns", Name: "nad", CNIVersion: "1.1.0", MTU: 9000}},
		{name: "smallest IPv4 mtu",
			config: `{"cniVersion": "0.4.0", "type": "antrea", "networkType": "vlan", "mtu": 68}`,
			want:   Network{Namespace: "ns", Name: "nad", CNIVersion: "0.4.0", MTU: 68}},
		{name: "largest mtu and VLAN",
			config: `{"cniVersion": "0.3.1", "type": "antrea", "networkType": "vlan", "mtu": 65535, "vlan": 4094}`,
			want:   Network{Namespace: "ns", Name: "nad", CNIVersion: "0.3.1", MTU: 65535, VLAN: 4094}},
		{name: "static addresses, routes and dns",
			config: `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "mtu": 1280,
				"ipam": {"type": "antrea", "addresses": [{"address": "10.1.1.5/24", "gateway": "10.1.1.1"}, {"address": "2001:db8::5/64"}],
				"routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.20.0.0/16", "gw": "10.1.1.254"}],
				"dns": {"nameservers": ["10.1.1.53"], "domain": "example.org", "search": ["example.org"]}}}`,
			want: Network{Namespace: "ns", Name: "nad", CNIVersion: "1.0.0", MTU: 1280, IPAM: &IPAM{
				Addresses: []Address{
					{Address: netip.MustParsePrefix("10.1.1.5/24"), Gateway: netip.MustParseAddr("10.1.1.1")},
					{Address: netip.MustParsePrefix("2001:db8::5/64")},
				},
				Routes: []Route{
					{Dst: netip.MustParsePrefix("0.0.0.0/0")},
					{Dst: netip.MustParsePrefix("10.20.0.0/16"), GW: netip.MustParseAddr("10.1.1.254")},
				},
				DNS: types.DNS{Nameservers: []string{"10.1.1.53"}, Domain: "example.org", Search: []string{"example.org"}},
			}}},
		{name: "standard CNI keys are accepted",
			config: `{"cniVersion": "1.0.0", "name": "whatever", "type": "antrea", "networkType": "vlan",
				"dns": {"nameservers": ["1.1.1.1"]}, "capabilities": {"mac": true, "ips": true}, "args": {"cni": {"x": 1}}}`,
			want: Network{Namespace: "ns", Name: "nad", CNIVersion: "1.0.0", MTU: 1500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ours, err := ParseNAD("ns", "nad", tt.config)
			if err != nil || !ours {
				t.Fatalf("ParseNAD() = %v, ours=%v", err, ours)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("ParseNAD() =\n  %+v (ipam %+v)\nwant\n  %+v (ipam %+v)", *got, got.IPAM, tt.want, tt.want.IPAM)
			}
			if got.Key() != "ns/nad" {
				t.Fatalf("Key() = %q", got.Key())
			}
		})
	}
}

func TestParseNADNotOurs(t *testing.T) {
	tests := []struct {
		name   string
		config string
	}{
		{name: "empty config (Multus reads it from a file)", config: ""},
		{name: "blank config", config: " \n"},
		{name: "another plugin", config: `{"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0"}`},
		{name: "another plugin with antrea IPAM is Multus's to run", config: `{"cniVersion": "0.3.1", "type": "macvlan", "ipam": {"type": "antrea", "ippools": ["p"]}}`},
		{name: "a configuration list", config: `{"cniVersion": "0.3.1", "name": "l", "plugins": [{"type": "antrea"}]}`},
		{name: "type of the wrong JSON kind", config: `{"type": 5}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ours, err := ParseNAD("ns", "nad", tt.config)
			if err != nil || ours || got != nil {
				t.Fatalf("ParseNAD() = %+v, ours=%v, err=%v; want not ours and no error", got, ours, err)
			}
		})
	}
}

func TestParseNADRejects(t *testing.T) {
	const prefix = "NetworkAttachmentDefinition ns/nad: "
	const head = `"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan"`
	tests := []struct {
		name     string
		config   string
		wantOurs bool
		want     string
	}{
		{name: "not JSON", config: `{"type": "antrea",`,
			want: `spec.config: not valid JSON at byte 18: unexpected end of JSON input`},
		{name: "not an object", config: `["antrea"]`,
			want: `spec.config: must be a JSON object`},
		{name: "missing cniVersion", wantOurs: true, config: `{"type": "antrea", "networkType": "vlan"}`,
			want: `spec.config.cniVersion: Required value: one of 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0`},
		{name: "unsupported cniVersion", wantOurs: true, config: `{"cniVersion": "0.2.0", "type": "antrea", "networkType": "vlan"}`,
			want: `spec.config.cniVersion: Unsupported value: "0.2.0": supported values: "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"`},
		{name: "missing networkType", wantOurs: true, config: `{"cniVersion": "1.0.0", "type": "antrea"}`,
			want: `spec.config.networkType: Required value: set "networkType": "vlan"`},
		{name: "unsupported networkType is named", wantOurs: true, config: `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "sriov"}`,
			want: `spec.config.networkType: Unsupported value: "sriov": supported values: "vlan"`},
		{name: "negative VLAN", wantOurs: true, config: `{` + head + `, "vlan": -1}`,
			want: `spec.config.vlan: Invalid value: -1: must be 0 (untagged, or the IPPools' VLAN) or a VLAN ID from 1 to 4094`},
		{name: "VLAN 4095", wantOurs: true, config: `{` + head + `, "vlan": 4095}`,
			want: `spec.config.vlan: Invalid value: 4095: must be 0 (untagged, or the IPPools' VLAN) or a VLAN ID from 1 to 4094`},
		{name: "VLAN as a string", wantOurs: true, config: `{` + head + `, "vlan": "100"}`,
			want: `spec.config.vlan: Invalid value: "100": must be an integer`},
		{name: "mtu below 68", wantOurs: true, config: `{` + head + `, "mtu": 67}`,
			want: `spec.config.mtu: Invalid value: 67: must be between 68 and 65535 (0 or unset means 1500)`},
		{name: "negative mtu", wantOurs: true, config: `{` + head + `, "mtu": -1}`,
			want: `spec.config.mtu: Invalid value: -1: must be between 68 and 65535 (0 or unset means 1500)`},
		{name: "mtu above 65535", wantOurs: true, config: `{` + head + `, "mtu": 65536}`,
			want: `spec.config.mtu: Invalid value: 65536: must be between 68 and 65535 (0 or unset means 1500)`},
		{name: "mtu below 1280 with a static IPv6 address", wantOurs: true,
			config: `{` + head + `, "mtu": 1279, "ipam": {"type": "antrea", "addresses": [{"address": "2001:db8::5/64"}]}}`,
			want:   `spec.config.mtu: Invalid value: 1279: must be at least 1280 with an IPv6 address (RFC 8200)`},
		{name: "ipam without type", wantOurs: true, config: `{` + head + `, "ipam": {"ippools": ["p"]}}`,
			want: `spec.config.ipam.type: Required value: set "type": "antrea"`},
		{name: "ipam of another type", wantOurs: true, config: `{` + head + `, "ipam": {"type": "host-local", "ippools": ["p"]}}`,
			want: `spec.config.ipam.type: Unsupported value: "host-local": supported values: "antrea"`},
		{name: "ipam that assigns nothing", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea"}}`,
			want: `spec.config.ipam.ippools: Required value: an ipam section needs ippools and/or addresses; remove ipam for an interface without addresses`},
		{name: "empty pool name", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": [""]}}`,
			want: `spec.config.ipam.ippools[0]: Required value: the name of an IPPool`},
		{name: "invalid pool name", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": ["Pool_1"]}}`,
			want: `spec.config.ipam.ippools[0]: Invalid value: "Pool_1": not a valid IPPool name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		{name: "pool listed twice", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": ["p", "p"]}}`,
			want: `spec.config.ipam.ippools[1]: Duplicate value: "p"`},
		{name: "three pools", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": ["a", "b", "c"]}}`,
			want: `spec.config.ipam.ippools[2]: Invalid value: "c": at most 2 IPPools: one IPv4 and one IPv6 pool`},
		{name: "pools as a string", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": "p"}}`,
			want: `spec.config.ipam.ippools: Invalid value: "p": must be a list`},
		{name: "static address missing", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "addresses": [{"gateway": "10.0.0.1"}]}}`,
			want: `spec.config.ipam.addresses[0].address: Required value: an address with its prefix length, e.g. 10.1.1.5/24`},
		{name: "static address without prefix", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "addresses": [{"address": "10.0.0.5"}]}}`,
			want: `spec.config.ipam.addresses[0].address: Invalid value: "10.0.0.5": needs a prefix length, e.g. 10.0.0.5/24`},
		{name: "static address that does not parse", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "addresses": [{"address": "10.0.0/24"}]}}`,
			want: `spec.config.ipam.addresses[0].address: Invalid value: "10.0.0/24": not an IP address with prefix length (e.g. 10.1.1.5/24 or 2001:db8::5/64)`},
		{name: "static gateway that does not parse", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "addresses": [{"address": "10.0.0.5/24", "gateway": "x"}]}}`,
			want: `spec.config.ipam.addresses[0].gateway: Invalid value: "x": not an IP address`},
		{name: "static gateway of the other family", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "addresses": [{"address": "10.0.0.5/24", "gateway": "fd00::1"}]}}`,
			want: `spec.config.ipam.addresses[0].gateway: Invalid value: "fd00::1": must be of the address family of 10.0.0.5/24`},
		{name: "static address twice", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "addresses": [{"address": "10.0.0.5/24"}, {"address": "10.0.0.5/16"}]}}`,
			want: `spec.config.ipam.addresses[1].address: Duplicate value: "10.0.0.5/16"`},
		{name: "route without dst", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": ["p"], "routes": [{"gw": "10.0.0.1"}]}}`,
			want: `spec.config.ipam.routes[0].dst: Required value: a destination network, e.g. 0.0.0.0/0 or 10.20.0.0/16`},
		{name: "route dst that does not parse", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": ["p"], "routes": [{"dst": "default"}]}}`,
			want: `spec.config.ipam.routes[0].dst: Invalid value: "default": not a network in CIDR notation, e.g. 10.20.0.0/16`},
		{name: "route dst with host bits", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": ["p"], "routes": [{"dst": "10.20.1.0/16"}]}}`,
			want: `spec.config.ipam.routes[0].dst: Invalid value: "10.20.1.0/16": has host bits set; did you mean 10.20.0.0/16?`},
		{name: "route dst IPv4-mapped", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": ["p"], "routes": [{"dst": "::ffff:10.0.0.0/104"}]}}`,
			want: `spec.config.ipam.routes[0].dst: Invalid value: "::ffff:10.0.0.0/104": write IPv4 networks in dotted form, not IPv4-mapped IPv6`},
		{name: "route gw that does not parse", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": ["p"], "routes": [{"dst": "0.0.0.0/0", "gw": "gw"}]}}`,
			want: `spec.config.ipam.routes[0].gw: Invalid value: "gw": not an IP address`},
		{name: "route gw of the other family", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": ["p"], "routes": [{"dst": "::/0", "gw": "10.0.0.1"}]}}`,
			want: `spec.config.ipam.routes[0].gw: Invalid value: "10.0.0.1": must be of the address family of ::/0`},
		{name: "bad nameserver", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": ["p"], "dns": {"nameservers": ["dns.example"]}}}`,
			want: `spec.config.ipam.dns.nameservers[0]: Invalid value: "dns.example": not an IP address`},
		{name: "a misspelt key is an error, not a silently untagged network", wantOurs: true, config: `{` + head + `, "vlanId": 100}`,
			want: `spec.config.vlanId: Forbidden: unknown field; did you mean "vlan"?`},
		{name: "unknown ipam key", wantOurs: true, config: `{` + head + `, "ipam": {"type": "antrea", "ippools": ["p"], "pools": ["q"]}}`,
			want: `spec.config.ipam.pools: Forbidden: unknown field; did you mean "ippools"?`},
		{name: "a key given twice", wantOurs: true, config: `{` + head + `, "vlan": 100, "vlan": 200}`,
			want: `spec.config.vlan: Forbidden: key given twice`},
		{name: "every problem is reported at once", wantOurs: true,
			config: `{"cniVersion": "9", "type": "antrea", "networkType": "vlan", "vlan": 5000, "mtu": 10, "extra": 1}`,
			want: `[spec.config.extra: Forbidden: unknown field, spec.config.cniVersion: Unsupported value: "9": supported values: "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", ` +
				`spec.config.vlan: Invalid value: 5000: must be 0 (untagged, or the IPPools' VLAN) or a VLAN ID from 1 to 4094, ` +
				`spec.config.mtu: Invalid value: 10: must be between 68 and 65535 (0 or unset means 1500)]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ours, err := ParseNAD("ns", "nad", tt.config)
			if err == nil {
				t.Fatalf("ParseNAD() = %+v, want error", got)
			}
			if ours != tt.wantOurs || got != nil {
				t.Fatalf("ParseNAD() ours = %v, network = %+v; want ours %v, no network", ours, got, tt.wantOurs)
			}
			if err.Error() != prefix+tt.want {
				t.Fatalf("ParseNAD() error =\n  %s\nwant\n  %s", err, prefix+tt.want)
			}
		})
	}
}

func TestParseNADAcceptsEverySupportedCNIVersion(t *testing.T) {
	for _, v := range SupportedCNIVersions {
		if _, _, err := ParseNAD("ns", "nad", `{"cniVersion": "`+v+`", "type": "antrea", "networkType": "vlan"}`); err != nil {
			t.Errorf("cniVersion %s: %v", v, err)
		}
	}
}

func TestParseNADErrorNamesLongValues(t *testing.T) {
	_, _, err := ParseNAD("team-a", "vlan100", `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "macvtap"}`)
	if err == nil || !strings.HasPrefix(err.Error(), "NetworkAttachmentDefinition team-a/vlan100: spec.config.networkType: ") ||
		!strings.Contains(err.Error(), `"macvtap"`) {
		t.Fatalf("error = %v", err)
	}
}
