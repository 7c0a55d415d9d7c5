package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// series is the number of series of the metric name in m's registry: counting by name through the
// registry also checks that the metric is registered. Count before reading a value of a vector:
// WithLabelValues creates the series it reads.
func series(t *testing.T, m *Metrics, name string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(m.Registry(), name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func testPool(name string, ranges ...v1beta1.IPRange) *v1beta1.IPPool {
	return &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.IPPoolSpec{IPRanges: ranges,
		SubnetInfo: v1beta1.SubnetInfo{Gateway: "10.0.0.1", PrefixLength: 24}}}
}

func TestPoolGauges(t *testing.T) {
	tests := []struct {
		name      string
		pool      *v1beta1.IPPool
		used      int
		wantTotal float64
		wantNoTot bool
	}{
		{name: "the total leaves out network address and gateway", pool: testPool("a", v1beta1.IPRange{CIDR: "10.0.0.0/26"}), used: 2, wantTotal: 62},
		{name: "the total leaves out the broadcast address", pool: testPool("b", v1beta1.IPRange{Start: "10.0.0.250", End: "10.0.0.255"}), wantTotal: 5},
		{name: "an invalid pool reports only its used count", pool: testPool("c", v1beta1.IPRange{CIDR: "10.9.0.0/26"}), used: 1, wantNoTot: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			for i := 0; i < tt.used; i++ {
				tt.pool.Status.IPAddresses = append(tt.pool.Status.IPAddresses, v1beta1.IPAddressState{IPAddress: "x"})
			}
			m.ObservePool(tt.pool)
			if present := series(t, m, "podvlan_ippool_capacity_addresses") == 1; present == tt.wantNoTot {
				t.Errorf("total present %v, want %v", present, !tt.wantNoTot)
			} else if present {
				if total := testutil.ToFloat64(m.poolTotal.WithLabelValues(tt.pool.Name)); total != tt.wantTotal {
					t.Errorf("total %v, want %v", total, tt.wantTotal)
				}
			}
			if n := series(t, m, "podvlan_ippool_allocated_addresses"); n != 1 {
				t.Fatalf("used has %d series, want 1", n)
			}
			if used := testutil.ToFloat64(m.poolUsed.WithLabelValues(tt.pool.Name)); used != float64(tt.used) {
				t.Errorf("used %v, want %d", used, tt.used)
			}
			m.ForgetPool(tt.pool.Name)
			if n := series(t, m, "podvlan_ippool_capacity_addresses") + series(t, m, "podvlan_ippool_allocated_addresses"); n != 0 {
				t.Errorf("a forgotten pool still has %d gauges", n)
			}
		})
	}
}

func TestWebhookCountersCountDenialsPerOperation(t *testing.T) {
	m := New()
	m.WebhookRequest("CREATE", true)
	m.WebhookRequest("DELETE", false)
	m.WebhookRequest("DELETE", false)
	// Only DELETE was denied: an allowed CREATE must not have a denial series.
	if n := series(t, m, "podvlan_ippool_webhook_denials_total"); n != 1 {
		t.Errorf("denials has %d series, want 1 (DELETE)", n)
	}
	if v := testutil.ToFloat64(m.webhookDenials.WithLabelValues("DELETE")); v != 2 {
		t.Errorf("DELETE denials %v, want 2", v)
	}
	if v := testutil.ToFloat64(m.webhookRequests.WithLabelValues("DELETE")); v != 2 {
		t.Errorf("DELETE requests %v, want 2", v)
	}
}

func TestGCCounters(t *testing.T) {
	m := New()
	m.GCReleased(3)
	m.GCPending(4)
	m.GCRun(nil)
	for _, name := range []string{"podvlan_ippool_gc_released_total", "podvlan_ippool_gc_pending_orphans", "podvlan_ippool_gc_runs_total"} {
		if n := series(t, m, name); n != 1 {
			t.Errorf("%s has %d series, want 1", name, n)
		}
	}
	if v := testutil.ToFloat64(m.gcReleased); v != 3 {
		t.Errorf("released %v, want 3", v)
	}
	if v := testutil.ToFloat64(m.gcPending); v != 4 {
		t.Errorf("pending %v, want 4", v)
	}
	if v := testutil.ToFloat64(m.gcRuns.WithLabelValues("success")); v != 1 {
		t.Errorf("runs %v, want 1", v)
	}
}
