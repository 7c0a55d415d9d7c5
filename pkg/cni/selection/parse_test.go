package selection

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/podvlan/podvlan/internal/strictjson"
)

// brief is the part of an Element most cases look at.
type brief struct {
	Network   string
	Interface string
	Requested bool
}

func briefs(as []Element) []brief {
	var out []brief
	for _, a := range as {
		out = append(out, brief{a.NetworkKey(), a.Interface, a.InterfaceRequested})
	}
	return out
}

var acceptCases = []struct {
	name       string
	annotation string
	want       []brief
}{
	{name: "empty annotation selects nothing", annotation: ""},
	{name: "blank annotation selects nothing", annotation: "  \n"},
	{name: "empty JSON list selects nothing", annotation: "[]"},
	{name: "shorthand name takes the Pod's namespace and eth1", annotation: "vlan100",
		want: []brief{{"pod-ns/vlan100", "eth1", false}}},
	{name: "shorthand namespace/name", annotation: "networks/vlan100",
		want: []brief{{"networks/vlan100", "eth1", false}}},
	{name: "shorthand name@interface", annotation: "vlan100@data0",
		want: []brief{{"pod-ns/vlan100", "data0", true}}},
	{name: "shorthand namespace/name@interface", annotation: "networks/vlan100@data0",
		want: []brief{{"networks/vlan100", "data0", true}}},
	{name: "shorthand accepts any valid Linux interface name, as Multus does", annotation: "vlan100@Data_1.100",
		want: []brief{{"pod-ns/vlan100", "Data_1.100", true}}},
	{name: "shorthand trims white space around items and parts", annotation: " a , ns / b @ net9 ",
		want: []brief{{"pod-ns/a", "eth1", false}, {"ns/b", "net9", true}}},
	{name: "interfaces are numbered in order", annotation: "a,b,c",
		want: []brief{{"pod-ns/a", "eth1", false}, {"pod-ns/b", "eth2", false}, {"pod-ns/c", "eth3", false}}},
	{name: "generated names skip names requested later in the list", annotation: "a,b@eth1,c,d@eth3",
		want: []brief{{"pod-ns/a", "eth2", false}, {"pod-ns/b", "eth1", true}, {"pod-ns/c", "eth4", false}, {"pod-ns/d", "eth3", true}}},
	{name: "one network may be attached twice", annotation: "a,a",
		want: []brief{{"pod-ns/a", "eth1", false}, {"pod-ns/a", "eth2", false}}},
	{name: "network names may be DNS subdomains", annotation: "vlan.100",
		want: []brief{{"pod-ns/vlan.100", "eth1", false}}},
	{name: "JSON with name only", annotation: `[{"name": "vlan100"}]`,
		want: []brief{{"pod-ns/vlan100", "eth1", false}}},
	{name: "JSON with namespace and interface", annotation: `[{"name": "vlan200", "namespace": "networks", "interface": "eth200"}, {"name": "x"}]`,
		want: []brief{{"networks/vlan200", "eth200", true}, {"pod-ns/x", "eth1", false}}},
	{name: "JSON over several lines", annotation: "[\n  {\"name\": \"a\"},\n  {\"name\": \"b\"}\n]\n",
		want: []brief{{"pod-ns/a", "eth1", false}, {"pod-ns/b", "eth2", false}}},
}

func TestParseAccepts(t *testing.T) {
	for _, tt := range acceptCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("pod-ns", tt.annotation)
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			if !reflect.DeepEqual(briefs(got), tt.want) {
				t.Fatalf("Parse() = %+v, want %+v", briefs(got), tt.want)
			}
			for i, a := range got {
				if a.Index != i || a.Selection.InterfaceRequest != a.Interface || a.Selection.Namespace != a.Namespace || a.Selection.Name != a.Name {
					t.Fatalf("attachment %d inconsistent: %+v", i, a)
				}
			}
		})
	}
}

