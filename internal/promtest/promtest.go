// Package promtest reads single series out of a Prometheus registry, for the tests of packages
// that export metrics.
package promtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Find returns the series of the metric name whose labels are exactly labels; nil when there is
// none.
func Find(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, metric := range f.GetMetric() {
			if hasLabels(metric, labels) {
				return metric
			}
		}
	}
	return nil
}

// Value returns the value of a gauge or counter series; ok is false when the series does not
// exist.
func Value(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	metric := Find(t, g, name, labels)
	if metric == nil {
		return 0, false
	}
	if gauge := metric.GetGauge(); gauge != nil {
		return gauge.GetValue(), true
	}
	return metric.GetCounter().GetValue(), true
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	if len(m.GetLabel()) != len(labels) {
		return false
	}
	for _, l := range m.GetLabel() {
		if labels[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}
