package podstatus

import (
	"encoding/json"
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
	tests := []struct {
		name        string
		current     string
		managed     []string
		ours        []nadv1.NetworkStatus
		want        []nadv1.NetworkStatus
		wantChanged bool
	}{
		{name: "adds our entries to an absent annotation", ours: []nadv1.NetworkStatus{newOurs}, want: []nadv1.NetworkStatus{newOurs}, wantChanged: true},
		{name: "keeps entries of other writers", current: encode(multusPrimary), ours: []nadv1.NetworkStatus{newOurs}, want: []nadv1.NetworkStatus{multusPrimary, newOurs}, wantChanged: true},
		{name: "replaces our stale entry for the same interface", current: encode(multusPrimary, oldOurs), ours: []nadv1.NetworkStatus{newOurs}, want: []nadv1.NetworkStatus{multusPrimary, newOurs}, wantChanged: true},
		{name: "removes our entries on detach", current: encode(multusPrimary, oldOurs), managed: []string{"eth1"}, want: []nadv1.NetworkStatus{multusPrimary}, wantChanged: true},
		{name: "reports no change when already current", current: encode(multusPrimary, newOurs), ours: []nadv1.NetworkStatus{newOurs}, want: []nadv1.NetworkStatus{multusPrimary, newOurs}},
		{name: "replaces an unparsable value", current: "{not json", ours: []nadv1.NetworkStatus{newOurs}, want: []nadv1.NetworkStatus{newOurs}, wantChanged: true},
		{name: "removes the annotation when nothing is left", current: encode(oldOurs), managed: []string{"eth1"}, wantChanged: true},
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
			want := ""
			if len(tt.want) > 0 {
				want = encode(tt.want...)
			}
			if got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}
