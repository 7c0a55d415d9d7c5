package engine_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/podvlan/podvlan/pkg/agent/engine"
	"github.com/podvlan/podvlan/pkg/agent/engine/enginetest"
	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/veth"
	"github.com/podvlan/podvlan/pkg/cni/netconf"
)

var sandbox = plan.Sandbox{PodNamespace: "ns", PodName: "pod", PodUID: "uid-1", ContainerID: "c1", NetNS: "/var/run/netns/pod"}

func vlan100(ifName string) plan.Attachment {
	return plan.Attachment{Network: "ns/vlan100", IfName: ifName, VLAN: 100, Pools: []string{"pool100"},
		Routes: []netconf.Route{{Dst: netip.MustParsePrefix("192.0.2.0/24")}}, WritesStatus: true}
}

func TestAttachRollsBackEveryStepThatSucceeded(t *testing.T) {
	host := veth.HostName(sandbox.ContainerID, "eth1")
	tests := []struct {
		name    string
		inject  func(r *enginetest.Rig)
		cancel  bool
		wantErr string
		// wantUndo is the rollback, in order: the port before the veth before the addresses.
		wantUndo []string
	}{
		{name: "allocation fails: the veth and the port go", inject: func(r *enginetest.Rig) { r.Addresses.Err = enginetest.ErrInjected },
			wantErr: "allocate addresses: injected failure", wantUndo: []string{"delete port " + host, "delete veth " + host}},
		{name: "veth fails: the addresses go", inject: func(r *enginetest.Rig) { r.Kernel.PrepareErr = enginetest.ErrInjected },
			wantErr: "injected failure", wantUndo: []string{"release eth1"}},
		{name: "port fails: the veth and the addresses go", inject: func(r *enginetest.Rig) { r.Ports.CreateErr = enginetest.ErrInjected },
			wantErr: "injected failure", wantUndo: []string{"delete veth " + host, "release eth1"}},
		{name: "configuring the Pod end fails: port, veth, addresses go", inject: func(r *enginetest.Rig) { r.Kernel.ConfigureErr = enginetest.ErrInjected },
			wantErr: "injected failure", wantUndo: []string{"delete port " + host, "delete veth " + host, "release eth1"}},
		{name: "the pools' VLAN changed: port, veth, addresses go", inject: func(r *enginetest.Rig) { r.Addresses.VLAN = 200 },
			wantErr: "VLAN changed to 200", wantUndo: []string{"delete port " + host, "delete veth " + host, "release eth1"}},
		{name: "recording on the port fails: port, veth, addresses go", inject: func(r *enginetest.Rig) { r.Ports.RecordErr = enginetest.ErrInjected },
			wantErr: "injected failure", wantUndo: []string{"delete port " + host, "delete veth " + host, "release eth1"}},
		{name: "context cancelled: nothing is made", cancel: true, wantErr: "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := enginetest.NewRig()
			if tt.inject != nil {
				tt.inject(r)
			}
			ctx := t.Context()
			if tt.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				cancel()
			}
			attached, err := r.Engine.Attach(ctx, sandbox, []plan.Attachment{vlan100("eth1")})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Attach() = %v, %v; want an error containing %q", attached, err, tt.wantErr)
			}
			var attachErr *engine.AttachError
			if !errors.As(err, &attachErr) || attachErr.Network != "ns/vlan100" || attachErr.IfName != "eth1" {
				t.Errorf("error %v does not name network ns/vlan100 as eth1", err)
			}
			if left := r.World.Leftovers(); left != "" {
				t.Errorf("left behind: %s", left)
			}
			if !slices.Equal(r.World.Log, tt.wantUndo) {
				t.Errorf("rollback %q, want %q", r.World.Log, tt.wantUndo)
			}
		})
	}
}

func TestAttachOneFailureRollsBackTheOthers(t *testing.T) {
	r := enginetest.NewRig()
	raw := plan.Attachment{Network: "ns/raw", IfName: "eth2"}
	// eth3's veth fails; eth1 and eth2 succeed and must go again.
	bad := vlan100("eth3")
	failing := &failingPrepare{Kernel: r.Kernel, ifName: "eth3"}
	r.Engine = engine.New(r.Ports, r.Intents, r.Addresses, engine.Options{Bridge: "br-sec", Kernel: failing})
	_, err := r.Engine.Attach(t.Context(), sandbox, []plan.Attachment{vlan100("eth1"), raw, bad})
	var attachErr *engine.AttachError
	if !errors.As(err, &attachErr) || attachErr.IfName != "eth3" {
		t.Fatalf("Attach() = %v, want the error of eth3", err)
	}
	if left := r.World.Leftovers(); left != "" {
		t.Errorf("left behind: %s", left)
	}
}

