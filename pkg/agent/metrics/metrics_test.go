package metrics

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// series is the number of series of the metric name in m's registry: counting by name through the
// registry also checks that the metric is registered.
func series(t *testing.T, m *Metrics, name string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(m.Registry(), name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// bridgeState is one call of SecondaryBridgeState on bridge "br" with uplinks eth1, eth2, eth0.
type bridgeState struct {
	ready            bool
	missing, refused []string
}

func TestSecondaryBridgeState(t *testing.T) {
	uplinks := []string{"eth1", "eth2", "eth0"}
	tests := []struct {
		name        string
		states      []bridgeState
		wantReady   float64
		wantMissing map[string]float64 // absent key: no series
		wantRefused map[string]float64
	}{
		{
			name:        "a ready bridge with every uplink attached reports zeros for each uplink",
			states:      []bridgeState{{ready: true}},
			wantReady:   1,
			wantMissing: map[string]float64{"eth0": 0, "eth1": 0, "eth2": 0},
			wantRefused: map[string]float64{"eth0": 0, "eth1": 0, "eth2": 0},
		},
		{
			name:        "a missing uplink is 1, the others 0",
			states:      []bridgeState{{ready: true, missing: []string{"eth2"}}},
			wantReady:   1,
			wantMissing: map[string]float64{"eth0": 0, "eth1": 0, "eth2": 1},
			wantRefused: map[string]float64{"eth0": 0, "eth1": 0, "eth2": 0},
		},
		{
			name:        "an uplink that appears goes back to 0 and keeps its series",
			states:      []bridgeState{{ready: true, missing: []string{"eth2"}}, {ready: true}},
			wantReady:   1,
			wantMissing: map[string]float64{"eth0": 0, "eth1": 0, "eth2": 0},
			wantRefused: map[string]float64{"eth0": 0, "eth1": 0, "eth2": 0},
		},
		{
			name:        "a refused uplink is 1 in refused and 0 in missing",
			states:      []bridgeState{{ready: true, missing: []string{"eth2"}, refused: []string{"eth0"}}},
			wantReady:   1,
			wantMissing: map[string]float64{"eth0": 0, "eth1": 0, "eth2": 1},
			wantRefused: map[string]float64{"eth0": 1, "eth1": 0, "eth2": 0},
		},
		{
			name:        "a bridge never ensured is 0 and has no uplink series",
			states:      []bridgeState{{ready: false}},
			wantReady:   0,
			wantMissing: map[string]float64{},
			wantRefused: map[string]float64{},
		},
		{
			name:        "a bridge failure keeps the last known uplink state",
			states:      []bridgeState{{ready: true, missing: []string{"eth2"}}, {ready: false}},
			wantReady:   0,
			wantMissing: map[string]float64{"eth0": 0, "eth1": 0, "eth2": 1},
			wantRefused: map[string]float64{"eth0": 0, "eth1": 0, "eth2": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			for _, s := range tt.states {
				m.SecondaryBridgeState("br", uplinks, s.ready, s.missing, s.refused)
			}
			// Count before reading values: With creates the series it reads.
			if n := series(t, m, "podvlan_agent_secondary_bridge_ready"); n != 1 {
				t.Fatalf("bridge_ready has %d series, want 1", n)
			}
			if v := testutil.ToFloat64(m.bridgeReady.With(prometheus.Labels{"bridge": "br"})); v != tt.wantReady {
				t.Errorf("bridge_ready %v, want %v", v, tt.wantReady)
			}
			for _, c := range []struct {
				name string
				vec  *prometheus.GaugeVec
				want map[string]float64
			}{
				{"podvlan_agent_secondary_uplink_missing", m.uplinkMissing, tt.wantMissing},
				{"podvlan_agent_secondary_uplink_refused", m.uplinkRefused, tt.wantRefused},
			} {
				if n := series(t, m, c.name); n != len(c.want) {
					t.Errorf("%s has %d series, want %d", c.name, n, len(c.want))
					continue
				}
				for iface, want := range c.want {
					if v := testutil.ToFloat64(c.vec.With(prometheus.Labels{"bridge": "br", "interface": iface})); v != want {
						t.Errorf("%s{interface=%q} = %v, want %v", c.name, iface, v, want)
					}
				}
			}
		})
	}
}

func TestCNIRequestCountsByResultCode(t *testing.T) {
	m := New()
	m.CNIRequest("ADD", 0, 3*time.Millisecond)
	m.CNIRequest("ADD", 0, 2*time.Second)
	m.CNIRequest("ADD", 7, time.Millisecond)
	m.CNIRequest("DEL", 999, time.Millisecond)
	m.CNIRequest("STATUS", 50, 0)
	// Four (command, result) pairs were seen; a failed DEL must not also count as a success.
	if n := series(t, m, "podvlan_agent_cni_requests_total"); n != 4 {
		t.Errorf("requests has %d series, want 4", n)
	}
	for _, tt := range []struct {
		command, result string
		want            float64
	}{
		{"ADD", "success", 2},
		{"ADD", "7", 1},
		{"DEL", "999", 1},
		{"STATUS", "50", 1},
	} {
		if v := testutil.ToFloat64(m.cniRequests.With(prometheus.Labels{"command": tt.command, "result": tt.result})); v != tt.want {
			t.Errorf("requests{command=%s,result=%s} = %v, want %v", tt.command, tt.result, v, tt.want)
		}
	}
	var sample dto.Metric
	if err := m.cniDuration.With(prometheus.Labels{"command": "ADD"}).(prometheus.Metric).Write(&sample); err != nil {
		t.Fatal(err)
	}
	h := sample.GetHistogram()
	if h.GetSampleCount() != 3 {
		t.Errorf("ADD duration samples %d, want 3", h.GetSampleCount())
	}
	for _, b := range h.GetBucket() {
		// 1 ms and 3 ms fall in the 5 ms bucket; 2 s does not.
		if b.GetUpperBound() == 0.005 && b.GetCumulativeCount() != 2 {
			t.Errorf("ADD samples up to 5ms: %d, want 2", b.GetCumulativeCount())
		}
	}
}

func TestDurationBucketsSpanOneMillisecondToTenSeconds(t *testing.T) {
	first, last := cniDurationBuckets[0], cniDurationBuckets[len(cniDurationBuckets)-1]
	if first != 0.001 || last != 10 {
		t.Errorf("buckets span %v..%v s, want 0.001..10", first, last)
	}
	for i := 1; i < len(cniDurationBuckets); i++ {
		if cniDurationBuckets[i] <= cniDurationBuckets[i-1] {
			t.Errorf("buckets not increasing at %d: %v", i, cniDurationBuckets)
		}
	}
}

func TestChainMissingStartsAtZeroAndFollowsTheChecks(t *testing.T) {
	m := New()
	// 0 until the chain keeper says otherwise: "not chained by design" (gate off, Multus primary)
	// must not alert.
	if n := series(t, m, "podvlan_agent_cni_chain_missing"); n != 1 {
		t.Fatalf("podvlan_agent_cni_chain_missing has %d series before any check, want 1", n)
	}
	if v := testutil.ToFloat64(m.chainMissing); v != 0 {
		t.Fatalf("podvlan_agent_cni_chain_missing before any check: %v, want 0", v)
	}
	for _, missing := range []bool{true, false, true} {
		m.CNIChainMissing(missing)
		want := 0.0
		if missing {
			want = 1
		}
		if v := testutil.ToFloat64(m.chainMissing); v != want {
			t.Errorf("after CNIChainMissing(%v): %v, want %v", missing, v, want)
		}
	}
}

func TestNetworkOperationCountsByNetworkVerbAndResult(t *testing.T) {
	m := New()
	m.NetworkOperation("ns/vlan100", "ADD", 3*time.Millisecond, nil)
	m.NetworkOperation("ns/vlan100", "ADD", 40*time.Millisecond, nil)
	m.NetworkOperation("ns/vlan100", "DEL", time.Millisecond, nil)
	m.NetworkOperation("ns/vlan200", "ADD", time.Second, errors.New("no address left"))
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "podvlan_agent_attach_duration_seconds" {
			continue
		}
		for _, s := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range s.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			counts[l["network"]+" "+l["verb"]+" "+l["result"]] = s.GetHistogram().GetSampleCount()
		}
	}
	want := map[string]uint64{"ns/vlan100 ADD success": 2, "ns/vlan100 DEL success": 1, "ns/vlan200 ADD error": 1}
	if !maps.Equal(counts, want) {
		t.Errorf("histogram counts %v, want %v", counts, want)
	}
}

