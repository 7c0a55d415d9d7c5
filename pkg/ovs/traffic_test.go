package ovs_test

import (
	"fmt"
	"testing"
	"time"
)

// frameTimeout bounds the wait for a frame that must arrive; it is a liveness bound, not a
// measurement.
const frameTimeout = 10 * time.Second

// afterLastGrace is how long a capture keeps listening after the frame sent last arrived, so that
// a frame sent before it which the switch wrongly forwarded would have been seen.
const afterLastGrace = 300 * time.Millisecond

// uplinkWithPeer attaches a trunk uplink whose far end sits in a namespace of its own, where the
// test watches what leaves the switch.
func (s *stack) uplinkWithPeer(t *testing.T, bridge string) (peerNetNS, peerIf string) {
	t.Helper()
	peerNetNS = newNetNS(t, "pvext")
	up := uniqueName("pvup")
	peerIf = "ext0"
	mustRun(t, "ip", "-n", s.ovs.NetNS, "link", "add", up, "type", "veth", "peer", "name", peerIf, "netns", peerNetNS)
	t.Cleanup(func() { _, _ = runQuiet("ip", "-n", s.ovs.NetNS, "link", "del", up) })
	mustRun(t, "ip", "-n", s.ovs.NetNS, "link", "set", up, "up")
	mustRun(t, "ip", "-n", peerNetNS, "link", "set", peerIf, "up")
	if err := s.client.EnsureUplinks(testContext(t), bridge, []string{up}); err != nil {
		t.Fatalf("EnsureUplinks: %v", err)
	}
	return peerNetNS, peerIf
}

// TestAccessPortsCarryExactlyTheirVLAN checks the data plane of access ports: Pods on one VLAN
// reach each other, Pods on different VLANs do not (even within one IP subnet), frames leave the
// trunk uplink tagged with the port's VLAN (untagged for VLAN 0), and a tagged frame a Pod sends
// is dropped instead of leaking into another VLAN.
func TestAccessPortsCarryExactlyTheirVLAN(t *testing.T) {
	s := startStack(t)
	br := s.bridge(t)
	peerNS, peerIf := s.uplinkWithPeer(t, br)

	vlans := []uint16{0, 100, 4094}
	type pair struct{ a, b pod }
	pods := map[uint16]pair{}
	for i, vlan := range vlans {
		p := pair{
			a: s.newPod(t, fmt.Sprintf("10.77.0.%d/24", 10+10*i)),
			b: s.newPod(t, fmt.Sprintf("10.77.0.%d/24", 11+10*i)),
		}
		s.plug(t, br, p.a, vlan)
		s.plug(t, br, p.b, vlan)
		pods[vlan] = p
	}

	for _, vlan := range vlans {
		t.Run(fmt.Sprintf("pods on VLAN %d reach each other", vlan), func(t *testing.T) {
			p := pods[vlan]
			if !pingEventually(p.a, p.b.ip()) {
				t.Fatalf("%s (VLAN %d) cannot ping %s (VLAN %d)", p.a.ip(), vlan, p.b.ip(), vlan)
			}
		})
	}
	for _, from := range vlans {
		for _, to := range vlans {
			if from == to {
				continue
			}
			t.Run(fmt.Sprintf("a pod on VLAN %d does not reach VLAN %d", from, to), func(t *testing.T) {
				src, dst := pods[from].a, pods[to].b
				// Make sure the source works at all, so that the failure below means isolation.
				if !pingEventually(src, pods[from].b.ip()) {
					t.Fatalf("source %s cannot reach its own VLAN", src.ip())
				}
				if pingOnce(src, dst.ip()) {
					t.Fatalf("%s (VLAN %d) pinged %s (VLAN %d)", src.ip(), from, dst.ip(), to)
				}
			})
		}
	}

	for _, vlan := range vlans {
		t.Run(fmt.Sprintf("untagged frames of VLAN %d leave the uplink with the right tag and tagged ones are dropped", vlan), func(t *testing.T) {
			capture := startCapture(t, peerNS, peerIf)
			src := pods[vlan].a
			// A foreign VLAN, and the port's own one too: an access port takes untagged frames
			// only. (VID 0 is a priority tag, which 802.1Q treats as untagged, so it is not tried.)
			vids := []uint16{200}
			if vlan != 0 {
				vids = append(vids, vlan)
			}
			tagged := map[uint16]string{}
			for _, vid := range vids {
				tagged[vid] = fmt.Sprintf("tagged-%d-from-%d-%s", vid, vlan, src.netns)
				sendFrame(t, src, &vid, tagged[vid])
			}
			untagged := fmt.Sprintf("untagged-from-%d-%s", vlan, src.netns)
			sendFrame(t, src, nil, untagged) // sent last, so a leaked tagged frame arrives before it

			got := capture.waitFor(untagged, frameTimeout)
			if len(got) == 0 {
				t.Fatalf("the untagged frame from the VLAN %d pod never reached the uplink", vlan)
			}
			wantVLAN := int(vlan)
			if vlan == 0 {
				wantVLAN = -1
			}
			if got[0].vlan != wantVLAN {
				t.Errorf("untagged frame from VLAN %d left the uplink with VLAN %d, want %d (-1 = untagged)", vlan, got[0].vlan, wantVLAN)
			}
			time.Sleep(afterLastGrace)
			for vid, marker := range tagged {
				if leaked := capture.find(marker); len(leaked) > 0 {
					t.Errorf("a frame tagged %d sent from the VLAN %d access port left the uplink: %+v", vid, vlan, leaked)
				}
			}
		})
	}

	// Control for the test above: the capture does see tagged frames when the switch passes
	// them, as it does for a port left as a trunk (which is what Antrea makes of VLAN 0).
	t.Run("control: a trunk port lets a tagged frame out tagged", func(t *testing.T) {
		trunkPod := s.newPod(t, "")
		s.ovs.Vsctl(t, "add-port", br, trunkPod.host)
		capture := startCapture(t, peerNS, peerIf)
		vid := uint16(200)
		marker := "tagged-from-trunk-" + trunkPod.netns
		got := []seenFrame(nil)
		// vswitchd may still be adding the port: resend until the frame is seen.
		for i := 0; i < 20 && len(got) == 0; i++ {
			sendFrame(t, trunkPod, &vid, marker)
			got = capture.waitFor(marker, 500*time.Millisecond)
		}
		if len(got) == 0 || got[0].vlan != 200 {
			t.Fatalf("tagged frame through a trunk port: seen %+v, want it with VLAN 200", got)
		}
	})
}
