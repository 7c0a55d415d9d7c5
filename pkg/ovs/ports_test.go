package ovs_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/podvlan/podvlan/pkg/ovs"
)

func TestAccessPorts(t *testing.T) {
	s := startStack(t)
	br := s.bridge(t)

	for _, vlan := range []uint16{0, 100, 4094} {
		t.Run(fmt.Sprintf("VLAN %d port is an access port recording its owner", vlan), func(t *testing.T) {
			p := s.newPod(t, "10.78.0.2/24")
			port := s.plug(t, br, p, vlan)
			if port.OFPort <= 0 || port.VLAN != vlan || port.Bridge != br || port.Name != p.host {
				t.Errorf("CreateAccessPort returned %+v", port)
			}
			if got := s.vsctlField(t, "Port", p.host, "tag"); got != fmt.Sprint(vlan) {
				t.Errorf("tag = %s, want %d", got, vlan)
			}
			if got := s.vsctlField(t, "Port", p.host, "vlan_mode"); got != "access" {
				t.Errorf("vlan_mode = %s, want access", got)
			}
			owner := p.owner(fmt.Sprintf("networks/vlan%d", vlan))
			for key, want := range map[string]string{
				"podvlan-owner": "secondary-network", "podvlan-role": "pod",
				"podvlan-pod-namespace": owner.PodNamespace, "podvlan-pod-name": owner.PodName,
				"podvlan-pod-uid": owner.PodUID, "podvlan-container-id": owner.ContainerID,
				"podvlan-ifname": "eth1", "podvlan-network": owner.Network, "podvlan-addresses": "10.78.0.2/24",
			} {
				if got := strings.Trim(s.vsctlField(t, "Port", p.host, "external_ids:"+key), `"`); got != want {
					t.Errorf("external_ids:%s = %s, want %s", key, got, want)
				}
			}
		})
	}

	t.Run("creating an identical port again succeeds and changes nothing", func(t *testing.T) {
		p := s.newPod(t, "")
		first := s.plug(t, br, p, 100)
		uuid := s.vsctlField(t, "Port", p.host, "_uuid")
		again := s.plug(t, br, p, 100)
		if !reflect.DeepEqual(first, again) {
			t.Errorf("second create returned %+v, first %+v", again, first)
		}
		if got := s.vsctlField(t, "Port", p.host, "_uuid"); got != uuid {
			t.Errorf("port row replaced")
		}
	})

	t.Run("addresses and network-status are recorded on an existing port, addresses also by a repeated create", func(t *testing.T) {
		p := s.newPod(t, "10.78.0.9/24")
		owner := p.owner("networks/vlan100")
		addresses := owner.Addresses
		owner.Addresses = nil
		spec := ovs.PortSpec{Bridge: br, Name: p.host, VLAN: 100, Owner: owner}
		if _, err := s.client.CreateAccessPort(testContext(t), spec); err != nil {
			t.Fatal(err)
		}
		if got := s.vsctlField(t, "Port", p.host, "external_ids"); strings.Contains(got, "podvlan-addresses") {
			t.Fatalf("a port created without addresses records them: %s", got)
		}
		status := `{"name":"networks/vlan100","interface":"eth1","ips":["10.78.0.9"],"default":false}`
		if err := s.client.SetPortRecord(testContext(t), p.host, ovs.PortRecord{Addresses: addresses, NetworkStatus: status}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Trim(s.vsctlField(t, "Port", p.host, "external_ids:podvlan-addresses"), `"`); got != "10.78.0.9/24" {
			t.Errorf("after SetPortRecord the port records %q", got)
		}
		ports, err := s.client.ListPodPorts(testContext(t), br)
		if err != nil {
			t.Fatal(err)
		}
		for _, port := range ports {
			if port.Name == p.host && port.NetworkStatus != status {
				t.Errorf("ListPodPorts gives network-status %q, want %q", port.NetworkStatus, status)
			}
		}
		if err := s.client.SetPortRecord(testContext(t), p.host, ovs.PortRecord{}); err != nil {
			t.Fatal(err)
		}
		if got := s.vsctlField(t, "Port", p.host, "external_ids"); strings.Contains(got, "podvlan-addresses") || strings.Contains(got, "podvlan-network-status") {
			t.Errorf("an empty record left %s", got)
		}
		// A create that comes with the addresses fills in a port that has none.
		spec.Owner.Addresses = addresses
		port, err := s.client.CreateAccessPort(testContext(t), spec)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(port.Owner.Addresses, addresses) {
			t.Errorf("repeated create returned addresses %v, want %v", port.Owner.Addresses, addresses)
		}
		// Other external_ids are untouched.
		if got := strings.Trim(s.vsctlField(t, "Port", p.host, "external_ids:podvlan-container-id"), `"`); got != owner.ContainerID {
			t.Errorf("container ID became %s", got)
		}
		if err := s.client.SetPortRecord(testContext(t), "no-such-port", ovs.PortRecord{Addresses: addresses}); err == nil {
			t.Error("SetPortRecord on a missing port succeeded")
		}
	})

	t.Run("a port of that name with another owner or VLAN is a conflict", func(t *testing.T) {
		p := s.newPod(t, "")
		s.plug(t, br, p, 100)
		other := p.owner("networks/vlan100")
		other.ContainerID = "another-sandbox"
		for name, spec := range map[string]ovs.PortSpec{
			"other owner": {Bridge: br, Name: p.host, VLAN: 100, Owner: other},
			"other VLAN":  {Bridge: br, Name: p.host, VLAN: 200, Owner: p.owner("networks/vlan100")},
		} {
			_, err := s.client.CreateAccessPort(testContext(t), spec)
			var conflict *ovs.PortConflictError
			if !errors.As(err, &conflict) {
				t.Errorf("%s: CreateAccessPort = %v, want a *PortConflictError", name, err)
			}
		}
		if got := s.vsctlField(t, "Port", p.host, "external_ids:podvlan-container-id"); got != p.owner("").ContainerID {
			t.Errorf("existing port's owner changed to %s", got)
		}
	})

	t.Run("a port named like a port we did not create is a conflict", func(t *testing.T) {
		p := s.newPod(t, "")
		s.ovs.Vsctl(t, "add-port", br, p.host)
		_, err := s.client.CreateAccessPort(testContext(t), ovs.PortSpec{Bridge: br, Name: p.host, VLAN: 100, Owner: p.owner("")})
		var conflict *ovs.PortConflictError
		if !errors.As(err, &conflict) {
			t.Fatalf("CreateAccessPort = %v, want a *PortConflictError", err)
		}
		if err := s.client.DeletePort(testContext(t), p.host); err == nil {
			t.Fatalf("DeletePort removed a port we did not create")
		}
	})

	t.Run("a port another client wrote an instant earlier is a conflict, not a transaction error", func(t *testing.T) {
		// The write races the monitor update into the cache; either way the answer is a conflict.
		for range 10 {
			p := s.newPod(t, "")
			s.ovs.Vsctl(t, "--no-wait", "add-port", br, p.host)
			_, err := s.client.CreateAccessPort(testContext(t), ovs.PortSpec{Bridge: br, Name: p.host, VLAN: 100, Owner: p.owner("")})
			var conflict *ovs.PortConflictError
			if !errors.As(err, &conflict) {
				t.Fatalf("CreateAccessPort = %v, want a *PortConflictError", err)
			}
		}
	})

	t.Run("a missing veth fails with vswitchd's error and leaves nothing", func(t *testing.T) {
		name := uniqueName("pvnone")
		_, err := s.client.CreateAccessPort(testContext(t), ovs.PortSpec{
			Bridge: br, Name: name, VLAN: 100,
			Owner: ovs.PortOwner{PodNamespace: "ns", PodName: "p", ContainerID: "c-missing", IfName: "eth1"},
		})
		var notReady *ovs.PortNotReadyError
		if !errors.As(err, &notReady) || !strings.Contains(err.Error(), "No such device") {
			t.Fatalf("CreateAccessPort = %v, want a *PortNotReadyError with vswitchd's 'No such device'", err)
		}
		if out := s.ovs.Vsctl(t, "--if-exists", "get", "Port", name, "name"); strings.TrimSpace(out) != "" {
			t.Fatalf("the failed port is still in OVSDB: %s", out)
		}
	})

	t.Run("an unknown bridge is an error", func(t *testing.T) {
		p := s.newPod(t, "")
		_, err := s.client.CreateAccessPort(testContext(t), ovs.PortSpec{Bridge: uniqueName("pvnone"), Name: p.host, Owner: p.owner("")})
		if !errors.Is(err, ovs.ErrBridgeNotFound) {
			t.Fatalf("CreateAccessPort = %v, want ErrBridgeNotFound", err)
		}
	})

	t.Run("deleting a port removes it and deleting it again succeeds", func(t *testing.T) {
		p := s.newPod(t, "")
		s.plug(t, br, p, 100)
		for range 2 {
			if err := s.client.DeletePort(testContext(t), p.host); err != nil {
				t.Fatalf("DeletePort: %v", err)
			}
		}
		if out := s.ovs.Vsctl(t, "--if-exists", "get", "Interface", p.host, "name"); strings.TrimSpace(out) != "" {
			t.Fatalf("deleted port's interface still in OVSDB")
		}
		if slices.Contains(strings.Fields(s.ovs.Vsctl(t, "list-ports", br)), p.host) {
			t.Fatalf("deleted port still on the bridge")
		}
	})

	t.Run("deleting a port that never existed succeeds", func(t *testing.T) {
		if err := s.client.DeletePort(testContext(t), uniqueName("pvnone")); err != nil {
			t.Fatalf("DeletePort: %v", err)
		}
	})

	t.Run("ListPodPorts returns our ports with their owners and DeletePort removes them one by one", func(t *testing.T) {
		br := s.bridge(t)
		foreign, _ := s.vethInOVSNetNS(t, "pvf")
		s.ovs.Vsctl(t, "add-port", br, foreign)
		sandbox := s.newPod(t, "10.79.0.2/24")
		other := s.newPod(t, "10.79.0.3/24")
		// A second interface of the same sandbox, as a Pod with two networks has.
		second := uniqueName("pvh")
		mustRun(t, "ip", "-n", s.ovs.NetNS, "link", "add", second, "type", "veth", "peer", "name", "eth2", "netns", sandbox.netns)
		t.Cleanup(func() { _, _ = runQuiet("ip", "-n", s.ovs.NetNS, "link", "del", second) })
		mustRun(t, "ip", "-n", s.ovs.NetNS, "link", "set", second, "up")
		secondOwner := sandbox.owner("networks/vlan300")
		secondOwner.IfName, secondOwner.Addresses = "eth2", nil

		s.plug(t, br, sandbox, 100)
		s.plug(t, br, other, 200)
		if _, err := s.client.CreateAccessPort(testContext(t), ovs.PortSpec{Bridge: br, Name: second, VLAN: 300, Owner: secondOwner}); err != nil {
			t.Fatalf("CreateAccessPort(second): %v", err)
		}

		listed, err := s.client.ListPodPorts(testContext(t), br)
		if err != nil {
			t.Fatalf("ListPodPorts: %v", err)
		}
		want := map[string]ovs.PodPort{
			sandbox.host: {Name: sandbox.host, Bridge: br, VLAN: 100, Owner: sandbox.owner("networks/vlan100")},
			other.host:   {Name: other.host, Bridge: br, VLAN: 200, Owner: other.owner("networks/vlan200")},
			second:       {Name: second, Bridge: br, VLAN: 300, Owner: secondOwner},
		}
		if len(listed) != len(want) {
			t.Fatalf("ListPodPorts = %+v, want exactly %v", listed, want)
		}
		for _, got := range listed {
			if got.OFPort <= 0 {
				t.Errorf("%s has no ofport: %+v", got.Name, got)
			}
			got.OFPort = 0
			if !reflect.DeepEqual(got, want[got.Name]) {
				t.Errorf("listed %+v\n want %+v", got, want[got.Name])
			}
		}

		for _, name := range []string{sandbox.host, second} {
			if err := s.client.DeletePort(testContext(t), name); err != nil {
				t.Fatalf("DeletePort(%s): %v", name, err)
			}
		}
		if got, want := strings.Fields(s.ovs.Vsctl(t, "list-ports", br)), sorted(other.host, foreign); !reflect.DeepEqual(got, want) {
			t.Errorf("ports left = %v, want %v", got, want)
		}
		if err := s.client.DeletePort(testContext(t), sandbox.host); err != nil {
			t.Errorf("DeletePort of a deleted port = %v, want nil", err)
		}
	})
}