func TestParseReadsRequests(t *testing.T) {
	got, err := Parse("pod-ns", `[{"name": "a", "mac": "02:AA:00:00:00:01", "ips": ["10.1.1.5/24", "2001:db8::5"],
		"default-route": ["10.1.1.1", "2001:db8::1"]}]`)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	a := got[0]
	if a.MAC.String() != "02:aa:00:00:00:01" {
		t.Errorf("MAC = %s", a.MAC)
	}
	var ips []string
	for _, ip := range a.IPs {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"10.1.1.5/24", "2001:db8::5"}) || !a.IPs[0].HasPrefix() || a.IPs[1].HasPrefix() {
		t.Errorf("IPs = %v", a.IPs)
	}
	if !slices.Equal(a.DefaultRoute, []netip.Addr{netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("2001:db8::1")}) {
		t.Errorf("DefaultRoute = %v", a.DefaultRoute)
	}
	if len(a.Selection.GatewayRequest) != 2 || a.Selection.GatewayRequest[0].String() != "10.1.1.1" {
		t.Errorf("Element.GatewayRequest = %v", a.Selection.GatewayRequest)
	}
	if a.Selection.MacRequest != "02:AA:00:00:00:01" || !slices.Equal(a.Selection.IPRequest, []string{"10.1.1.5/24", "2001:db8::5"}) {
		t.Errorf("Element = %+v", a.Selection)
	}
}

func TestParsePassesOtherSpecFieldsThrough(t *testing.T) {
	got, err := Parse("pod-ns", `[{"name": "a", "cni-args": {"k": "v"}, "portMappings": [{"hostPort": 80, "containerPort": 8080}],
		"bandwidth": {"ingressRate": 1000}, "infiniband-guid": "g", "ipam-claim-reference": "claim"}]`)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	e := got[0].Selection
	if e.CNIArgs == nil || (*e.CNIArgs)["k"] != "v" || len(e.PortMappingsRequest) != 1 || e.PortMappingsRequest[0].ContainerPort != 8080 ||
		e.BandwidthRequest == nil || e.BandwidthRequest.IngressRate != 1000 || e.InfinibandGUIDRequest != "g" || e.IPAMClaimReference != "claim" {
		t.Fatalf("Element = %+v", e)
	}
}

const key = "k8s.v1.cni.cncf.io/networks"

