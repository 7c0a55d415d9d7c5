package ovs_test

import (
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/podvlan/podvlan/pkg/ovs"
)

func TestIntents(t *testing.T) {
	s := startStack(t)
	ctx := testContext(t)
	a := ovs.Intent{ContainerID: "c1", IfName: "eth1", PodNamespace: "ns", PodName: "p", PodUID: "u", NetNS: "/var/run/netns/x",
		Network: "ns/vlan100", Pools: []string{"pool100"}, Way: ovs.WayChained}
	b := ovs.Intent{ContainerID: "c1", IfName: "eth2", Way: ovs.WayIPAMOnly}

	t.Run("recorded intents are listed as written, and other external_ids stay", func(t *testing.T) {
		s.ovs.Vsctl(t, "set", "Open_vSwitch", ".", "external_ids:someone-else=keep")
		if err := s.client.RecordIntents(ctx, a, b); err != nil {
			t.Fatal(err)
		}
		got, err := s.client.ListIntents(ctx)
		if err != nil || !reflect.DeepEqual(got, []ovs.Intent{a, b}) {
			t.Fatalf("ListIntents = %+v, %v; want %+v", got, err, []ovs.Intent{a, b})
		}
		if v := strings.TrimSpace(s.ovs.Vsctl(t, "get", "Open_vSwitch", ".", "external_ids:someone-else")); v != `keep` && v != `"keep"` {
			t.Errorf("another writer's key became %q", v)
		}
	})
	t.Run("recording again replaces the intent", func(t *testing.T) {
		committed := b
		committed.Committed = true
		if err := s.client.RecordIntents(ctx, committed); err != nil {
			t.Fatal(err)
		}
		got, err := s.client.ListIntents(ctx)
		if err != nil || len(got) != 2 || !got[1].Committed {
			t.Fatalf("ListIntents = %+v, %v; want b committed", got, err)
		}
	})
	t.Run("concurrent writers of different keys all land", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				in := ovs.Intent{ContainerID: "burst", IfName: "net" + string(rune('a'+i)), Way: ovs.WayDelegate}
				if err := s.client.RecordIntents(ctx, in); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, err := s.client.ListIntents(ctx)
		if err != nil || len(got) != 22 {
			t.Fatalf("ListIntents = %d intents, %v; want 22", len(got), err)
		}
	})
	t.Run("deleting removes exactly the keys named; absent keys are no error", func(t *testing.T) {
		var keys []string
		for i := range 20 {
			keys = append(keys, ovs.IntentKey("burst", "net"+string(rune('a'+i))))
		}
		if err := s.client.DeleteIntents(ctx, append(keys, a.Key(), ovs.IntentKey("nope", "eth1"))...); err != nil {
			t.Fatal(err)
		}
		got, err := s.client.ListIntents(ctx)
		if err != nil || len(got) != 1 || got[0].Key() != b.Key() {
			t.Fatalf("ListIntents = %+v, %v; want only %s", got, err, b.Key())
		}
		if err := s.client.DeleteIntents(ctx, "someone-else"); err == nil {
			t.Error("DeleteIntents of a key that is not an intent succeeded")
		}
	})
	t.Run("malformed intents are refused before anything is written", func(t *testing.T) {
		for _, in := range []ovs.Intent{{IfName: "eth1", Way: ovs.WayChained}, {ContainerID: "c", IfName: "eth1", Way: "sideways"},
			{ContainerID: "c/d", IfName: "eth1", Way: ovs.WayChained}, {ContainerID: "c", IfName: "way-too-long-name", Way: ovs.WayChained}} {
			if err := s.client.RecordIntents(ctx, in); err == nil {
				t.Errorf("RecordIntents(%+v) succeeded", in)
			}
		}
	})
}
