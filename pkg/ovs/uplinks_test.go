package ovs_test

import (
	"errors"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/podvlan/podvlan/pkg/ovs"
)

func TestEnsureUplinks(t *testing.T) {
	nodeIP := "10.97.0.2"
	s := startStack(t, ovs.WithNodeIPs(net.ParseIP(nodeIP)))

	ports := func(t *testing.T, bridge string) []string {
		return strings.Fields(s.ovs.Vsctl(t, "list-ports", bridge))
	}

	t.Run("attaches interfaces as marked trunk ports", func(t *testing.T) {
		br := s.bridge(t)
		up1, _ := s.vethInOVSNetNS(t, "pvu")
		up2, _ := s.vethInOVSNetNS(t, "pvu")
		if err := s.client.EnsureUplinks(testContext(t), br, []string{up1, up2}); err != nil {
			t.Fatalf("EnsureUplinks: %v", err)
		}
		if got, want := ports(t, br), sorted(up1, up2); !reflect.DeepEqual(got, want) {
			t.Fatalf("ports = %v, want %v", got, want)
		}
		for _, up := range []string{up1, up2} {
			if got := s.vsctlField(t, "Port", up, "vlan_mode"); got != "trunk" {
				t.Errorf("%s vlan_mode = %s, want trunk", up, got)
			}
			if got := s.vsctlField(t, "Port", up, "external_ids:podvlan-role"); got != "uplink" {
				t.Errorf("%s podvlan-role = %s, want uplink", up, got)
			}
			if got := s.vsctlField(t, "Interface", up, "ofport"); got == "[]" || strings.HasPrefix(got, "-") {
				t.Errorf("%s ofport = %s, want a port number", up, got)
			}
		}
	})

	t.Run("removes our uplinks no longer listed and keeps ports we did not mark", func(t *testing.T) {
		br := s.bridge(t)
		up1, _ := s.vethInOVSNetNS(t, "pvu")
		up2, _ := s.vethInOVSNetNS(t, "pvu")
		foreign, _ := s.vethInOVSNetNS(t, "pvf")
		s.ovs.Vsctl(t, "add-port", br, foreign)
		if err := s.client.EnsureUplinks(testContext(t), br, []string{up1, up2}); err != nil {
			t.Fatalf("EnsureUplinks(both): %v", err)
		}
		if err := s.client.EnsureUplinks(testContext(t), br, []string{up2}); err != nil {
			t.Fatalf("EnsureUplinks(one): %v", err)
		}
		if got, want := ports(t, br), sorted(up2, foreign); !reflect.DeepEqual(got, want) {
			t.Fatalf("ports = %v, want %v", got, want)
		}
		if err := s.client.EnsureUplinks(testContext(t), br, nil); err != nil {
			t.Fatalf("EnsureUplinks(none): %v", err)
		}
		if got, want := ports(t, br), []string{foreign}; !reflect.DeepEqual(got, want) {
			t.Fatalf("ports = %v, want %v", got, want)
		}
	})

	t.Run("is idempotent", func(t *testing.T) {
		br := s.bridge(t)
		up, _ := s.vethInOVSNetNS(t, "pvu")
		for range 3 {
			if err := s.client.EnsureUplinks(testContext(t), br, []string{up}); err != nil {
				t.Fatalf("EnsureUplinks: %v", err)
			}
		}
		if got := ports(t, br); !reflect.DeepEqual(got, []string{up}) {
			t.Fatalf("ports = %v, want [%s]", got, up)
		}
	})

	t.Run("adopts an unmarked port of a listed name as a trunk", func(t *testing.T) {
		br := s.bridge(t)
		up, _ := s.vethInOVSNetNS(t, "pvu")
		s.ovs.Vsctl(t, "add-port", br, up, "tag=5", "--", "set", "Port", up, "trunks=5,6")
		if err := s.client.EnsureUplinks(testContext(t), br, []string{up}); err != nil {
			t.Fatalf("EnsureUplinks: %v", err)
		}
		for column, want := range map[string]string{
			"vlan_mode": "trunk", "tag": "[]", "trunks": "[]", "external_ids:podvlan-role": "uplink",
		} {
			if got := s.vsctlField(t, "Port", up, column); got != want {
				t.Errorf("%s %s = %s, want %s", up, column, got, want)
			}
		}
	})

	t.Run("reports a missing interface and attaches the present ones", func(t *testing.T) {
		br := s.bridge(t)
		up, _ := s.vethInOVSNetNS(t, "pvu")
		missing := uniqueName("pvmiss")
		err := s.client.EnsureUplinks(testContext(t), br, []string{missing, up})
		var me *ovs.MissingInterfacesError
		if !errors.As(err, &me) || !reflect.DeepEqual(me.Names, []string{missing}) {
			t.Fatalf("EnsureUplinks = %v, want a *MissingInterfacesError naming %s", err, missing)
		}
		if got := ports(t, br); !reflect.DeepEqual(got, []string{up}) {
			t.Fatalf("ports = %v, want [%s]", got, up)
		}

		// Once the device appears, the retry attaches it.
		mustRun(t, "ip", "-n", s.ovs.NetNS, "link", "add", missing, "type", "veth", "peer", "name", missing+"p")
		t.Cleanup(func() { _, _ = runQuiet("ip", "-n", s.ovs.NetNS, "link", "del", missing) })
		mustRun(t, "ip", "-n", s.ovs.NetNS, "link", "set", missing, "up")
		if err := s.client.EnsureUplinks(testContext(t), br, []string{missing, up}); err != nil {
			t.Fatalf("EnsureUplinks after the device appeared: %v", err)
		}
		if got, want := ports(t, br), sorted(missing, up); !reflect.DeepEqual(got, want) {
			t.Fatalf("ports = %v, want %v", got, want)
		}
	})

	t.Run("refuses the interface with the default route", func(t *testing.T) {
		br := s.bridge(t)
		mgmt, _ := s.vethInOVSNetNS(t, "pvm")
		up, _ := s.vethInOVSNetNS(t, "pvu")
		mustRun(t, "ip", "-n", s.ovs.NetNS, "addr", "add", "10.96.0.2/24", "dev", mgmt)
		mustRun(t, "ip", "-n", s.ovs.NetNS, "route", "add", "default", "via", "10.96.0.1", "dev", mgmt)
		err := s.client.EnsureUplinks(testContext(t), br, []string{mgmt, up})
		var refused *ovs.ManagementInterfacesError
		if !errors.As(err, &refused) {
			t.Fatalf("EnsureUplinks = %v, want a *ManagementInterfacesError", err)
		}
		if got := refused.Reasons[mgmt]; got != "carries the IPv4 default route" {
			t.Fatalf("reason for %s = %q, want the default route; error: %v", mgmt, got, err)
		}
		if !strings.Contains(err.Error(), mgmt) {
			t.Errorf("error %q does not name %s", err, mgmt)
		}
		if got := ports(t, br); !reflect.DeepEqual(got, []string{up}) {
			t.Fatalf("ports = %v, want only [%s]", got, up)
		}
	})

	t.Run("refuses the interface holding the node IP", func(t *testing.T) {
		br := s.bridge(t)
		mgmt, _ := s.vethInOVSNetNS(t, "pvm")
		mustRun(t, "ip", "-n", s.ovs.NetNS, "addr", "add", nodeIP+"/24", "dev", mgmt)
		err := s.client.EnsureUplinks(testContext(t), br, []string{mgmt})
		var refused *ovs.ManagementInterfacesError
		if !errors.As(err, &refused) || refused.Reasons[mgmt] != "holds node IP "+nodeIP {
			t.Fatalf("EnsureUplinks = %v, want %s refused for holding node IP %s", err, mgmt, nodeIP)
		}
		if got := ports(t, br); len(got) != 0 {
			t.Fatalf("ports = %v, want none", got)
		}
	})

	t.Run("an unknown bridge is an error", func(t *testing.T) {
		err := s.client.EnsureUplinks(testContext(t), uniqueName("pvnone"), nil)
		if !errors.Is(err, ovs.ErrBridgeNotFound) {
			t.Fatalf("EnsureUplinks = %v, want ErrBridgeNotFound", err)
		}
	})
}

