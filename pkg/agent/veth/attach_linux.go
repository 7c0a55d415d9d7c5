package veth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/ifname"
)

// dadTimeout bounds the wait for IPv6 duplicate address detection before the addresses are
// announced: an address is not usable (nor may it be announced) while it is tentative.
const dadTimeout = 5 * time.Second

// ExistsError reports that the Pod already has an interface with the requested name that this
// package did not make, e.g. one created by another CNI plugin. Nothing was changed.
type ExistsError struct {
	IfName string
	// Kind is the netlink type of the existing interface ("veth", "dummy", "macvlan", ...).
	Kind string
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("interface %s already exists in the Pod (a %s this agent did not create)", e.IfName, e.Kind)
}

// Delete removes the interface ifName from the Pod namespace netnsPath together with its host end
// hostIfName. It succeeds when they are already gone, and when netnsPath is empty or no longer a
// network namespace (the host end is then deleted by name). An interface named ifName whose peer
// is not hostIfName is someone else's and is left alone.
func Delete(ctx context.Context, netnsPath, ifName, hostIfName string) error {
	if err := ifname.Validate(hostIfName); err != nil {
		return fmt.Errorf("delete interface %s: hostIfName %q: %w", ifName, hostIfName, err)
	}
	logger := klog.FromContext(ctx).WithValues("interface", ifName, "hostInterface", hostIfName, "netns", netnsPath)

	var podNS ns.NetNS
	if netnsPath != "" && ifName != "" {
		opened, err := ns.GetNS(netnsPath)
		var notExist ns.NSPathNotExistErr
		var notNS ns.NSPathNotNSErr
		switch {
		case err == nil:
			podNS = opened
			defer podNS.Close()
		case errors.As(err, &notExist) || errors.As(err, &notNS):
			logger.V(2).Info("Pod netns is gone; deleting the host end by name")
		default:
			return fmt.Errorf("delete interface %s: open Pod netns: %w", ifName, err)
		}
	}
	if err := removePair(logger, podNS, ifName, hostIfName); err != nil {
		return fmt.Errorf("delete interface %s (host end %s): %w", ifName, hostIfName, err)
	}
	return nil
}

// Check verifies that the interface the spec describes exists as wanted: a veth paired with
// HostIfName, with the MTU, MAC, addresses, routes and offload setting of the spec, both ends up.
// The error names every difference found.
func Check(ctx context.Context, spec Spec) error {
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("check interface %s: %w", spec.IfName, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("check interface %s: %w", spec.IfName, err)
	}
	spec = spec.normalized()
	podNS, err := ns.GetNS(spec.NetNSPath)
	if err != nil {
		return fmt.Errorf("check interface %s: open Pod netns: %w", spec.IfName, err)
	}
	defer podNS.Close()

	pod, host, err := readPair(podNS, spec)
	if err != nil {
		return fmt.Errorf("check interface %s: %w", spec.IfName, err)
	}
	if diffs := differences(spec, pod, host); len(diffs) > 0 {
		return fmt.Errorf("check interface %s: %s", spec.IfName, strings.Join(diffs, "; "))
	}
	return nil
}

// readPair reads the container end in the Pod and the host end in the calling thread's namespace.
func readPair(podNS ns.NetNS, spec Spec) (podState, hostState, error) {
	var pod podState
	err := podNS.Do(func(ns.NetNS) error {
		var err error
		pod, err = readPodState(spec.IfName)
		return err
	})
	if err != nil {
		return podState{}, hostState{}, fmt.Errorf("read interface in the Pod: %w", err)
	}
	host, err := readHostState(spec.HostIfName)
	if err != nil {
		return podState{}, hostState{}, fmt.Errorf("read host interface: %w", err)
	}
	return pod, host, nil
}

// removePair deletes the container end ifName (when podNS is not nil and the interface is the
// peer of hostIfName) and then the host end hostIfName. Deleting either end of a veth deletes
// both; the second step covers a container end that could not be reached.
func removePair(logger klog.Logger, podNS ns.NetNS, ifName, hostIfName string) error {
	_, host, err := readLink(hostIfName)
	if err != nil {
		return err
	}
	if podNS != nil && ifName != "" {
		err := podNS.Do(func(ns.NetNS) error {
			link, pod, err := readLink(ifName)
			if err != nil || !pod.exists {
				return err
			}
			if !ownPair(pod, host) {
				logger.Info("Leaving alone an interface of the same name that is not ours", "kind", pod.kind)
				return nil
			}
			return deleteLink(link)
		})
		if err != nil {
			return fmt.Errorf("delete %s in the Pod: %w", ifName, err)
		}
	}
	if !host.exists {
		return nil
	}
	return deleteHostLink(hostIfName)
}

// deleteHostLink deletes the host end by name if it still exists, refusing to delete anything that
// is not a veth.
func deleteHostLink(hostIfName string) error {
	link, host, err := readLink(hostIfName)
	if err != nil || !host.exists {
		return err
	}
	if host.kind != "veth" {
		return fmt.Errorf("host interface %s is a %s, not a veth; refusing to delete it", hostIfName, host.kind)
	}
	if err := deleteLink(link); err != nil {
		return fmt.Errorf("delete host interface %s: %w", hostIfName, err)
	}
	return nil
}

// deleteLink deletes a link, treating one that vanished in the meantime (its peer was deleted or
// its namespace destroyed) as success.
func deleteLink(link netlink.Link) error {
	err := netlink.LinkDel(link)
	if err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", link.Attrs().Name, err)
	}
	return nil
}
