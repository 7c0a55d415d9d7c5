package buildinfo

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/podvlan/podvlan/pkg/version"
)

func TestBuildInfoMetricCarriesTheStampedVersion(t *testing.T) {
	old := version.Version
	version.Version = "9.8.7"
	defer func() { version.Version = old }()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector("antrea-controller"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != Name {
		t.Fatalf("gathered %v, want one %s", mfs, Name)
	}
	labels := map[string]string{}
	for _, l := range mfs[0].GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["component"] != "antrea-controller" || labels["version"] != "9.8.7" || labels["revision"] == "" ||
		!strings.HasPrefix(labels["goversion"], "go") {
		t.Errorf("labels = %v", labels)
	}
	if v := mfs[0].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("value = %v, want 1", v)
	}
}