// failingPrepare fails Prepare for one interface only.
type failingPrepare struct {
	*enginetest.Kernel
	ifName string
}

func (f *failingPrepare) Prepare(ctx context.Context, spec veth.Spec) (engine.Link, error) {
	if spec.IfName == f.ifName {
		return nil, enginetest.ErrInjected
	}
	return f.Kernel.Prepare(ctx, spec)
}

func TestAttachRecordsWhatCheckAndTheResultUse(t *testing.T) {
	for _, existing := range []bool{false, true} {
		name := "a new veth pair"
		if existing {
			name = "the pair of an earlier attempt (port made after configuring)"
		}
		t.Run(name, func(t *testing.T) {
			r := enginetest.NewRig()
			r.Kernel.Existing = existing
			a := vlan100("eth1")
			a.Pools = []string{"pool100", "pool100v6"}
			attached, err := r.Engine.Attach(t.Context(), sandbox, []plan.Attachment{a})
			if err != nil {
				t.Fatalf("Attach() = %v", err)
			}
			host := veth.HostName(sandbox.ContainerID, "eth1")
			port := r.World.Ports[host]
			if port.VLAN != 100 || !slices.Equal(port.Owner.Addresses, []string{"10.1.0.5/24", "fd00::5/64"}) ||
				!slices.Equal(port.Owner.Gateways, []string{"10.1.0.1", "fd00::1"}) || port.NetworkStatus == "" {
				t.Errorf("port %+v", port)
			}
			// The kernel got the route through the pool's gateway, and so does the CNI result.
			if got := r.World.Configured[host]; !strings.Contains(got, "192.0.2.0/24") || !strings.Contains(got, "10.1.0.1") {
				t.Errorf("kernel configured %q", got)
			}
			res := attached[0].Result(sandbox.NetNS)
			if len(res.Routes) != 1 || res.Routes[0].GW.String() != "10.1.0.1" || len(res.IPs) != 2 || *res.IPs[0].Interface != 0 {
				t.Errorf("result %+v", res)
			}
			// CHECK derives the same addressing from the port's record.
			if err := r.Engine.Check(t.Context(), sandbox, []plan.Attachment{a}); err != nil {
				t.Errorf("Check() = %v", err)
			}
			a.VLAN = 300
			if err := r.Engine.Check(t.Context(), sandbox, []plan.Attachment{a}); err == nil || !strings.Contains(err.Error(), "VLAN 100, want 300") {
				t.Errorf("Check() with another VLAN = %v", err)
			}
		})
	}
}

func TestDetachRemovesPortsFirstThenVethsAndAddresses(t *testing.T) {
	r := enginetest.NewRig()
	if _, err := r.Engine.Attach(t.Context(), sandbox, []plan.Attachment{vlan100("eth1")}); err != nil {
		t.Fatal(err)
	}
	other := sandbox
	other.ContainerID = "c2"
	if _, err := r.Engine.Attach(t.Context(), other, []plan.Attachment{vlan100("eth1")}); err != nil {
		t.Fatal(err)
	}
	if err := r.Engine.Detach(t.Context(), sandbox); err != nil {
		t.Fatal(err)
	}
	host := veth.HostName(sandbox.ContainerID, "eth1")
	if len(r.World.Log) != 3 || r.World.Log[0] != "delete port "+host {
		t.Errorf("detach %q, want the port first", r.World.Log)
	}
	otherHost := veth.HostName("c2", "eth1")
	if left, want := r.World.Leftovers(), "allocation c2/eth1, link "+otherHost+", port "+otherHost; left != want {
		t.Errorf("left %q, want only the other sandbox's: %q", left, want)
	}
	// Again: nothing left is no error.
	if err := r.Engine.Detach(t.Context(), sandbox); err != nil {
		t.Errorf("second Detach() = %v", err)
	}
}

// engineWith is the rig's engine with another allocator.
func engineWith(r *enginetest.Rig, addrs engine.Addresses) *engine.Engine {
	return engine.New(r.Ports, r.Intents, addrs, engine.Options{Bridge: "br-sec", Kernel: r.Kernel})
}
