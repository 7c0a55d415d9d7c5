// Package metrics holds the Prometheus metrics of antrea-agent, on a registry of its own (so that
// tests can create as many agents as they like in one process), and the plain HTTP endpoint that
// exposes them. Every name starts with podvlan_ (docs/metrics.md lists them, and the names they
// replaced).
//
// Exported metrics:
//
//	podvlan_build_info{component,version,revision,goversion}
//	                                              gauge     always 1; the build (package version)
//	podvlan_agent_secondary_bridge_ready{bridge}  gauge     1 once the secondary bridge exists as
//	                                                         configured, 0 while it cannot be ensured
//	podvlan_agent_secondary_uplink_missing{bridge,interface}
//	                                              gauge     1 for a configured uplink whose network
//	                                                         device does not exist (the agent retries),
//	                                                         0 once it is attached
//	podvlan_agent_secondary_uplink_refused{bridge,interface}
//	                                              gauge     1 for a configured uplink refused as the
//	                                                         Node's management interface, else 0
//	podvlan_agent_cni_chain_missing               gauge     1 while the antrea plugin is not chained in
//	                                                         the Node's primary CNI configuration, 0 when
//	                                                         it is (absent until first checked)
//	podvlan_agent_cni_requests_total{command,result}
//	                                              counter   CNI commands answered, result "success" or
//	                                                         the CNI error code ("7", "11", "999", ...)
//	podvlan_agent_cni_request_duration_seconds{command}
//	                                              histogram time from receiving a CNI command to
//	                                                         answering it, 1 ms to 10 s buckets
//	podvlan_agent_config_invalid                  gauge     1 while antrea-agent.conf is invalid and the
//	                                                         agent runs degraded (no secondary network
//	                                                         is attached), else 0
//	podvlan_agent_cni_chain_missing               gauge     1 while the antrea plugin should be chained in
//	                                                         the Node's primary CNI configuration and is
//	                                                         not (Pods get no secondary networks), else 0
//	podvlan_agent_cni_chain_problem               gauge     1 while the chain keeper cannot keep the chain
//	                                                         as wanted (no primary configuration, one
//	                                                         that does not load, a failed write), else 0
//	podvlan_agent_cni_chain_restored_total        counter   times antrea was chained again into a primary
//	                                                         configuration that lost it (its plugin
//	                                                         rewrote the file) or held it twice
//	podvlan_agent_attach_duration_seconds{network,verb,result}
//	                                              histogram time to attach (verb ADD) or detach (DEL)
//	                                                         one network of one Pod, by network
//	                                                         (namespace/name of the
//	                                                         NetworkAttachmentDefinition) and result
//	                                                         ("success" or "error")
//	podvlan_agent_del_spool_entries               gauge     CNI DELs waiting in the Node's DEL spool
//	                                                         (spooled by the shim while the agent could
//	                                                         not take them), as of the last pass of the
//	                                                         drainer (every second)
//	podvlan_agent_del_spool_runs_total{result}    counter   spooled DELs the agent ran, result "success"
//	                                                         (the entry is removed) or "error" (it stays
//	                                                         and is retried)
//
// The uplink gauges exist for every configured uplink from the first time the bridge is ensured,
// and go back to 0 rather than disappearing, so that alerts on them resolve. While the bridge
// itself cannot be ensured the uplinks are not examined and their gauges keep their last value.
//
// The Go runtime and process collectors are registered as well.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/podvlan/podvlan/pkg/version/buildinfo"
)

// Metrics is the set of agent metrics and the registry that exposes them.
type Metrics struct {
	registry      *prometheus.Registry
	bridgeReady   *prometheus.GaugeVec
	uplinkMissing *prometheus.GaugeVec
	uplinkRefused *prometheus.GaugeVec
	cniRequests   *prometheus.CounterVec
	cniDuration   *prometheus.HistogramVec
	configInvalid prometheus.Gauge
	chainMissing  prometheus.Gauge
	chainProblem  prometheus.Gauge
	chainRestored prometheus.Counter

	delSpoolDepth prometheus.Gauge
	delSpoolRuns  *prometheus.CounterVec

	// ready answers /readyz; nil until SetReadiness.
	ready  atomic.Pointer[func() error]
	attach *prometheus.HistogramVec
}

// Component is the component label of podvlan_build_info.
const Component = "antrea-agent"

