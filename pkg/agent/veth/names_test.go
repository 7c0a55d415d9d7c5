package veth

import (
	"strings"
	"testing"
)

func TestHostName(t *testing.T) {
	tests := []struct {
		name                 string
		containerID, ifName  string
		otherID, otherIfName string
	}{
		{name: "another interface of the same sandbox gets another name", containerID: "abc123", ifName: "eth1", otherID: "abc123", otherIfName: "eth2"},
		{name: "the same interface of another sandbox gets another name", containerID: "abc123", ifName: "eth1", otherID: "abc124", otherIfName: "eth1"},
		{name: "moving characters between the two parts changes the name", containerID: "abc1", ifName: "23", otherID: "abc", otherIfName: "123"},
		{name: "a long container ID still gives a short name", containerID: strings.Repeat("f", 64), ifName: "net1", otherID: strings.Repeat("f", 63), otherIfName: "net1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HostName(tt.containerID, tt.ifName)
			if len(got) > 15 {
				t.Errorf("HostName(%q, %q) = %q, longer than 15 bytes", tt.containerID, tt.ifName, got)
			}
			if !strings.HasPrefix(got, hostNamePrefix) {
				t.Errorf("HostName(%q, %q) = %q, want prefix %q", tt.containerID, tt.ifName, got, hostNamePrefix)
			}
			if again := HostName(tt.containerID, tt.ifName); again != got {
				t.Errorf("HostName is not deterministic: %q then %q", got, again)
			}
			if other := HostName(tt.otherID, tt.otherIfName); other == got {
				t.Errorf("HostName(%q, %q) and HostName(%q, %q) are both %q", tt.containerID, tt.ifName, tt.otherID, tt.otherIfName, got)
			}
		})
	}
}
