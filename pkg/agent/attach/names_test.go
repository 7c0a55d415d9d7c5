package attach

import (
	"strings"
	"testing"
)

func TestHostVethName(t *testing.T) {
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
			got := HostVethName(tt.containerID, tt.ifName)
			if len(got) > 15 {
				t.Errorf("HostVethName(%q, %q) = %q, longer than 15 bytes", tt.containerID, tt.ifName, got)
			}
			if !strings.HasPrefix(got, HostVethPrefix) {
				t.Errorf("HostVethName(%q, %q) = %q, want prefix %q", tt.containerID, tt.ifName, got, HostVethPrefix)
			}
			if again := HostVethName(tt.containerID, tt.ifName); again != got {
				t.Errorf("HostVethName is not deterministic: %q then %q", got, again)
			}
			if !IsHostVethName(got) {
				t.Errorf("IsHostVethName(%q) = false for a name HostVethName returned", got)
			}
			if other := HostVethName(tt.otherID, tt.otherIfName); other == got {
				t.Errorf("HostVethName(%q, %q) and HostVethName(%q, %q) are both %q", tt.containerID, tt.ifName, tt.otherID, tt.otherIfName, got)
			}
		})
	}
}

func TestIsHostVethName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "prefix and 12 hex digits", in: "pvl0123456789ab", want: true},
		{name: "another prefix", in: "veth0123456789a", want: false},
		{name: "too few digits", in: "pvl0123456789a", want: false},
		{name: "upper-case digits are not ours", in: "pvl0123456789AB", want: false},
		{name: "non-hex character", in: "pvl0123456789ag", want: false},
		{name: "prefix alone", in: "pvl", want: false},
		{name: "empty", in: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsHostVethName(tt.in); got != tt.want {
				t.Errorf("IsHostVethName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
