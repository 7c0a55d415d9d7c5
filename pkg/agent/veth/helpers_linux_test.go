package veth

import (
	"context"
	"fmt"
	"net"

	"github.com/containernetworking/plugins/pkg/ns"
)

// create makes the interface the spec describes and returns its state. The host end stays in the
// calling thread's network namespace, up, with IPv6 disabled; the container end is configured and
// its addresses announced. It is Prepare, Configure and Announce in one call, as the tests use them.
//
// create is idempotent: when the Pod already has the interface, paired with HostIfName and as the
// spec wants it, it returns the current state; when it is ours but incomplete (an earlier attempt
// died half way) it is recreated. An interface of that name made by someone else yields an
// *ExistsError. On any failure create removes whatever it made, in both namespaces.
func create(ctx context.Context, spec Spec) (*Interface, error) {
	// The whole spec is checked before anything is made.
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("create interface %s: %w", spec.IfName, err)
	}
	ips, routes := spec.IPs, spec.Routes
	spec.IPs, spec.Routes = nil, nil
	pair, err := Prepare(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer pair.Close()
	iface, err := pair.Configure(ctx, ips, routes)
	if err != nil {
		return nil, err
	}
	if err := pair.Announce(); err != nil {
		pair.logger.V(2).Info("Could not announce the addresses", "err", err)
	}
	return iface, nil
}

// announce sends one gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6) per
// address from the interface ifName of the Pod namespace netnsPath.
//
// It opens the namespace itself, so tests can announce again from outside a Pair.
func announce(ctx context.Context, netnsPath, ifName string, ips []net.IP) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("announce addresses of %s: %w", ifName, err)
	}
	podNS, err := ns.GetNS(netnsPath)
	if err != nil {
		return fmt.Errorf("announce addresses of %s: open netns: %w", ifName, err)
	}
	defer podNS.Close()
	err = podNS.Do(func(ns.NetNS) error { return sendAnnouncements(ifName, ips) })
	if err != nil {
		return fmt.Errorf("announce addresses of %s: %w", ifName, err)
	}
	return nil
}
