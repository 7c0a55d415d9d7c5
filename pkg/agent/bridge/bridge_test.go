package bridge

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/podvlan/podvlan/pkg/ovs"
)

type fakeSwitch struct {
	bridgeErr, uplinkErr error
}

func (f *fakeSwitch) EnsureBridge(context.Context, ovs.BridgeConfig) error  { return f.bridgeErr }
func (f *fakeSwitch) EnsureUplinks(context.Context, string, []string) error { return f.uplinkErr }
func (f *fakeSwitch) Reconnected() <-chan struct{}                          { return nil }

func TestEnsure(t *testing.T) {
	missing := &ovs.MissingInterfacesError{Bridge: "br", Names: []string{"eth9"}}
	refused := &ovs.ManagementInterfacesError{Bridge: "br", Reasons: map[string]string{"eth0": "holds node IP"}}
	tests := []struct {
		name       string
		sw         fakeSwitch
		wantRetry  bool
		wantReady  bool
		wantEvents []string
	}{
		{name: "all good", wantReady: true, wantEvents: []string{ReasonBridgeReady}},
		{name: "bridge failure is retried and not ready", sw: fakeSwitch{bridgeErr: errors.New("boom")}, wantRetry: true, wantEvents: []string{ReasonBridgeFailed}},
		{name: "missing uplink is retried but ready", sw: fakeSwitch{uplinkErr: missing}, wantRetry: true, wantReady: true, wantEvents: []string{ReasonUplinkMissing}},
		{name: "refused uplink is not retried", sw: fakeSwitch{uplinkErr: refused}, wantReady: true, wantEvents: []string{ReasonUplinkRefused}},
		{name: "both get an event each", sw: fakeSwitch{uplinkErr: errors.Join(refused, missing)}, wantRetry: true, wantReady: true,
			wantEvents: []string{ReasonUplinkRefused, ReasonUplinkMissing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := record.NewFakeRecorder(10)
			m := New(&tt.sw, ovs.BridgeConfig{Name: "br"}, []string{"eth1"}, rec, &corev1.ObjectReference{Kind: "Node", Name: "n"})
			if retry := m.ensure(context.Background()); retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tt.wantRetry)
			}
			if ready := m.Ready() == nil; ready != tt.wantReady {
				t.Errorf("ready = %v, want %v", ready, tt.wantReady)
			}
			close(rec.Events)
			var got []string
			for e := range rec.Events {
				got = append(got, strings.Fields(e)[1])
			}
			if strings.Join(got, ",") != strings.Join(tt.wantEvents, ",") {
				t.Errorf("events %v, want %v", got, tt.wantEvents)
			}
		})
	}
}

func TestRepeatedEventsAreNotRecordedTwice(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	sw := &fakeSwitch{uplinkErr: errors.Join(
		&ovs.ManagementInterfacesError{Bridge: "br", Reasons: map[string]string{"eth0": "holds node IP"}},
		&ovs.MissingInterfacesError{Bridge: "br", Names: []string{"eth9"}})}
	m := New(sw, ovs.BridgeConfig{Name: "br"}, []string{"eth9"}, rec, &corev1.ObjectReference{Kind: "Node", Name: "n"})
	for range 3 {
		m.ensure(context.Background())
	}
	if n := len(rec.Events); n != 2 {
		t.Errorf("%d events for the same two problems, want 2", n)
	}
	sw.uplinkErr = nil
	m.ensure(context.Background())
	sw.uplinkErr = &ovs.MissingInterfacesError{Bridge: "br", Names: []string{"eth9"}}
	m.ensure(context.Background())
	if n := len(rec.Events); n != 4 {
		t.Errorf("%d events after recovery and relapse, want 4 (ready, then missing again)", n)
	}
}

func TestOnStateReportsEveryEnsure(t *testing.T) {
	missing := &ovs.MissingInterfacesError{Bridge: "br", Names: []string{"eth9", "eth8"}}
	refused := &ovs.ManagementInterfacesError{Bridge: "br", Reasons: map[string]string{"eth0": "holds node IP", "bond0": "default route"}}
	type state struct {
		ready            bool
		missing, refused []string
	}
	tests := []struct {
		name string
		sw   fakeSwitch
		want state
	}{
		{name: "all good reports ready and no problems", want: state{ready: true}},
		{name: "a bridge failure reports not ready and no uplink verdict", sw: fakeSwitch{bridgeErr: errors.New("boom")}, want: state{}},
		{name: "missing uplinks are named, sorted", sw: fakeSwitch{uplinkErr: missing}, want: state{ready: true, missing: []string{"eth8", "eth9"}}},
		{name: "refused uplinks are named, sorted", sw: fakeSwitch{uplinkErr: refused}, want: state{ready: true, refused: []string{"bond0", "eth0"}}},
		{name: "missing and refused together are both named", sw: fakeSwitch{uplinkErr: errors.Join(refused, missing)},
			want: state{ready: true, missing: []string{"eth8", "eth9"}, refused: []string{"bond0", "eth0"}}},
		{name: "a wrapped problem is still recognised", sw: fakeSwitch{uplinkErr: fmt.Errorf("ensure uplinks: %w", missing)},
			want: state{ready: true, missing: []string{"eth8", "eth9"}}},
		{name: "another uplink error names no uplink", sw: fakeSwitch{uplinkErr: errors.New("eth1 is a port of br-int")}, want: state{ready: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(&tt.sw, ovs.BridgeConfig{Name: "br"}, []string{"eth1"}, nil, nil)
			var got []state
			m.OnState(func(ready bool, missing, refused []string) {
				got = append(got, state{ready: ready, missing: missing, refused: refused})
			})
			m.ensure(context.Background())
			m.ensure(context.Background())
			if len(got) != 2 {
				t.Fatalf("observer called %d times for 2 ensures, want 2", len(got))
			}
			if !reflect.DeepEqual(got[1], tt.want) {
				t.Errorf("state %+v, want %+v", got[1], tt.want)
			}
		})
	}
}

func TestOnStateSeesAnUplinkAppear(t *testing.T) {
	sw := &fakeSwitch{uplinkErr: &ovs.MissingInterfacesError{Bridge: "br", Names: []string{"eth9"}}}
	m := New(sw, ovs.BridgeConfig{Name: "br"}, []string{"eth9"}, nil, nil)
	var lastMissing []string
	m.OnState(func(_ bool, missing, _ []string) { lastMissing = missing })
	m.ensure(context.Background())
	if !slices.Equal(lastMissing, []string{"eth9"}) {
		t.Fatalf("missing %v while the device is absent, want [eth9]", lastMissing)
	}
	sw.uplinkErr = nil
	m.ensure(context.Background())
	if lastMissing != nil {
		t.Errorf("missing %v after the device appeared, want nil", lastMissing)
	}
}
