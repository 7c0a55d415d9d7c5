package ovs

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/podvlan/podvlan/pkg/ovs/vswitchd"
)

func TestManagementReasons(t *testing.T) {
	eth0 := linkFact{Index: 2, Name: "eth0"}
	eth1 := linkFact{Index: 3, Name: "eth1"}
	addrs := func(kv ...any) map[int][]netip.Addr {
		m := map[int][]netip.Addr{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(int)] = append(m[kv[i].(int)], netip.MustParseAddr(kv[i+1].(string)))
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		facts   linkFacts
		nodeIPs []string
		want    map[string]string
	}{
		{
			name:    "interface holding the node IP",
			facts:   linkFacts{links: []linkFact{eth0, eth1}, addrs: addrs(2, "192.0.2.10", 3, "198.51.100.1")},
			nodeIPs: []string{"192.0.2.10"},
			want:    map[string]string{"eth0": "holds node IP 192.0.2.10"},
		},
		{
			name:    "IPv6 node IP",
			facts:   linkFacts{links: []linkFact{eth0, eth1}, addrs: addrs(3, "2001:db8::10")},
			nodeIPs: []string{"2001:db8::10"},
			want:    map[string]string{"eth1": "holds node IP 2001:db8::10"},
		},
		{
			name:  "IPv4 default route",
			facts: linkFacts{links: []linkFact{eth0, eth1}, defaultRoutes: []defaultRoute{{LinkIndex: 2, Table: unix.RT_TABLE_MAIN}}},
			want:  map[string]string{"eth0": "carries the IPv4 default route"},
		},
		{
			name:  "IPv6 default route in another table",
			facts: linkFacts{links: []linkFact{eth0, eth1}, defaultRoutes: []defaultRoute{{LinkIndex: 3, IPv6: true, Table: 100}}},
			want:  map[string]string{"eth1": "carries the IPv6 default route of routing table 100"},
		},
		{
			name: "node IP and both default routes on one interface",
			facts: linkFacts{links: []linkFact{eth0}, addrs: addrs(2, "192.0.2.10"), defaultRoutes: []defaultRoute{
				{LinkIndex: 2, Table: unix.RT_TABLE_MAIN}, {LinkIndex: 2, IPv6: true, Table: unix.RT_TABLE_MAIN},
			}},
			nodeIPs: []string{"192.0.2.10"},
			want:    map[string]string{"eth0": "holds node IP 192.0.2.10 and carries the IPv4 default route and carries the IPv6 default route"},
		},
		{
			name: "member of a bridge that holds the node IP",
			facts: linkFacts{
				links: []linkFact{{Index: 5, Name: "br0"}, {Index: 2, Name: "eth0", MasterIndex: 5}, eth1},
				addrs: addrs(5, "192.0.2.10"),
			},
			nodeIPs: []string{"192.0.2.10"},
			want: map[string]string{
				"br0":  "holds node IP 192.0.2.10",
				"eth0": "is a member of br0, which holds node IP 192.0.2.10",
			},
		},
		{
			name: "parent of a VLAN device under a bond with the default route",
			facts: linkFacts{
				links: []linkFact{
					{Index: 7, Name: "bond0.10", LowerIndex: 6}, {Index: 6, Name: "bond0"},
					{Index: 2, Name: "eth0", MasterIndex: 6}, {Index: 3, Name: "eth1", MasterIndex: 6},
					{Index: 4, Name: "eth2"},
				},
				defaultRoutes: []defaultRoute{{LinkIndex: 7, Table: unix.RT_TABLE_MAIN}},
			},
			want: map[string]string{
				"bond0.10": "carries the IPv4 default route",
				"bond0":    "is the lower device of bond0.10, which carries the IPv4 default route",
				"eth0":     "is a member of bond0, which is the lower device of bond0.10, which carries the IPv4 default route",
				"eth1":     "is a member of bond0, which is the lower device of bond0.10, which carries the IPv4 default route",
			},
		},
		{
			name:    "addresses that are not node IPs and no default route",
			facts:   linkFacts{links: []linkFact{eth0, eth1}, addrs: addrs(2, "10.0.0.1", 3, "fe80::1")},
			nodeIPs: []string{"192.0.2.10"},
			want:    map[string]string{},
		},
		{
			name:  "default route through a link of another namespace is ignored",
			facts: linkFacts{links: []linkFact{eth0}, defaultRoutes: []defaultRoute{{LinkIndex: 42}}},
			want:  map[string]string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ips []netip.Addr
			for _, s := range tc.nodeIPs {
				ips = append(ips, netip.MustParseAddr(s))
			}
			if got := managementReasons(tc.facts, ips); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("managementReasons() =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

func TestPlanUplinks(t *testing.T) {
	port := func(name string, ids map[string]string) *vswitchd.Port {
		return &vswitchd.Port{UUID: "uuid-" + name, Name: name, ExternalIDs: ids}
	}
	uplink := func(name string) *vswitchd.Port { return port(name, ourMarks(RoleUplink)) }
	podPort := func(name string) *vswitchd.Port { return port(name, ourMarks(RolePod)) }
	foreign := func(name string) *vswitchd.Port { return port(name, map[string]string{"owner": "admin"}) }
	bridge := func(ports ...*vswitchd.Port) map[string]*vswitchd.Port {
		m := map[string]*vswitchd.Port{}
		for _, p := range ports {
			m[p.Name] = p
		}
		return m
	}
	present := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	for _, tc := range []struct {
		name       string
		desired    []string
		management map[string]string
		present    map[string]bool
		ports      map[string]map[string]*vswitchd.Port
		want       uplinkPlan
	}{
		{
			name:    "new interfaces are added",
			desired: []string{"eth1", "eth2"}, present: present("eth1", "eth2"),
			ports: map[string]map[string]*vswitchd.Port{"br-sec": bridge(port("br-sec", nil))},
			want:  uplinkPlan{add: []string{"eth1", "eth2"}},
		},
		{
			name:    "our uplinks are kept and the unlisted one removed",
			desired: []string{"eth1"}, present: present("eth1", "eth2"),
			ports: map[string]map[string]*vswitchd.Port{"br-sec": bridge(uplink("eth1"), uplink("eth2"))},
			want:  uplinkPlan{keep: []string{"eth1"}, remove: []string{"eth2"}},
		},
		{
			name:    "ports we did not mark are never removed",
			desired: nil,
			ports:   map[string]map[string]*vswitchd.Port{"br-sec": bridge(foreign("eth9"), podPort("veth1"), uplink("eth2"))},
			want:    uplinkPlan{remove: []string{"eth2"}},
		},
		{
			name:    "an unmarked port of the listed name is adopted",
			desired: []string{"eth1"}, present: present("eth1"),
			ports: map[string]map[string]*vswitchd.Port{"br-sec": bridge(foreign("eth1"))},
			want:  uplinkPlan{adopt: []string{"eth1"}},
		},
		{
			name:    "a missing device is reported and the present one added",
			desired: []string{"eth1", "eth2"}, present: present("eth2"),
			ports: map[string]map[string]*vswitchd.Port{"br-sec": bridge()},
			want:  uplinkPlan{add: []string{"eth2"}, missing: []string{"eth1"}},
		},
		{
			name:    "an attached uplink whose device vanished is kept and reported",
			desired: []string{"eth1"}, present: present(),
			ports: map[string]map[string]*vswitchd.Port{"br-sec": bridge(uplink("eth1"))},
			want:  uplinkPlan{keep: []string{"eth1"}, missing: []string{"eth1"}},
		},
		{
			name:    "a management interface is refused and, if attached, left alone",
			desired: []string{"eth0", "eth1"}, present: present("eth0", "eth1"),
			management: map[string]string{"eth0": "carries the IPv4 default route"},
			ports:      map[string]map[string]*vswitchd.Port{"br-sec": bridge(uplink("eth0"))},
			want: uplinkPlan{
				add:     []string{"eth1"},
				refused: map[string]string{"eth0": "carries the IPv4 default route"},
			},
		},
		{
			name:    "an interface on another bridge is a conflict",
			desired: []string{"eth1"}, present: present("eth1"),
			ports: map[string]map[string]*vswitchd.Port{"br-sec": bridge(), "br-int": bridge(foreign("eth1"))},
			want:  uplinkPlan{conflicts: []string{"interface eth1 is already a port of bridge br-int"}},
		},
		{
			name:    "a Pod port of the listed name is a conflict",
			desired: []string{"veth1"}, present: present("veth1"),
			ports: map[string]map[string]*vswitchd.Port{"br-sec": bridge(podPort("veth1"))},
			want:  uplinkPlan{conflicts: []string{"interface veth1 is a Pod port of bridge br-sec"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := planUplinks("br-sec", tc.desired, tc.management, tc.present, tc.ports)
			if tc.want.refused == nil {
				tc.want.refused = map[string]string{}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("planUplinks() =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestUplinkPlanErrorsAreTyped(t *testing.T) {
	plan := uplinkPlan{missing: []string{"eth3"}, refused: map[string]string{"eth0": "holds node IP 192.0.2.10"}}
	err := errors.Join(plan.errors("br-sec")...)
	var missing *MissingInterfacesError
	if !errors.As(err, &missing) || !reflect.DeepEqual(missing.Names, []string{"eth3"}) {
		t.Fatalf("errors.As(%v) found no MissingInterfacesError naming eth3", err)
	}
	var refused *ManagementInterfacesError
	if !errors.As(err, &refused) || !strings.Contains(refused.Error(), "eth0 (holds node IP 192.0.2.10)") {
		t.Fatalf("errors.As(%v) found no ManagementInterfacesError naming eth0 and its reason", err)
	}
}

func TestValidateUplinkNames(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ifaces  []string
		wantErr string
	}{
		{"none", nil, ""},
		{"eight", []string{"e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8"}, ""},
		{"nine", []string{"e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"}, "at most 8"},
		{"duplicate", []string{"e1", "e1"}, "listed twice"},
		{"the bridge itself", []string{"br-sec"}, "bridge's own interface"},
		{"invalid name", []string{"this-name-is-too-long"}, "must be at most 15 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateUplinkNames("br-sec", tc.ifaces)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("validateUplinkNames(%v) = %v, want error containing %q", tc.ifaces, err, tc.wantErr)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestJudgePort(t *testing.T) {
	for _, tc := range []struct {
		name      string
		iface     vswitchd.Interface
		applied   bool
		wantReady bool
		wantErr   string
	}{
		{"ofport assigned", vswitchd.Interface{Ofport: ptr(7)}, true, true, ""},
		{"ofport assigned before cur_cfg caught up", vswitchd.Interface{Ofport: ptr(7)}, false, true, ""},
		{"nothing yet and config not applied", vswitchd.Interface{}, false, false, ""},
		{"error left by an earlier config is not final", vswitchd.Interface{Ofport: ptr(-1), Error: ptr("old")}, false, false, ""},
		{"vswitchd error after applying", vswitchd.Interface{Ofport: ptr(-1), Error: ptr("could not open network device x (No such device)")}, true, false, "No such device"},
		{"ofport -1 without error text", vswitchd.Interface{Ofport: ptr(-1)}, true, false, "ofport -1"},
		{"applied but ofport still unset keeps waiting", vswitchd.Interface{}, true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready, err := judgePort("p", &tc.iface, tc.applied)
			if ready != tc.wantReady {
				t.Fatalf("ready = %v, want %v", ready, tc.wantReady)
			}
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			var notReady *PortNotReadyError
			if err != nil && !errors.As(err, &notReady) {
				t.Fatalf("err = %T, want *PortNotReadyError", err)
			}
		})
	}
}

func TestJudgeBridge(t *testing.T) {
	netdev := BridgeConfig{Name: "br-sec", DatapathType: DatapathNetdev}
	system := BridgeConfig{Name: "br-sec", DatapathType: DatapathSystem}
	for _, tc := range []struct {
		name      string
		cfg       BridgeConfig
		bridge    vswitchd.Bridge
		local     *vswitchd.Interface
		supported []string
		wantErr   []string
	}{
		{"local port open", netdev, vswitchd.Bridge{}, &vswitchd.Interface{Ofport: ptr(65534)}, []string{"netdev"}, nil},
		{
			"system datapath without the kernel module", system, vswitchd.Bridge{}, &vswitchd.Interface{},
			[]string{"netdev"}, []string{"datapath_type system", "supports datapath types [netdev] only", "kernel module"},
		},
		{"error on the local port", netdev, vswitchd.Bridge{}, &vswitchd.Interface{Ofport: ptr(-1), Error: ptr("tap busy")}, nil, []string{"tap busy"}},
		{"no local port but datapath version", netdev, vswitchd.Bridge{DatapathVersion: "<built-in>"}, nil, nil, nil},
		{"no local port and no datapath version", netdev, vswitchd.Bridge{}, nil, nil, []string{"no datapath version"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := judgeBridge(tc.cfg, &tc.bridge, tc.local, tc.supported)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("judgeBridge() = %v, want nil", err)
				}
				return
			}
			var be *BridgeError
			if !errors.As(err, &be) {
				t.Fatalf("judgeBridge() = %v, want a *BridgeError", err)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestPortSpecValidate(t *testing.T) {
	good := PortSpec{Bridge: "br-sec", Name: "veth1", VLAN: 100, Owner: validOwner()}
	for _, tc := range []struct {
		name    string
		mutate  func(*PortSpec)
		wantErr string
	}{
		{"valid", func(*PortSpec) {}, ""},
		{"VLAN 0", func(s *PortSpec) { s.VLAN = 0 }, ""},
		{"VLAN 4094", func(s *PortSpec) { s.VLAN = 4094 }, ""},
		{"VLAN 4095", func(s *PortSpec) { s.VLAN = 4095 }, "out of range"},
		{"port named like the bridge", func(s *PortSpec) { s.Name = "br-sec" }, "bridge's name"},
		{"no bridge", func(s *PortSpec) { s.Bridge = "" }, "bridge"},
		{"owner without container ID", func(s *PortSpec) { s.Owner.ContainerID = "" }, "container ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.mutate(&s)
			err := s.Validate()
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestSameAccessPort(t *testing.T) {
	spec := PortSpec{Bridge: "br-sec", Name: "veth1", VLAN: 100, Owner: validOwner()}
	for _, tc := range []struct {
		name     string
		existing PodPort
		conflict string
	}{
		{"identical", PodPort{Name: "veth1", Bridge: "br-sec", VLAN: 100, Owner: validOwner()}, ""},
		{"other owner", PodPort{Name: "veth1", Bridge: "br-sec", VLAN: 100, Owner: PortOwner{PodNamespace: "x", PodName: "y", ContainerID: "z", IfName: "eth1"}}, "belongs to x/y"},
		{"other VLAN", PodPort{Name: "veth1", Bridge: "br-sec", VLAN: 200, Owner: validOwner()}, "VLAN 200"},
		{"other bridge", PodPort{Name: "veth1", Bridge: "br-other", VLAN: 100, Owner: validOwner()}, "bridge br-other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sameAccessPort(spec, &tc.existing)
			if tc.conflict == "" {
				if err != nil {
					t.Fatalf("sameAccessPort() = %v, want nil", err)
				}
				return
			}
			var pc *PortConflictError
			if !errors.As(err, &pc) || !strings.Contains(err.Error(), tc.conflict) {
				t.Fatalf("sameAccessPort() = %v, want a *PortConflictError containing %q", err, tc.conflict)
			}
		})
	}
}

func TestValidateEndpoint(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		ok       bool
	}{
		{"unix:/var/run/openvswitch/db.sock", true},
		{"tcp:127.0.0.1:6640", true},
		{"ssl:192.0.2.1:6640", true},
		{"/var/run/openvswitch/db.sock", false},
		{"unix:", false},
		{"http://localhost", false},
	} {
		t.Run(tc.endpoint, func(t *testing.T) {
			if err := validateEndpoint(tc.endpoint); (err == nil) != tc.ok {
				t.Fatalf("validateEndpoint(%q) = %v, want ok=%v", tc.endpoint, err, tc.ok)
			}
		})
	}
}

func TestBackoffGrowsToItsCeilingWithJitter(t *testing.T) {
	b := newBackoff(100*time.Millisecond, 400*time.Millisecond)
	for i, ceiling := range []time.Duration{100, 200, 400, 400, 400} {
		ceiling *= time.Millisecond
		d := b.next()
		if d < ceiling/2 || d > ceiling {
			t.Fatalf("delay %d = %v, want within [%v, %v]", i, d, ceiling/2, ceiling)
		}
	}
}
