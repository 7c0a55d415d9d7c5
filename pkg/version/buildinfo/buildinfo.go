// Package buildinfo exports the build of a podvlan component (package version) as the
// podvlan_build_info metric.
package buildinfo

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podvlan/podvlan/pkg/version"
)

// Name is the name of the build information metric.
const Name = "podvlan_build_info"

// NewCollector returns the podvlan_build_info gauge of component (antrea-agent,
// antrea-controller): always 1, its labels carrying the build, so that a query can join any other
// series of the same job with the version that produced it.
func NewCollector(component string) prometheus.Collector {
	i := version.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: Name,
		Help: "The build of this podvlan component: always 1, with its version, source revision and Go version as labels.",
		ConstLabels: prometheus.Labels{
			"component": component, "version": i.Version, "revision": i.Revision, "goversion": i.GoVersion,
		},
	})
	g.Set(1)
	return g
}