func TestEveryMetricIsUnderThePodvlanPrefixAndBuildInfoIsExported(t *testing.T) {
	m := New()
	m.SecondaryBridgeState("br", []string{"eth1"}, true, nil, nil)
	m.CNIRequest("ADD", 0, time.Millisecond)
	m.CNIChainMissing(false)
	m.NetworkOperation("ns/n", "ADD", time.Millisecond, nil)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	seenBuildInfo := false
	for _, mf := range mfs {
		name := mf.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		if !strings.HasPrefix(name, "podvlan_") {
			t.Errorf("%s is not under podvlan_", name)
		}
		if strings.HasSuffix(name, "_total") && mf.GetType().String() != "COUNTER" {
			t.Errorf("%s ends in _total but is a %s", name, mf.GetType())
		}
		seenBuildInfo = seenBuildInfo || name == "podvlan_build_info"
	}
	if !seenBuildInfo {
		t.Error("no podvlan_build_info")
	}
}

func TestDELSpoolDepthAndRunsByResult(t *testing.T) {
	m := New()
	if n := series(t, m, "podvlan_agent_del_spool_entries"); n != 1 {
		t.Fatalf("%d series of the spool depth, want 1 from the start", n)
	}
	m.DELSpoolDepth(3)
	m.DELSpoolDepth(1)
	if v := testutil.ToFloat64(m.delSpoolDepth); v != 1 {
		t.Errorf("depth %v, want the last one, 1", v)
	}
	m.SpooledDELRun(nil)
	m.SpooledDELRun(nil)
	m.SpooledDELRun(errors.New("OVSDB away"))
	for result, want := range map[string]float64{"success": 2, "error": 1} {
		if v := testutil.ToFloat64(m.delSpoolRuns.With(prometheus.Labels{"result": result})); v != want {
			t.Errorf("runs with result %s = %v, want %v", result, v, want)
		}
	}
}
