// Package metrics holds the Prometheus metrics of antrea-controller, on a registry of its own (so
// that tests can create as many controllers as they like in one process). Every name starts with
// podvlan_ (docs/metrics.md lists them, and the names they replaced).
//
// Exported metrics:
//
//	podvlan_build_info{component,version,revision,goversion}
//	                                               gauge    always 1; the build (package version)
//	podvlan_ippool_capacity_addresses{pool}        gauge    allocatable addresses of the IPPool (network,
//	                                                        broadcast and gateway excluded; capped at 2^31-1)
//	podvlan_ippool_allocated_addresses{pool}       gauge    addresses held: status.ipAddresses plus usage.inBlocks
//	podvlan_ippool_gc_released_total               counter  allocations released by the garbage collector
//	podvlan_ippool_gc_pending_orphans              gauge    allocations seen without a live owner, waiting
//	                                                        for the grace period to end
//	podvlan_ippool_gc_runs_total{result}           counter  collection passes, result "success" or "error"
//	podvlan_ippool_webhook_denials_total{operation} counter IPPool admission requests denied, by
//	                                                        operation (CREATE, UPDATE, DELETE)
//	podvlan_ippool_webhook_requests_total{operation} counter IPPool admission requests answered
//	podvlan_controller_serving_certificate_expiry_timestamp_seconds
//	                                               gauge    when the certificate served now expires (Unix
//	                                                        time); it moves forward at every rotation or reload
//	podvlan_controller_serving_certificate_reloads_total{result}
//	                                               counter  certificate rotations (self-signed) and reloads
//	                                                        (from files), result "success" or "error"
//
// The Go runtime and process collectors are registered as well.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/apis/crd/validation"
	"github.com/podvlan/podvlan/pkg/version/buildinfo"
)

// Metrics is the set of controller metrics and the registry that exposes them.
type Metrics struct {
	registry        *prometheus.Registry
	poolTotal       *prometheus.GaugeVec
	poolUsed        *prometheus.GaugeVec
	gcReleased      prometheus.Counter
	gcPending       prometheus.Gauge
	gcRuns          *prometheus.CounterVec
	webhookDenials  *prometheus.CounterVec
	webhookRequests *prometheus.CounterVec
	certExpiry      prometheus.Gauge
	certReloads     *prometheus.CounterVec
}

// Component is the component label of podvlan_build_info.
const Component = "antrea-controller"

// New creates the metrics on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		poolTotal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podvlan_ippool_capacity_addresses",
			Help: "Allocatable addresses of the IPPool: its ranges without network, broadcast and gateway addresses (capped at 2^31-1).",
		}, []string{"pool"}),
		poolUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podvlan_ippool_allocated_addresses",
			Help: "Addresses held in the IPPool: entries of status.ipAddresses plus the holders its IPPoolBlocks report.",
		}, []string{"pool"}),
		gcReleased: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podvlan_ippool_gc_released_total",
			Help: "IPPool allocations released by the controller because their owner Pod was gone.",
		}),
		gcPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podvlan_ippool_gc_pending_orphans",
			Help: "IPPool allocations without a live owner that wait for the grace period before release.",
		}),
		gcRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podvlan_ippool_gc_runs_total",
			Help: "IPPool garbage collection passes, by result (success or error).",
		}, []string{"result"}),
		webhookDenials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podvlan_ippool_webhook_denials_total",
			Help: "IPPool admission requests denied by the validating webhook, by operation.",
		}, []string{"operation"}),
		webhookRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podvlan_ippool_webhook_requests_total",
			Help: "IPPool admission requests answered by the validating webhook, by operation.",
		}, []string{"operation"}),
		certExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podvlan_controller_serving_certificate_expiry_timestamp_seconds",
			Help: "When the serving certificate of the webhook, health and metrics endpoint expires, in Unix time.",
		}),
		certReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podvlan_controller_serving_certificate_reloads_total",
			Help: "Rotations of the generated serving certificate and reloads of a certificate given in files, by result.",
		}, []string{"result"}),
	}
	m.registry.MustRegister(m.poolTotal, m.poolUsed, m.gcReleased, m.gcPending, m.gcRuns,
		m.webhookDenials, m.webhookRequests, m.certExpiry, m.certReloads, buildinfo.NewCollector(Component),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Registry is the registry holding the metrics, for tests that gather them.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// ObservePool sets the gauges of one pool. The total is computed from the spec rather than read
// from status.usage.total, which an agent writes only when it allocates; an invalid spec (possible
// for pools created before the webhook) reports only the used count.
func (m *Metrics) ObservePool(pool *v1beta1.IPPool) {
	if parsed, err := validation.ParsePool(pool); err == nil {
		m.poolTotal.WithLabelValues(pool.Name).Set(float64(parsed.UsageTotal()))
	} else {
		m.poolTotal.DeleteLabelValues(pool.Name)
	}
	m.poolUsed.WithLabelValues(pool.Name).Set(float64(len(pool.Status.IPAddresses) + pool.Status.Usage.InBlocks))
}

// ForgetPool drops the gauges of a deleted pool.
func (m *Metrics) ForgetPool(name string) {
	m.poolTotal.DeleteLabelValues(name)
	m.poolUsed.DeleteLabelValues(name)
}

// GCReleased counts allocations released by the garbage collector.
func (m *Metrics) GCReleased(n int) { m.gcReleased.Add(float64(n)) }

// GCPending sets the number of orphans waiting for their grace period.
func (m *Metrics) GCPending(n int) { m.gcPending.Set(float64(n)) }

// GCRun counts one collection pass.
func (m *Metrics) GCRun(err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	m.gcRuns.WithLabelValues(result).Inc()
}

// WebhookRequest counts one answered admission request and, when it was denied, one denial.
func (m *Metrics) WebhookRequest(operation string, allowed bool) {
	m.webhookRequests.WithLabelValues(operation).Inc()
	if !allowed {
		m.webhookDenials.WithLabelValues(operation).Inc()
	}
}

// ServingCertificate records the expiry of the certificate now served.
func (m *Metrics) ServingCertificate(notAfter time.Time) { m.certExpiry.Set(float64(notAfter.Unix())) }

// CertificateReload counts one rotation or reload of the serving certificate.
func (m *Metrics) CertificateReload(err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	m.certReloads.WithLabelValues(result).Inc()
}
