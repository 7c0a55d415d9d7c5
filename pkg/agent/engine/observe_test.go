package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podvlan/podvlan/pkg/ipam"
	"github.com/podvlan/podvlan/pkg/ovs"
)

// listedPorts is a Ports whose bridge holds fixed ports; deletions succeed.
type listedPorts struct{ ports []ovs.PodPort }

func (p *listedPorts) CreateAccessPort(context.Context, ovs.PortSpec) (ovs.PodPort, error) {
	return ovs.PodPort{}, errors.New("not expected")
}
func (p *listedPorts) RecordAttachment(context.Context, string, ovs.AttachmentRecord) error {
	return nil
}
func (p *listedPorts) DeletePort(context.Context, string) error                { return nil }
func (p *listedPorts) DeletePortsOf(context.Context, string) ([]string, error) { return nil, nil }
func (p *listedPorts) ListPodPorts(context.Context, string) ([]ovs.PodPort, error) {
	return p.ports, nil
}

// releasing is an Addresses whose container release returns err.
type releasing struct{ err error }

func (r releasing) Allocate(context.Context, ipam.Request) (*ipam.Result, error) { return nil, r.err }
func (r releasing) Release(context.Context, ipam.Owner) error                    { return nil }
func (r releasing) ReleaseContainer(context.Context, string) error               { return r.err }

type observation struct{ network, verb, result string }

func TestDetachReportsEachNetworkOfTheSandbox(t *testing.T) {
	port := func(container, ifName, network string) ovs.PodPort {
		return ovs.PodPort{Name: "pv" + container + ifName, Owner: ovs.PortOwner{PodNamespace: "ns", PodName: "p",
			ContainerID: container, IfName: ifName, Network: network}}
	}
	ports := &listedPorts{ports: []ovs.PodPort{
		port("c1", "eth1", "ns/vlan100"), port("c1", "eth2", "ns/vlan200"), port("c2", "eth1", "ns/other"),
	}}
	cases := []struct {
		name    string
		release error
		want    []observation
	}{
		{"a clean detach reports success for each network of the container only", nil,
			[]observation{{"ns/vlan100", "DEL", "success"}, {"ns/vlan200", "DEL", "success"}}},
		{"a failed detach reports an error for each network", errors.New("API server down"),
			[]observation{{"ns/vlan100", "DEL", "error"}, {"ns/vlan200", "DEL", "error"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []observation
			e := New(ports, releasing{tc.release}, Options{Bridge: "br", Observe: func(network, verb string, took time.Duration, err error) {
				mu.Lock()
				defer mu.Unlock()
				result := "success"
				if err != nil {
					result = "error"
				}
				if took < 0 {
					t.Errorf("negative duration %v", took)
				}
				got = append(got, observation{network, verb, result})
			}})
			err := e.Detach(t.Context(), Sandbox{PodNamespace: "ns", PodName: "p", ContainerID: "c1"})
			if (err != nil) != (tc.release != nil) {
				t.Fatalf("Detach: %v", err)
			}
			slices.SortFunc(got, func(a, b observation) int { return strings.Compare(a.network, b.network) })
			if !slices.Equal(got, tc.want) {
				t.Errorf("observed %v, want %v", got, tc.want)
			}
		})
	}
}