func TestManagementInterfacesAt(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a network namespace")
	}
	requireRoot(t)
	ns := uniqueName("pvmgmt")
	mustRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _, _ = runQuiet("ip", "netns", "del", ns) })
	in := func(args ...string) { mustRun(t, "ip", append([]string{"-n", ns}, args...)...) }
	// v4: the default route; v6: the IPv6 default route; node: holds the node IP on a Linux
	// bridge, whose member must be refused too; spare: nothing.
	for _, l := range []string{"v4", "v6", "member", "spare"} {
		in("link", "add", l, "type", "veth", "peer", "name", l+"p")
		in("link", "set", l, "up")
	}
	in("link", "add", "node", "type", "bridge")
	in("link", "set", "node", "up")
	in("link", "set", "member", "master", "node")
	in("addr", "add", "10.95.0.2/24", "dev", "v4")
	in("route", "add", "default", "via", "10.95.0.1", "dev", "v4")
	in("addr", "add", "2001:db8:95::2/64", "dev", "v6", "nodad")
	in("-6", "route", "add", "default", "via", "2001:db8:95::1", "dev", "v6")
	in("addr", "add", "10.94.0.2/24", "dev", "node")
	in("addr", "add", "10.93.0.2/24", "dev", "spare")

	got, err := ovs.ManagementInterfacesAt(netnsPath(ns), []net.IP{net.ParseIP("10.94.0.2")})
	if err != nil {
		t.Fatalf("ManagementInterfacesAt: %v", err)
	}
	want := map[string]string{
		"v4":     "carries the IPv4 default route",
		"v6":     "carries the IPv6 default route",
		"node":   "holds node IP 10.94.0.2",
		"member": "is a member of node, which holds node IP 10.94.0.2",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ManagementInterfacesAt =\n%v\nwant\n%v", got, want)
	}
}

func sorted(names ...string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return out
}
