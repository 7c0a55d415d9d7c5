package ovs_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/podvlan/podvlan/pkg/ovs"
)

func TestEnsureBridge(t *testing.T) {
	s := startStack(t)

	t.Run("creates a marked userspace bridge that vswitchd runs", func(t *testing.T) {
		name := s.bridge(t)
		if got := s.vsctlField(t, "Bridge", name, "datapath_type"); got != "netdev" {
			t.Errorf("datapath_type = %s, want netdev", got)
		}
		if got := s.vsctlField(t, "Bridge", name, "external_ids:podvlan-owner"); got != `secondary-network` {
			t.Errorf("external_ids:podvlan-owner = %s, want secondary-network", got)
		}
		if got := s.vsctlField(t, "Interface", name, "ofport"); got != "65534" {
			t.Errorf("local port ofport = %s, want 65534", got)
		}
	})

	t.Run("is idempotent", func(t *testing.T) {
		name := s.bridge(t)
		uuid := s.vsctlField(t, "Bridge", name, "_uuid")
		for range 2 {
			if err := s.client.EnsureBridge(testContext(t), ovs.BridgeConfig{Name: name, DatapathType: ovs.DatapathNetdev}); err != nil {
				t.Fatalf("EnsureBridge again: %v", err)
			}
		}
		if got := s.vsctlField(t, "Bridge", name, "_uuid"); got != uuid {
			t.Errorf("bridge row replaced: uuid %s, was %s", got, uuid)
		}
		if ports := strings.Fields(s.ovs.Vsctl(t, "list-ports", name)); len(ports) != 0 {
			t.Errorf("bridge grew ports %v", ports)
		}
	})

	t.Run("turns multicast snooping on and off as configured", func(t *testing.T) {
		name := s.bridge(t)
		for _, want := range []bool{true, false} {
			if err := s.client.EnsureBridge(testContext(t), ovs.BridgeConfig{Name: name, DatapathType: ovs.DatapathNetdev, MulticastSnooping: want}); err != nil {
				t.Fatalf("EnsureBridge: %v", err)
			}
			if got := s.vsctlField(t, "Bridge", name, "mcast_snooping_enable"); got != map[bool]string{true: "true", false: "false"}[want] {
				t.Errorf("mcast_snooping_enable = %s, want %v", got, want)
			}
		}
	})

	t.Run("adopts an existing bridge and keeps its other external_ids", func(t *testing.T) {
		name := uniqueName("pvbr")
		s.ovs.Vsctl(t, "add-br", name, "--", "set", "Bridge", name, "datapath_type=netdev", "external_ids:site=lab")
		uuid := s.vsctlField(t, "Bridge", name, "_uuid")
		if err := s.client.EnsureBridge(testContext(t), ovs.BridgeConfig{Name: name, DatapathType: ovs.DatapathNetdev}); err != nil {
			t.Fatalf("EnsureBridge: %v", err)
		}
		if got := s.vsctlField(t, "Bridge", name, "_uuid"); got != uuid {
			t.Errorf("bridge row replaced instead of adopted")
		}
		ids := s.vsctlField(t, "Bridge", name, "external_ids")
		for _, want := range []string{`podvlan-owner=secondary-network`, `podvlan-role=bridge`, `site=lab`} {
			if !strings.Contains(ids, want) {
				t.Errorf("external_ids %s lack %s", ids, want)
			}
		}
	})

	t.Run("adopting a bridge another client wrote an instant earlier sets the configured datapath type", func(t *testing.T) {
		// The write races the monitor update into the cache; both outcomes must end in adoption.
		for range 5 {
			name := uniqueName("pvbr")
			// A bridge without datapath_type is a system bridge, which this vswitchd cannot run.
			s.ovs.Vsctl(t, "--no-wait", "add-br", name)
			if err := s.client.EnsureBridge(testContext(t), ovs.BridgeConfig{Name: name, DatapathType: ovs.DatapathNetdev}); err != nil {
				t.Fatalf("EnsureBridge: %v", err)
			}
			if got := s.vsctlField(t, "Bridge", name, "datapath_type"); got != "netdev" {
				t.Errorf("datapath_type = %s, want netdev", got)
			}
		}
	})

	t.Run("system datapath without the kernel module is an error and leaves nothing", func(t *testing.T) {
		name := uniqueName("pvbr")
		err := s.client.EnsureBridge(testContext(t), ovs.BridgeConfig{Name: name, DatapathType: ovs.DatapathSystem})
		var be *ovs.BridgeError
		if !errors.As(err, &be) {
			t.Fatalf("EnsureBridge(system) = %v, want a *ovs.BridgeError", err)
		}
		if !strings.Contains(err.Error(), "datapath types [netdev] only") {
			t.Errorf("error %q does not say which datapath types work", err)
		}
		if brs := strings.Fields(s.ovs.Vsctl(t, "list-br")); slices.Contains(brs, name) {
			t.Errorf("rejected bridge %s left in OVSDB", name)
		}
	})

	t.Run("an invalid name is refused before touching OVSDB", func(t *testing.T) {
		err := s.client.EnsureBridge(testContext(t), ovs.BridgeConfig{Name: "name-longer-than-15", DatapathType: ovs.DatapathNetdev})
		if err == nil || !strings.Contains(err.Error(), "must be at most 15 characters") {
			t.Fatalf("EnsureBridge = %v, want an invalid-name error", err)
		}
	})
}
