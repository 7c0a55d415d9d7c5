package engine

import (
	"context"
	"net"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/pkg/agent/veth"
)

// Kernel is what the engine needs of the kernel: the Pod end's veth pair (package veth).
type Kernel interface {
	// Prepare makes the veth pair of spec without addresses (see veth.Prepare).
	Prepare(ctx context.Context, spec veth.Spec) (Link, error)
	// Delete removes the pair; gone is success (see veth.Delete).
	Delete(ctx context.Context, netnsPath, ifName, hostIfName string) error
	// Check verifies the pair against spec (see veth.Check).
	Check(ctx context.Context, spec veth.Spec) error
}

// Link is one veth pair being attached, as Kernel.Prepare returns it (a *veth.Pair).
type Link interface {
	// Existing reports an own pair of an earlier attempt, which Configure keeps or rebuilds.
	Existing() bool
	// Configure gives the Pod end its addresses and routes and verifies the whole pair.
	Configure(ctx context.Context, ips []net.IPNet, routes []*types.Route) (*veth.Interface, error)
	// Announce tells the segment the Pod end's addresses; call it once the port forwards.
	Announce() error
	// Close releases what the Link holds; it never removes the pair.
	Close()
}

// Veth is the Kernel of a real Node: package veth, in the calling goroutine's network namespace.
type Veth struct{}

// Prepare implements Kernel.
func (Veth) Prepare(ctx context.Context, spec veth.Spec) (Link, error) {
	pair, err := veth.Prepare(ctx, spec)
	if err != nil {
		return nil, err
	}
	return pair, nil
}

// Delete implements Kernel.
func (Veth) Delete(ctx context.Context, netnsPath, ifName, hostIfName string) error {
	return veth.Delete(ctx, netnsPath, ifName, hostIfName)
}

// Check implements Kernel.
func (Veth) Check(ctx context.Context, spec veth.Spec) error { return veth.Check(ctx, spec) }
