package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/podvlan/podvlan/internal/teststack"
)

// TestAgentRestoresLostNetworkStatus: the agent writes network-status after answering ADD, so a
// crash could lose it; its ports record the entries, and reconciliation writes back what a live
// Pod lacks. Here the annotation is removed by hand, as a lost write would leave the Pod.
func TestAgentRestoresLostNetworkStatus(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	node := c.node(t, 1)
	ns := c.createNamespace(t, "e2e-status-")
	p100, _ := vlanPools(t, c, 50, 59)
	c.createNAD(t, ns, "vlan100", teststack.VLANNetworkConfig(0, p100))
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink)) // reconciles every 2 s
	s := c.newSandbox(t, ns, "status", node, "vlan100")
	if _, err := a.addChained(t, s, "1.0.0"); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	t.Cleanup(func() { _ = a.delChained(t, s, "1.0.0") })
	written := networkStatus(t, c, s)
	if len(written) != 1 {
		t.Fatalf("network-status %+v, want one entry", written)
	}

	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{nadv1.NetworkStatusAnnot: nil}}})
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	if _, err := c.client.CoreV1().Pods(ns).Patch(ctx, s.Pod.Name, k8stypes.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("remove network-status: %v", err)
	}
	start := time.Now()
	restored := networkStatus(t, c, s) // waits for the annotation to come back
	t.Logf("network-status written again after %v", time.Since(start).Round(time.Millisecond))
	if len(restored) != 1 || restored[0].Interface != written[0].Interface || restored[0].Mac != written[0].Mac ||
		len(restored[0].IPs) != 1 || restored[0].IPs[0] != written[0].IPs[0] || restored[0].Name != written[0].Name {
		t.Errorf("restored network-status %+v, want %+v", restored, written)
	}
}
