package engine_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podvlan/podvlan/pkg/agent/engine"
	"github.com/podvlan/podvlan/pkg/agent/engine/enginetest"
	"github.com/podvlan/podvlan/pkg/agent/plan"
)

type observation struct{ network, verb, result string }

// observed is an Options.Observe that records what it is told.
type observed struct {
	mu  sync.Mutex
	got []observation
}

func (o *observed) observe(network, verb string, took time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	result := "success"
	if err != nil {
		result = "error"
	}
	if took < 0 {
		result = "negative duration"
	}
	o.got = append(o.got, observation{network, verb, result})
}

func (o *observed) take() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.got
	o.got = nil
	slices.SortFunc(out, func(a, b observation) int { return strings.Compare(a.network+a.verb, b.network+b.verb) })
	return out
}

// observedRig is the fakes' engine with an Observe option.
func observedRig() (*enginetest.Rig, *observed) {
	r := enginetest.NewRig()
	o := &observed{}
	r.Engine = engine.New(r.Ports, r.Intents, r.Addresses, engine.Options{Bridge: "br-sec", Kernel: r.Kernel, Observe: o.observe})
	return r, o
}

func vlan200(ifName string) plan.Attachment {
	a := vlan100(ifName)
	a.Network, a.VLAN, a.Pools = "ns/vlan200", 200, []string{"pool200"}
	return a
}

func TestEachNetworkOfAnAttachAndADetachIsObserved(t *testing.T) {
	r, o := observedRig()
	if _, err := r.Engine.Attach(t.Context(), sandbox, []plan.Attachment{vlan100("eth1"), vlan200("eth2")}); err != nil {
		t.Fatal(err)
	}
	want := []observation{{"ns/vlan100", "ADD", "success"}, {"ns/vlan200", "ADD", "success"}}
	if got := o.take(); !slices.Equal(got, want) {
		t.Errorf("attach observed %v, want %v", got, want)
	}
	if err := r.Engine.Detach(t.Context(), sandbox); err != nil {
		t.Fatal(err)
	}
	want = []observation{{"ns/vlan100", "DEL", "success"}, {"ns/vlan200", "DEL", "success"}}
	if got := o.take(); !slices.Equal(got, want) {
		t.Errorf("detach observed %v, want %v", got, want)
	}
}

func TestAFailedAttachIsObservedAsAnError(t *testing.T) {
	r, o := observedRig()
	r.Addresses.Err = enginetest.ErrInjected
	if _, err := r.Engine.Attach(t.Context(), sandbox, []plan.Attachment{vlan100("eth1")}); err == nil {
		t.Fatal("attach succeeded despite the injected allocation failure")
	}
	want := []observation{{"ns/vlan100", "ADD", "error"}}
	if got := o.take(); !slices.Equal(got, want) {
		t.Errorf("observed %v, want %v", got, want)
	}
}
