// Package enginetest has fakes of what the attach engine acts on (the kernel, OVS ports, the
// allocator) over one shared World, so that unit tests of the engine and of its callers can
// inject a failure at any step and see what was left behind and in which order it was undone.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/pkg/agent/engine"
	"github.com/podvlan/podvlan/pkg/agent/veth"
	"github.com/podvlan/podvlan/pkg/ipam"
	"github.com/podvlan/podvlan/pkg/ovs"
)

// World is the state the fakes share: what exists on the Node, and the log of what removed it.
type World struct {
	// mu guards every field.
	mu     sync.Mutex
	Links  map[string]bool // host end names
	Ports  map[string]ovs.PodPort
	Allocs map[string][]ipam.IPConfig // "containerID/ifName"
	Log    []string                   // deletions and releases, in order
	// Configured records the addresses and routes each link was configured with.
	Configured map[string]string
	// Intents are the recorded intents by key.
	Intents map[string]ovs.Intent
}

// NewWorld returns an empty World.
func NewWorld() *World {
	return &World{Links: map[string]bool{}, Ports: map[string]ovs.PodPort{}, Allocs: map[string][]ipam.IPConfig{},
		Configured: map[string]string{}, Intents: map[string]ovs.Intent{}}
}

func (w *World) record(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.Log = append(w.Log, fmt.Sprintf(format, args...))
}

