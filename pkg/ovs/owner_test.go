package ovs

import (
	"reflect"
	"strings"
	"testing"
)

func validOwner() PortOwner {
	return PortOwner{
		PodNamespace: "team-a", PodName: "web-0", PodUID: "0b7e2a6c-1f0e-4c2b-9d55-3c1f2a7e9b10",
		ContainerID: "c0ffee", IfName: "eth1", Network: "networks/vlan100",
		Addresses: []string{"10.10.1.5/24", "fd00:10::5/64"},
	}
}

func TestPortOwnerExternalIDsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		owner PortOwner
	}{
		{"every field set", validOwner()},
		{"no addresses", func() PortOwner { o := validOwner(); o.Addresses = nil; return o }()},
		{"no pod UID and no network", func() PortOwner { o := validOwner(); o.PodUID, o.Network = "", ""; return o }()},
		{"one address", func() PortOwner { o := validOwner(); o.Addresses = []string{"192.0.2.1/32"}; return o }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ownerFromExternalIDs(tc.owner.externalIDs())
			if !ok {
				t.Fatal("decoding our own encoding reported a foreign port")
			}
			if !reflect.DeepEqual(got, tc.owner) {
				t.Fatalf("round trip changed the owner:\n got %+v\nwant %+v", got, tc.owner)
			}
		})
	}
}

func TestOwnerFromExternalIDsRejectsRowsThatAreNotOurPodPorts(t *testing.T) {
	for _, tc := range []struct {
		name string
		ids  map[string]string
	}{
		{"no external_ids", nil},
		{"another owner", map[string]string{OwnerKey: "antrea", RoleKey: RolePod, ContainerIDKey: "x"}},
		{"our uplink", map[string]string{OwnerKey: OwnerValue, RoleKey: RoleUplink}},
		{"our bridge", map[string]string{OwnerKey: OwnerValue, RoleKey: RoleBridge}},
		{"pod keys without our mark", map[string]string{ContainerIDKey: "x", IfNameKey: "eth1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := ownerFromExternalIDs(tc.ids); ok {
				t.Fatalf("ownerFromExternalIDs(%v) claimed a row that is not ours", tc.ids)
			}
		})
	}
}

func TestPortOwnerValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*PortOwner)
		wantErr string
	}{
		{"complete owner is valid", func(*PortOwner) {}, ""},
		{"empty pod UID is allowed", func(o *PortOwner) { o.PodUID = "" }, ""},
		{"missing container ID", func(o *PortOwner) { o.ContainerID = "" }, "container ID is empty"},
		{"missing interface name", func(o *PortOwner) { o.IfName = "" }, "interface name is empty"},
		{"missing pod name", func(o *PortOwner) { o.PodName = "" }, "pod name is empty"},
		{"missing pod namespace", func(o *PortOwner) { o.PodNamespace = "" }, "pod namespace is empty"},
		{"network name alone (a Multus delegate) is allowed", func(o *PortOwner) { o.Network = "vlan100" }, ""},
		{"network with an empty namespace", func(o *PortOwner) { o.Network = "/vlan100" }, "neither a name nor namespace/name"},
		{"network with two slashes", func(o *PortOwner) { o.Network = "a/b/c" }, "neither a name nor namespace/name"},
		{"address without prefix length", func(o *PortOwner) { o.Addresses = []string{"10.0.0.1"} }, "not in CIDR notation"},
		{"address with a comma", func(o *PortOwner) { o.Addresses = []string{"10.0.0.1/24,10.0.0.2/24"} }, "not in CIDR notation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := validOwner()
			tc.mutate(&o)
			err := o.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestPortOwnerEqual(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*PortOwner)
		equal  bool
	}{
		{"identical", func(*PortOwner) {}, true},
		{"other container", func(o *PortOwner) { o.ContainerID = "other" }, false},
		{"other pod UID", func(o *PortOwner) { o.PodUID = "other" }, false},
		{"other interface", func(o *PortOwner) { o.IfName = "eth2" }, false},
		{"other network", func(o *PortOwner) { o.Network = "networks/vlan200" }, false},
		{"other addresses", func(o *PortOwner) { o.Addresses = o.Addresses[:1] }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := validOwner(), validOwner()
			tc.mutate(&b)
			if got := a.Equal(b); got != tc.equal {
				t.Fatalf("Equal() = %v, want %v", got, tc.equal)
			}
		})
	}
}

func TestValidateInterfaceName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		iface string
		ok    bool
	}{
		{"ordinary", "veth1234abcd", true},
		{"fifteen bytes", "abcdefghijklmno", true},
		{"sixteen bytes", "abcdefghijklmnop", false},
		{"empty", "", false},
		{"dot", ".", false},
		{"dot dot", "..", false},
		{"slash", "a/b", false},
		{"colon", "eth0:1", false},
		{"space", "eth 0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := validateInterfaceName(tc.iface); (err == nil) != tc.ok {
				t.Fatalf("validateInterfaceName(%q) = %v, want ok=%v", tc.iface, err, tc.ok)
			}
		})
	}
}

func FuzzOwnerFromExternalIDs(f *testing.F) {
	f.Add("ns", "pod", "uid", "cid", "eth1", "ns/net", "10.0.0.1/24")
	f.Fuzz(func(t *testing.T, ns, pod, uid, cid, ifname, network, addrs string) {
		ids := ourMarks(RolePod)
		for k, v := range map[string]string{
			PodNamespaceKey: ns, PodNameKey: pod, PodUIDKey: uid, ContainerIDKey: cid,
			IfNameKey: ifname, NetworkKey: network, AddressesKey: addrs,
		} {
			if v != "" {
				ids[k] = v
			}
		}
		owner, ok := ownerFromExternalIDs(ids)
		if !ok {
			t.Fatal("a row with our marks was not decoded")
		}
		// Whatever was decoded encodes back to the same map.
		if got := owner.externalIDs(); !reflect.DeepEqual(got, ids) {
			t.Fatalf("re-encoding changed external_ids:\n got %v\nwant %v", got, ids)
		}
	})
}