var rejectCases = []struct {
	name       string
	annotation string
	want       string
}{
	{name: "unquoted value points at it and says how to fix it",
		annotation: `[{"name": vlan100}]`,
		want:       key + `: malformed JSON at line 1, column 11 (near ` + "`" + `[{"name": vlan100}]` + "`" + `): invalid character 'v' looking for beginning of value; text values must be in double quotes: write "vlan100"`},
	{name: "unquoted key",
		annotation: `[{name: "vlan100"}]`,
		want:       key + `: malformed JSON at line 1, column 3 (near ` + "`" + `[{name: "vlan100"}` + "`" + `): invalid character 'n' looking for beginning of object key string; keys must be in double quotes: write "name"`},
	{name: "single quotes",
		annotation: `[{'name': 'a'}]`,
		want:       key + `: malformed JSON at line 1, column 3 (near ` + "`" + `[{'name': 'a'}]` + "`" + `): invalid character '\'' looking for beginning of object key string; use double quotes ("), not single quotes`},
	{name: "trailing comma",
		annotation: `[{"name": "a"},]`,
		want:       key + `: malformed JSON at line 1, column 16 (near ` + "`" + `[{"name": "a"},]` + "`" + `): invalid character ']' looking for beginning of value; remove the comma before ]`},
	{name: "missing closing bracket",
		annotation: `[{"name": "a"}`,
		want:       key + `: malformed JSON at line 1, column 14 (near ` + "`" + `[{"name": "a"}` + "`" + `): unexpected end of JSON input; the text ends too early: check for a missing closing ] or }`},
	{name: "error on a later line gives line and column",
		annotation: "[\n  {\"name\": \"a\"},\n  {\"name\": b}\n]",
		want:       key + `: malformed JSON at line 3, column 12 (near ` + "`" + `"}, {"name": b} ]` + "`" + `): invalid character 'b' looking for beginning of value; text values must be in double quotes: write "b"`},
	{name: "other syntax errors get no hint",
		annotation: `[{"name" "a"}]`,
		want:       key + `: malformed JSON at line 1, column 10 (near ` + "`" + `[{"name" "a"}]` + "`" + `): invalid character '"' after object key`},
	{name: "an object instead of a list",
		annotation: `{"name": "a"}`,
		want:       key + `: must be a JSON list: wrap the object in [ ], e.g. [{"name": "vlan100"}]`},
	{name: "a quoted name instead of a list",
		annotation: `"vlan100"`,
		want:       key + `: must be a JSON list of objects (e.g. [{"name": "vlan100"}]) or a comma-separated list of names without quotes (e.g. vlan100,other-ns/vlan200@eth5)`},
	{name: "a list element that is not an object",
		annotation: `["vlan100"]`,
		want:       key + `[0]: Invalid value: "vlan100": must be an object such as {"name": "vlan100"}`},
	{name: "a misspelt key suggests the right one",
		annotation: `[{"name": "a", "interfce": "net1"}]`,
		want:       key + `[0].interfce: Forbidden: unknown field; did you mean "interface"?`},
	{name: "an unknown key is named",
		annotation: `[{"name": "a", "vlan": 5}]`,
		want:       key + `[0].vlan: Forbidden: unknown field`},
	{name: "a key given twice",
		annotation: `[{"name": "a", "name": "b"}]`,
		want:       key + `[0].name: Forbidden: key given twice`},
	{name: "ips as a string",
		annotation: `[{"name": "a", "ips": "10.1.1.5/24"}]`,
		want:       key + `[0].ips: Invalid value: "10.1.1.5/24": must be a list`},
	{name: "name as a number",
		annotation: `[{"name": 5}]`,
		want:       key + `[0].name: Invalid value: 5: must be a string`},
	{name: "a null list element",
		annotation: `[{"name": "a"}, null]`,
		want:       key + `[1]: Invalid value: null: must be an object such as {"name": "vlan100"}`},
	{name: "a key in another case suggests the right one",
		annotation: `[{"Name": "a"}]`,
		want:       key + `[0].Name: Forbidden: unknown field; did you mean "name"?`},
	{name: "a misspelt nested key suggests the right one",
		annotation: `[{"name": "a", "portMappings": [{"hostPort": 80}, {"hostPrt": 80}]}]`,
		want:       key + `[0].portMappings[1].hostPrt: Forbidden: unknown field; did you mean "hostPort"?`},
	{name: "a nested value of the wrong type is named with its list index",
		annotation: `[{"name": "a", "ips": ["10.1.1.5/24", 5]}]`,
		want:       key + `[0].ips[1]: Invalid value: 5: must be a string`},
	{name: "unknown keys are reported together with a wrong type in another element",
		annotation: `[{"name": "a", "vlan": 5}, {"name": "b", "bandwidth": {"ingressRate": "fast"}}]`,
		want:       `[` + key + `[0].vlan: Forbidden: unknown field, ` + key + `[1].bandwidth.ingressRate: Invalid value: "fast": must be an integer]`},
	{name: "missing name",
		annotation: `[{"interface": "net1"}]`,
		want:       key + `[0].name: Required value: the name of a NetworkAttachmentDefinition`},
	{name: "empty shorthand entry",
		annotation: "a,,b",
		want:       key + `[1]: Required value: empty entry: remove the extra comma`},
	{name: "trailing comma in shorthand",
		annotation: "a,",
		want:       key + `[1]: Required value: empty entry: remove the extra comma`},
	{name: "two slashes",
		annotation: "a/b/c",
		want:       key + `[0]: Invalid value: "a/b/c": use at most one '/', as in namespace/name@interface`},
	{name: "two at signs",
		annotation: "a@b@c",
		want:       key + `[0]: Invalid value: "a@b@c": use at most one '@', as in namespace/name@interface`},
	{name: "nothing before the slash",
		annotation: "/a",
		want:       key + `[0].namespace: Required value: nothing before '/': write namespace/name or just name`},
	{name: "nothing after the at sign",
		annotation: "a@",
		want:       key + `[0].interface: Required value: nothing after '@': write name@interface or just name`},
	{name: "nothing before the at sign",
		annotation: "@net1",
		want:       key + `[0].name: Required value: the name of a NetworkAttachmentDefinition`},
	{name: "upper-case network name",
		annotation: "Vlan100",
		want:       key + `[0].name: Invalid value: "Vlan100": not a valid NetworkAttachmentDefinition name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
	{name: "namespace with a dot",
		annotation: "my.ns/a",
		want:       key + `[0].namespace: Invalid value: "my.ns": not a valid namespace name: must not contain dots`},
	{name: "the primary interface",
		annotation: "a@eth0",
		want:       key + `[0].interface: Invalid value: "eth0": is the Pod's primary interface; choose another name`},
	{name: "interface name too long",
		annotation: `[{"name": "a", "interface": "a-very-long-name0"}]`,
		want:       key + `[0].interface: Invalid value: "a-very-long-name0": not a valid interface name: must be at most 15 characters, not 17`},
	{name: "interface name with a slash",
		annotation: `[{"name": "a", "interface": "net/1"}]`,
		want:       key + `[0].interface: Invalid value: "net/1": not a valid interface name: must not contain '/'`},
	{name: "duplicate interface names",
		annotation: "a@net1,b@net1",
		want:       key + `[1].interface: Duplicate value: "net1": already requested by ` + key + `[0]`},
	{name: "bad MAC",
		annotation: `[{"name": "a", "mac": "02:00:00:00:00"}]`,
		want:       key + `[0].mac: Invalid value: "02:00:00:00:00": not a MAC address (write six hex bytes, e.g. 02:00:00:00:00:01)`},
	{name: "multicast MAC",
		annotation: `[{"name": "a", "mac": "03:00:00:00:00:01"}]`,
		want:       key + `[0].mac: Invalid value: "03:00:00:00:00:01": is a multicast address (the lowest bit of the first byte is set); an interface needs a unicast MAC`},
	{name: "one MAC on two interfaces",
		annotation: `[{"name": "a", "mac": "02:00:00:00:00:01"}, {"name": "b", "mac": "02-00-00-00-00-01"}]`,
		want:       key + `[1].mac: Duplicate value: "02-00-00-00-00-01": already requested by ` + key + `[0]; two interfaces of a Pod cannot share a MAC`},
	{name: "bad static IP",
		annotation: `[{"name": "a", "ips": ["10.1.1.300/24"]}]`,
		want:       key + `[0].ips[0]: Invalid value: "10.1.1.300/24": not an IP address with prefix length (e.g. 10.1.1.5/24 or 2001:db8::5/64)`},
	{name: "one static IP twice",
		annotation: `[{"name": "a", "ips": ["10.1.1.5/24", "10.1.1.5"]}]`,
		want:       key + `[0].ips[1]: Duplicate value: "10.1.1.5"`},
	{name: "bad default route",
		annotation: `[{"name": "a", "default-route": ["10.1.1"]}]`,
		want:       key + `[0].default-route[0]: Invalid value: "10.1.1": not an IP address`},
	{name: "two default routes of one family",
		annotation: `[{"name": "a", "default-route": ["10.1.1.1"]}, {"name": "b", "default-route": ["10.2.2.1"]}]`,
		want:       key + `[1].default-route[0]: Invalid value: "10.2.2.1": a Pod has one default route per address family and ` + key + `[0] already requests the IPv4 one`},
	{name: "every problem is reported at once",
		annotation: `[{"name": "", "interface": "eth0"}, {"name": "b", "mac": "x"}]`,
		want: `[` + key + `[0].name: Required value: the name of a NetworkAttachmentDefinition, ` +
			key + `[0].interface: Invalid value: "eth0": is the Pod's primary interface; choose another name, ` +
			key + `[1].mac: Invalid value: "x": not a MAC address (write six hex bytes, e.g. 02:00:00:00:00:01)]`},
	{name: "more than 100 networks",
		annotation: strings.Repeat("a,", 100) + "a",
		want:       key + `: Too many: 101: must have at most 100 items`},
}

func TestParseRejects(t *testing.T) {
	for _, tt := range rejectCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("pod-ns", tt.annotation)
			if err == nil {
				t.Fatalf("Parse() = %+v, want error", briefs(got))
			}
			if err.Error() != tt.want {
				t.Fatalf("Parse() error =\n  %s\nwant\n  %s", err, tt.want)
			}
		})
	}
}

func TestParseNeedsThePodNamespace(t *testing.T) {
	_, err := Parse("", "a")
	if err == nil || err.Error() != "parse network selection: the Pod's namespace is empty" {
		t.Fatalf("Parse() error = %v", err)
	}
}

// The shape used for checking must list exactly the keys of the library's type, so that a new
// field there is not refused as unknown here.
func TestElementShapeMatchesTheLibraryType(t *testing.T) {
	ours := strictjson.Fields(reflect.TypeFor[elementShape]())
	theirs := strictjson.Fields(reflect.TypeFor[nadv1.NetworkSelectionElement]())
	var oursKeys, theirsKeys []string
	for k := range ours {
		oursKeys = append(oursKeys, k)
	}
	for k := range theirs {
		theirsKeys = append(theirsKeys, k)
	}
	slices.Sort(oursKeys)
	slices.Sort(theirsKeys)
	if !slices.Equal(oursKeys, theirsKeys) {
		t.Fatalf("elementShape keys %v, NetworkSelectionElement keys %v", oursKeys, theirsKeys)
	}
}
