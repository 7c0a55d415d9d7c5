package podvlanctl

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestTables checks that each text view shows what its JSON holds, in its columns.
func TestTables(t *testing.T) {
	c, _ := fakeClient(t)
	ctx := context.Background()
	pod, err := c.Pod(ctx, "demo", "multi")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := c.Pool(ctx, "vlan100-ipv4")
	if err != nil {
		t.Fatal(err)
	}
	pools, err := c.AllPools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node, err := c.Node(ctx, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	checks := c.Doctor(ctx)
	now := t0.Add(90e9)
	cases := []struct {
		name  string
		write func(*bytes.Buffer) error
		want  []string
	}{
		{"pod", func(b *bytes.Buffer) error { return WritePodReport(b, pod, now) },
			[]string{"Pod demo/multi on node-1, Running", "INTERFACE", "eth1", "demo/vlan100", "100", "198.18.100.2", pod.Interfaces[0].OVSPort,
				"eth1: last event: Normal NetworkAttached (1m ago): attached eth1"}},
		{"pool", func(b *bytes.Buffer) error { return WritePoolReport(b, pool) },
			[]string{"IPPool vlan100-ipv4: VLAN 100, subnet 198.18.100.1/24, ranges 198.18.100.0/26", "Usage: 2 of 61 (3%), leaks found: 1",
				"node-1", "(unknown)", "demo/gone no longer exists"}},
		{"pools", func(b *bytes.Buffer) error { return WritePoolReports(b, pools) },
			[]string{"NAME", "LEAKS", "vlan100-ipv4  100"}},
		{"node", func(b *bytes.Buffer) error { return WriteNodeReport(b, node, now) },
			[]string{"Bridge: br-secondary (ready), datapath netdev", "CNI chain: present", "Agent: kube-system/antrea-agent-x Running, ready=true",
				"eth2    missing", "demo/multi", "Event: Normal SecondaryBridgeReady"}},
		{"doctor", func(b *bytes.Buffer) error { return WriteChecks(b, checks) },
			[]string{"CHECK", "feature gates", "OK", "webhook serving certificate", "SKIP", `To fix "webhook serving certificate"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", b.String())
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}
