package metrics

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/promtest"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

func value(t *testing.T, m *Metrics, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	return promtest.Value(t, m.Registry(), name, labels)
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
			total, ok := value(t, m, "podvlan_ippool_capacity_addresses", map[string]string{"pool": tt.pool.Name})
			if ok == tt.wantNoTot || (ok && total != tt.wantTotal) {
				t.Errorf("total %v (present %v), want %v (present %v)", total, ok, tt.wantTotal, !tt.wantNoTot)
			}
			if used, _ := value(t, m, "podvlan_ippool_allocated_addresses", map[string]string{"pool": tt.pool.Name}); used != float64(tt.used) {
				t.Errorf("used %v, want %d", used, tt.used)
			}
			m.ForgetPool(tt.pool.Name)
			if _, ok := value(t, m, "podvlan_ippool_allocated_addresses", map[string]string{"pool": tt.pool.Name}); ok {
				t.Error("a forgotten pool still has a used gauge")
			}
		})
	}
}

func TestWebhookCountersCountDenialsPerOperation(t *testing.T) {
	m := New()
	m.WebhookRequest("CREATE", true)
	m.WebhookRequest("DELETE", false)
	m.WebhookRequest("DELETE", false)
	if v, _ := value(t, m, "podvlan_ippool_webhook_denials_total", map[string]string{"operation": "DELETE"}); v != 2 {
		t.Errorf("DELETE denials %v, want 2", v)
	}
	if _, ok := value(t, m, "podvlan_ippool_webhook_denials_total", map[string]string{"operation": "CREATE"}); ok {
		t.Error("an allowed CREATE was counted as a denial")
	}
	if v, _ := value(t, m, "podvlan_ippool_webhook_requests_total", map[string]string{"operation": "DELETE"}); v != 2 {
		t.Errorf("DELETE requests %v, want 2", v)
	}
}

func TestGCCounters(t *testing.T) {
	m := New()
	m.GCReleased(3)
	m.GCPending(4)
	m.GCRun(nil)
	if v, _ := value(t, m, "podvlan_ippool_gc_released_total", nil); v != 3 {
		t.Errorf("released %v, want 3", v)
	}
	if v, _ := value(t, m, "podvlan_ippool_gc_pending_orphans", nil); v != 4 {
		t.Errorf("pending %v, want 4", v)
	}
	if v, _ := value(t, m, "podvlan_ippool_gc_runs_total", map[string]string{"result": "success"}); v != 1 {
		t.Errorf("runs %v, want 1", v)
	}
}