// Leftovers describes what exists, sorted; empty when nothing does.
func (w *World) Leftovers() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for l := range w.Links {
		out = append(out, "link "+l)
	}
	for p := range w.Ports {
		out = append(out, "port "+p)
	}
	for a := range w.Allocs {
		out = append(out, "allocation "+a)
	}
	for k := range w.Intents {
		out = append(out, "intent "+strings.TrimPrefix(k, ovs.IntentKeyPrefix))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// Kernel makes links in the World; failures are injected per step.
type Kernel struct {
	W            *World
	PrepareErr   error
	ConfigureErr error
	DeleteErr    error
	// Existing makes Prepare find an own pair of an earlier attempt.
	Existing bool
}

type link struct {
	k    *Kernel
	spec veth.Spec
}

// Prepare implements engine.Kernel.
func (k *Kernel) Prepare(ctx context.Context, spec veth.Spec) (engine.Link, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if k.PrepareErr != nil {
		return nil, k.PrepareErr
	}
	k.W.mu.Lock()
	k.W.Links[spec.HostIfName] = true
	k.W.mu.Unlock()
	return &link{k: k, spec: spec}, nil
}

// Delete implements engine.Kernel.
func (k *Kernel) Delete(_ context.Context, _, _, host string) error {
	if k.DeleteErr != nil {
		return k.DeleteErr
	}
	k.W.mu.Lock()
	delete(k.W.Links, host)
	k.W.mu.Unlock()
	k.W.record("delete veth %s", host)
	return nil
}

// Check implements engine.Kernel: the link must exist with what Configure gave it.
func (k *Kernel) Check(_ context.Context, spec veth.Spec) error {
	k.W.mu.Lock()
	defer k.W.mu.Unlock()
	if !k.W.Links[spec.HostIfName] {
		return fmt.Errorf("no link %s", spec.HostIfName)
	}
	if got, want := k.W.Configured[spec.HostIfName], describeConfig(spec.IPs, spec.Routes); got != want {
		return fmt.Errorf("link %s has %q, want %q", spec.HostIfName, got, want)
	}
	return nil
}

func (l *link) Existing() bool { return l.k.Existing }

func (l *link) Configure(ctx context.Context, ips []net.IPNet, routes []*types.Route) (*veth.Interface, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l.k.ConfigureErr != nil {
		return nil, l.k.ConfigureErr
	}
	l.k.W.mu.Lock()
	l.k.W.Configured[l.spec.HostIfName] = describeConfig(ips, routes)
	l.k.W.mu.Unlock()
	return &veth.Interface{Name: l.spec.IfName, ContainerMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, nil
}

func (l *link) Announce() error { return nil }
func (l *link) Close()          {}

func describeConfig(ips []net.IPNet, routes []*types.Route) string {
	var parts []string
	for _, ip := range ips {
		parts = append(parts, ip.String())
	}
	for _, r := range routes {
		parts = append(parts, r.Dst.String()+" via "+r.GW.String())
	}
	return strings.Join(parts, " ")
}

// Ports keeps ports in the World; a port needs its link.
type Ports struct {
	W         *World
	CreateErr error
	RecordErr error
}

// CreateAccessPort implements engine.Ports.
func (p *Ports) CreateAccessPort(ctx context.Context, spec ovs.PortSpec) (ovs.PodPort, error) {
	if err := ctx.Err(); err != nil {
		return ovs.PodPort{}, err
	}
	if p.CreateErr != nil {
		return ovs.PodPort{}, p.CreateErr
	}
	p.W.mu.Lock()
	defer p.W.mu.Unlock()
	if !p.W.Links[spec.Name] {
		return ovs.PodPort{}, fmt.Errorf("port %s: no such device", spec.Name)
	}
	port := ovs.PodPort{Name: spec.Name, Bridge: spec.Bridge, OFPort: 7, VLAN: spec.VLAN, Owner: spec.Owner}
	p.W.Ports[spec.Name] = port
	return port, nil
}

// SetPortRecord implements engine.Ports.
func (p *Ports) SetPortRecord(_ context.Context, name string, rec ovs.PortRecord) error {
	if p.RecordErr != nil {
		return p.RecordErr
	}
	p.W.mu.Lock()
	defer p.W.mu.Unlock()
	port, ok := p.W.Ports[name]
	if !ok {
		return fmt.Errorf("no port %s", name)
	}
	port.Owner.Addresses, port.Owner.Gateways, port.NetworkStatus = rec.Addresses, rec.Gateways, rec.NetworkStatus
	p.W.Ports[name] = port
	return nil
}

// DeletePort implements engine.Ports.
func (p *Ports) DeletePort(_ context.Context, name string) error {
	p.W.mu.Lock()
	delete(p.W.Ports, name)
	p.W.mu.Unlock()
	p.W.record("delete port %s", name)
	return nil
}

// ListPodPorts implements engine.Ports.
func (p *Ports) ListPodPorts(context.Context, string) ([]ovs.PodPort, error) {
	p.W.mu.Lock()
	defer p.W.mu.Unlock()
	var out []ovs.PodPort
	for _, port := range p.W.Ports {
		out = append(out, port)
	}
	slices.SortFunc(out, func(a, b ovs.PodPort) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Addresses hands out one address per pool: 10.<pool index>.0.5/24 via .1, or fd00::5/64 via
// fd00::1 for a pool whose name ends in "v6".
type Addresses struct {
	W *World
	// Err fails Allocate; ReleaseErr fails Release and ReleaseContainer.
	Err        error
	ReleaseErr error
	VLAN       int // the VLAN the pools report; -1: the requested one
}

// Allocate implements engine.Addresses.
func (a *Addresses) Allocate(ctx context.Context, req ipam.Request) (*ipam.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if a.Err != nil {
		return nil, a.Err
	}
	res := &ipam.Result{VLAN: req.VLAN}
	if a.VLAN >= 0 {
		res.VLAN = a.VLAN
	}
	for i, pool := range req.Pools {
		ip := ipam.IPConfig{Pool: pool, Address: netip.MustParsePrefix(fmt.Sprintf("10.%d.0.5/24", i+1)),
			Gateway: netip.MustParseAddr(fmt.Sprintf("10.%d.0.1", i+1))}
		if strings.HasSuffix(pool, "v6") {
			ip.Address, ip.Gateway = netip.MustParsePrefix("fd00::5/64"), netip.MustParseAddr("fd00::1")
		}
		res.IPs = append(res.IPs, ip)
	}
	a.W.mu.Lock()
	a.W.Allocs[req.Owner.ContainerID+"/"+req.Owner.IFName] = res.IPs
	a.W.mu.Unlock()
	return res, nil
}

// Release implements engine.Addresses.
func (a *Addresses) Release(_ context.Context, owner ipam.Owner) error {
	if a.ReleaseErr != nil {
		return a.ReleaseErr
	}
	key := owner.ContainerID + "/" + owner.IFName
	a.W.mu.Lock()
	_, held := a.W.Allocs[key]
	delete(a.W.Allocs, key)
	a.W.mu.Unlock()
	if held {
		a.W.record("release %s", owner.IFName)
	}
	return nil
}

// ReleaseContainer implements engine.Addresses.
func (a *Addresses) ReleaseContainer(_ context.Context, containerID string) error {
	if a.ReleaseErr != nil {
		return a.ReleaseErr
	}
	a.W.mu.Lock()
	var released []string
	for key := range a.W.Allocs {
		if strings.HasPrefix(key, containerID+"/") {
			delete(a.W.Allocs, key)
			released = append(released, key)
		}
	}
	a.W.mu.Unlock()
	slices.Sort(released)
	for _, key := range released {
		a.W.record("release %s", strings.TrimPrefix(key, containerID+"/"))
	}
	return nil
}

// ErrInjected is the error the fakes return where a test injects a failure.
var ErrInjected = errors.New("injected failure")

// Allocations lists what the World holds for the filter's container ID (every container when
// empty), sorted by interface; pools are those the Allocate call named.
func (a *Addresses) Allocations(filter ipam.Filter) ([]ipam.Allocation, error) {
	a.W.mu.Lock()
	defer a.W.mu.Unlock()
	var out []ipam.Allocation
	for key, ips := range a.W.Allocs {
		containerID, ifName, _ := strings.Cut(key, "/")
		if filter.ContainerID != "" && filter.ContainerID != containerID {
			continue
		}
		for _, ip := range ips {
			out = append(out, ipam.Allocation{Pool: ip.Pool, Address: ip.Address.Addr(),
				Owner: ipam.Owner{ContainerID: containerID, IFName: ifName}})
		}
	}
	slices.SortFunc(out, func(x, y ipam.Allocation) int { return strings.Compare(x.Owner.IFName+x.Pool, y.Owner.IFName+y.Pool) })
	return out, nil
}

// Intents keeps intents in the World.
type Intents struct {
	W *World
	// RecordErr fails RecordIntents.
	RecordErr error
}

// RecordIntents implements engine.Intents.
func (f *Intents) RecordIntents(_ context.Context, intents ...ovs.Intent) error {
	if f.RecordErr != nil {
		return f.RecordErr
	}
	f.W.mu.Lock()
	defer f.W.mu.Unlock()
	for _, in := range intents {
		f.W.Intents[in.Key()] = in
	}
	return nil
}

// DeleteIntents implements engine.Intents.
func (f *Intents) DeleteIntents(_ context.Context, keys ...string) error {
	f.W.mu.Lock()
	defer f.W.mu.Unlock()
	for _, k := range keys {
		delete(f.W.Intents, k)
	}
	return nil
}

// ListIntents implements engine.Intents.
func (f *Intents) ListIntents(context.Context) ([]ovs.Intent, error) {
	f.W.mu.Lock()
	defer f.W.mu.Unlock()
	var out []ovs.Intent
	for _, in := range f.W.Intents {
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b ovs.Intent) int { return strings.Compare(a.Key(), b.Key()) })
	return out, nil
}

// Rig is an engine over fakes that share one World.
type Rig struct {
	World     *World
	Kernel    *Kernel
	Ports     *Ports
	Intents   *Intents
	Addresses *Addresses
	Engine    *engine.Engine
}

// NewRig returns an engine on bridge "br-sec" over fresh fakes; set failures on the fakes before
// calling the engine.
func NewRig() *Rig {
	w := NewWorld()
	r := &Rig{World: w, Kernel: &Kernel{W: w}, Ports: &Ports{W: w}, Intents: &Intents{W: w}, Addresses: &Addresses{W: w, VLAN: -1}}
	r.Engine = engine.New(r.Ports, r.Intents, r.Addresses, engine.Options{Bridge: "br-sec", Kernel: r.Kernel})
	return r
}
