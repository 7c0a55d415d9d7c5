package podstatus

import (
	"encoding/json"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
)

func TestMergeNetworkStatus(t *testing.T) {
	multusPrimary := nadv1.NetworkStatus{Name: "default/primary", Interface: "eth0", IPs: []string{"10.244.1.5"}, Default: true}
	oldOurs := nadv1.NetworkStatus{Name: "ns/vlan100", Interface: "eth1", IPs: []string{"198.18.100.9"}}
	newOurs := nadv1.NetworkStatus{Name: "ns/vlan100", Interface: "eth1", IPs: []string{"198.18.100.10"}, Mac: "02:00:00:00:00:01"}
	encode := func(s ...nadv1.NetworkStatus) string {
		data, _ := json.MarshalIndent(s, "", "    ")
		return string(data)
	}
	// written is what the agent writes: others' entries as they were, then its own with "default".
	written := func(others []nadv1.NetworkStatus, ours ...nadv1.NetworkStatus) string {
		var all []any
		for _, o := range others {
			all = append(all, o)
		}
		for _, o := range ours {
			all = append(all, statusEntry{NetworkStatus: o})
		}
		if len(all) == 0 {
			return ""
		}
		data, _ := json.MarshalIndent(all, "", "    ")
		return string(data)
	}
	primary := []nadv1.NetworkStatus{multusPrimary}
	tests := []struct {
		name        string
		current     string
		managed     []string
		ours        []nadv1.NetworkStatus
		want        string
		wantChanged bool
	}{
		{name: "adds our entries to an absent annotation", ours: []nadv1.NetworkStatus{newOurs}, want: written(nil, newOurs), wantChanged: true},
		{name: "keeps entries of other writers", current: encode(multusPrimary), ours: []nadv1.NetworkStatus{newOurs}, want: written(primary, newOurs), wantChanged: true},
		{name: "replaces our stale entry for the same interface", current: encode(multusPrimary, oldOurs), ours: []nadv1.NetworkStatus{newOurs}, want: written(primary, newOurs), wantChanged: true},
		{name: "removes our entries on detach", current: encode(multusPrimary, oldOurs), managed: []string{"eth1"}, want: written(primary), wantChanged: true},
		{name: "reports no change when already current", current: written(primary, newOurs), ours: []nadv1.NetworkStatus{newOurs}, want: written(primary, newOurs)},
		{name: "replaces an unparsable value", current: "{not json", ours: []nadv1.NetworkStatus{newOurs}, want: written(nil, newOurs), wantChanged: true},
		{name: "removes the annotation when nothing is left", current: encode(oldOurs), managed: []string{"eth1"}, wantChanged: true},
		{name: "keeps fields of other writers it does not know", current: `[{"name":"x/y","interface":"net9","future-field":{"a":1}}]`,
			ours: []nadv1.NetworkStatus{newOurs}, want: "[\n    {\n        \"name\": \"x/y\",\n        \"interface\": \"net9\",\n        \"future-field\": {\n            \"a\": 1\n        }\n    },\n" +
				strings.TrimPrefix(written(nil, newOurs), "[\n"), wantChanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed, err := MergeNetworkStatus(tt.current, tt.managed, tt.ours)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestOurEntriesSayTheyAreNotTheDefault(t *testing.T) {
	got, _, err := MergeNetworkStatus("", nil, []nadv1.NetworkStatus{{Name: "ns/vlan100", Interface: "eth1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, `"default": false`) {
		t.Errorf("network-status %s lacks \"default\": false", got)
	}
}

func TestHasEntriesIgnoresOrderAndOthers(t *testing.T) {
	a := nadv1.NetworkStatus{Name: "ns/a", Interface: "eth1", IPs: []string{"10.0.0.2"}}
	b := nadv1.NetworkStatus{Name: "ns/b", Interface: "eth2", IPs: []string{"10.0.1.2"}}
	primary := nadv1.NetworkStatus{Name: "default/primary", Interface: "eth0", Default: true}
	written, _, err := MergeNetworkStatus("", nil, []nadv1.NetworkStatus{primary, a, b})
	if err != nil {
		t.Fatal(err)
	}
	changedB := b
	changedB.IPs = []string{"10.0.1.3"}
	for _, tc := range []struct {
		name    string
		current string
		ours    []nadv1.NetworkStatus
		want    bool
	}{
		{"all there, in another order", written, []nadv1.NetworkStatus{b, a}, true},
		{"one missing", written, []nadv1.NetworkStatus{a, {Name: "ns/c", Interface: "eth3"}}, false},
		{"one different", written, []nadv1.NetworkStatus{a, changedB}, false},
		{"no annotation", "", []nadv1.NetworkStatus{a}, false},
		{"unparsable", "{", []nadv1.NetworkStatus{a}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HasEntries(tc.current, tc.ours); got != tc.want {
				t.Errorf("HasEntries = %v, want %v", got, tc.want)
			}
		})
	}
}