// cniDurationBuckets span a STATUS answered from memory (about a millisecond) to an ADD that
// waits for IPPool write conflicts and OVS (seconds); the shim gives up well before 10 s.
var cniDurationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// New creates the metrics on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		bridgeReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podvlan_agent_secondary_bridge_ready",
			Help: "1 when the secondary OVS bridge exists as configured, 0 while the agent cannot ensure it.",
		}, []string{"bridge"}),
		uplinkMissing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podvlan_agent_secondary_uplink_missing",
			Help: "1 for a configured uplink of the secondary bridge whose network device does not exist (retried), 0 once attached.",
		}, []string{"bridge", "interface"}),
		uplinkRefused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podvlan_agent_secondary_uplink_refused",
			Help: "1 for a configured uplink of the secondary bridge refused because it carries the Node's own traffic, else 0.",
		}, []string{"bridge", "interface"}),
		cniRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podvlan_agent_cni_requests_total",
			Help: "CNI commands answered by the agent, by command and result (success or the CNI error code).",
		}, []string{"command", "result"}),
		cniDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "podvlan_agent_cni_request_duration_seconds",
			Help:    "Time the agent took to answer a CNI command, by command.",
			Buckets: cniDurationBuckets,
		}, []string{"command"}),
		configInvalid: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podvlan_agent_config_invalid",
			Help: "1 while antrea-agent.conf is invalid and the agent runs degraded (secondary networks are refused), else 0.",
		}),
		chainMissing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podvlan_agent_cni_chain_missing",
			Help: "1 while the antrea CNI plugin should be chained in the Node's primary CNI configuration and is not (Pods get no secondary networks), else 0.",
		}),
		chainProblem: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podvlan_agent_cni_chain_problem",
			Help: "1 while the antrea entry of the Node's CNI configuration cannot be kept as wanted, else 0.",
		}),
		chainRestored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podvlan_agent_cni_chain_restored_total",
			Help: "Times antrea was chained again into a primary CNI configuration that lost it or held it twice.",
		}),
		attach: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "podvlan_agent_attach_duration_seconds",
			Help:    "Time to attach (ADD) or detach (DEL) one secondary network of one Pod, by network, verb and result.",
			Buckets: cniDurationBuckets,
		}, []string{"network", "verb", "result"}),
		delSpoolDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podvlan_agent_del_spool_entries",
			Help: "CNI DELs waiting in the Node's DEL spool (spooled by the shim while the agent could not take them).",
		}),
		delSpoolRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podvlan_agent_del_spool_runs_total",
			Help: "Spooled CNI DELs the agent ran, by result (success: removed from the spool; error: retried).",
		}, []string{"result"}),
	}
	m.registry.MustRegister(m.configInvalid, m.chainMissing, m.chainProblem, m.chainRestored, m.delSpoolDepth, m.delSpoolRuns)
	m.registry.MustRegister(m.bridgeReady, m.uplinkMissing, m.uplinkRefused, m.cniRequests, m.cniDuration,
		m.attach, buildinfo.NewCollector(Component),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Registry is the registry holding the metrics, for tests that gather them.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// SecondaryBridgeState records the outcome of one attempt to ensure bridge with its configured
// uplinks: whether the bridge is ready, and which uplinks were found missing or refused. When the
// bridge is not ready the uplinks were not examined, so their gauges are left as they were.
func (m *Metrics) SecondaryBridgeState(bridge string, uplinks []string, ready bool, missing, refused []string) {
	if !ready {
		m.bridgeReady.WithLabelValues(bridge).Set(0)
		return
	}
	m.bridgeReady.WithLabelValues(bridge).Set(1)
	// Names outside the configuration should not happen; reporting them beats hiding them.
	for _, name := range slices.Compact(slices.Sorted(slices.Values(slices.Concat(uplinks, missing, refused)))) {
		m.uplinkMissing.WithLabelValues(bridge, name).Set(flag(slices.Contains(missing, name)))
		m.uplinkRefused.WithLabelValues(bridge, name).Set(flag(slices.Contains(refused, name)))
	}
}

// CNIRequest records one answered CNI command; code is its CNI error code, 0 for success.
func (m *Metrics) CNIRequest(command string, code uint32, took time.Duration) {
	m.cniRequests.WithLabelValues(command, cniResult(code)).Inc()
	m.cniDuration.WithLabelValues(command).Observe(took.Seconds())
}

// cniResult is the result label of a CNI error code.
func cniResult(code uint32) string {
	if code == 0 {
		return "success"
	}
	return strconv.FormatUint(uint64(code), 10)
}

func flag(set bool) float64 {
	if set {
		return 1
	}
	return 0
}

// ConfigInvalid records whether antrea-agent.conf is invalid (the agent runs degraded).
func (m *Metrics) ConfigInvalid(invalid bool) { m.configInvalid.Set(flag(invalid)) }

// CNIChainMissing records whether the antrea plugin should be chained in the Node's primary CNI
// configuration and is not (the chain keeper checks it).
func (m *Metrics) CNIChainMissing(missing bool) { m.chainMissing.Set(flag(missing)) }

// CNIChainProblem records whether the chain keeper cannot keep the chain as wanted.
func (m *Metrics) CNIChainProblem(problem bool) { m.chainProblem.Set(flag(problem)) }

// CNIChainRestored counts one re-chaining.
func (m *Metrics) CNIChainRestored() { m.chainRestored.Inc() }

// NetworkOperation records how long one network of one Pod took to attach (verb "ADD") or detach
// ("DEL"); network is the NetworkAttachmentDefinition as namespace/name.
func (m *Metrics) NetworkOperation(network, verb string, took time.Duration, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	m.attach.WithLabelValues(network, verb, result).Observe(took.Seconds())
}

// DELSpoolDepth records how many DELs wait in the Node's DEL spool.
func (m *Metrics) DELSpoolDepth(n int) { m.delSpoolDepth.Set(float64(n)) }

// SpooledDELRun records one run of a spooled DEL; err is its outcome.
func (m *Metrics) SpooledDELRun(err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	m.delSpoolRuns.WithLabelValues(result).Inc()
}
