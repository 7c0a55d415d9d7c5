package config

import (
	"strings"
	"testing"
)

// seedMisindented is the seed's mistake: ovsBridges at the top level instead of under
// secondaryNetwork, with the gate on and a socket of its own.
const seedMisindented = `featureGates:
  SecondaryNetwork: true
  AntreaIPAM: true
cniSocket: /run/podvlan/cni.sock
secondaryNetwork:
ovsBridges:
- bridgeName: br-secondary
  physicalInterfaces: [eth1]
`

func TestDegradedAgent(t *testing.T) {
	if _, err := LoadAgent([]byte(seedMisindented)); err == nil ||
		!strings.Contains(err.Error(), "ovsBridges") || !strings.Contains(err.Error(), "secondaryNetwork.ovsBridges") {
		t.Fatalf("LoadAgent = %v, want an error naming ovsBridges and where it belongs", err)
	}
	cases := []struct {
		name       string
		data       []byte
		wantSocket string
		wantRunDir string
	}{
		{"the seed's mis-indented ovsBridges keeps the socket it names", []byte(seedMisindented), "/run/podvlan/cni.sock", DefaultOVSRunDir},
		{"an unreadable file gets the defaults", nil, DefaultCNISocket, DefaultOVSRunDir},
		{"not YAML gets the defaults", []byte("featureGates: [\n"), DefaultCNISocket, DefaultOVSRunDir},
		{"relative paths are not taken", []byte("cniSocket: cni.sock\novsRunDir: run\nbogus: 1\n"), DefaultCNISocket, DefaultOVSRunDir},
		{"a valid ovsRunDir is kept", []byte("ovsRunDir: /run/ovs\nbogus: 1\n"), DefaultCNISocket, "/run/ovs"},
	}
	if a := DegradedAgent([]byte("clientConnection: {kubeconfig: /etc/kc}\nbogus: 1\n")); a.ClientConnection.Kubeconfig != "/etc/kc" {
		t.Errorf("kubeconfig = %q, want the one the file names: the degraded agent must still reach the API server", a.ClientConnection.Kubeconfig)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := DegradedAgent(tc.data)
			if a.CNISocket != tc.wantSocket || a.OVSRunDir != tc.wantRunDir {
				t.Errorf("paths = %s, %s; want %s, %s", a.CNISocket, a.OVSRunDir, tc.wantSocket, tc.wantRunDir)
			}
			if a.Gates.Enabled(SecondaryNetwork) || a.Gates.Enabled(AntreaIPAM) {
				t.Error("a degraded agent has a gate on")
			}
			if _, ok := a.Bridge(); ok {
				t.Error("a degraded agent has a bridge")
			}
			if errs := a.Validate(); len(errs) > 0 {
				t.Errorf("the degraded configuration is itself invalid: %v", errs)
			}
		})
	}
}
