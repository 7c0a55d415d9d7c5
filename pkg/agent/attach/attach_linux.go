package attach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
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

// Create makes the interface the spec describes and returns its state. The host end stays in the
// calling thread's network namespace, up, with IPv6 disabled; the container end is configured and
// its addresses announced.
//
// Create is idempotent: when the Pod already has the interface, paired with HostIfName and as the
// spec wants it, it returns the current state; when it is ours but incomplete (an earlier attempt
// died half way) it is recreated. An interface of that name made by someone else yields an
// *ExistsError. On any failure Create removes whatever it made, in both namespaces.
func Create(ctx context.Context, spec Spec) (*Interface, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("create interface %s: %w", spec.IfName, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create interface %s: %w", spec.IfName, err)
	}
	spec = spec.normalized()
	logger := klog.FromContext(ctx).WithValues("interface", spec.IfName, "hostInterface", spec.HostIfName, "netns", spec.NetNSPath)

	podNS, err := ns.GetNS(spec.NetNSPath)
	if err != nil {
		return nil, fmt.Errorf("create interface %s: open Pod netns: %w", spec.IfName, err)
	}
	defer podNS.Close()

	pod, host, err := readPair(podNS, spec)
	if err != nil {
		return nil, fmt.Errorf("create interface %s: %w", spec.IfName, err)
	}
	switch {
	case ownPair(pod.link, host.link):
		diffs := differences(spec, pod, host)
		if len(diffs) == 0 {
			logger.V(2).Info("Interface already attached")
			return interfaceOf(spec, pod, host), nil
		}
		logger.Info("Recreating an interface an earlier attempt left incomplete", "differences", diffs)
		if err := removePair(logger, podNS, spec.IfName, spec.HostIfName); err != nil {
			return nil, fmt.Errorf("create interface %s: remove the incomplete one: %w", spec.IfName, err)
		}
	case pod.link.exists:
		return nil, fmt.Errorf("create interface %s: %w", spec.IfName, &ExistsError{IfName: spec.IfName, Kind: pod.link.kind})
	case host.link.exists:
		// The name is a hash of the container ID and interface name, so this is the host end of an
		// earlier attempt for this very attachment whose container end went away.
		logger.Info("Removing a stale host interface left by an earlier attempt")
		if err := deleteHostLink(spec.HostIfName); err != nil {
			return nil, fmt.Errorf("create interface %s: %w", spec.IfName, err)
		}
	}

	iface, err := build(podNS, spec)
	if err != nil {
		if rollbackErr := removePair(logger, podNS, spec.IfName, spec.HostIfName); rollbackErr != nil {
			logger.Error(rollbackErr, "Rolling back a failed interface creation failed")
			err = errors.Join(err, fmt.Errorf("roll back: %w", rollbackErr))
		}
		return nil, fmt.Errorf("create interface %s (host end %s): %w", spec.IfName, spec.HostIfName, err)
	}
	logger.Info("Created interface", "mac", iface.ContainerMAC.String(), "mtu", iface.MTU)
	return iface, nil
}

// build makes and configures the pair on a clean slate, leaving the cleanup of a failure to its
// caller.
func build(podNS ns.NetNS, spec Spec) (*Interface, error) {
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return nil, fmt.Errorf("open host netns: %w", err)
	}
	defer hostNS.Close()

	mac := ""
	if len(spec.MAC) > 0 {
		mac = spec.MAC.String()
	}
	err = podNS.Do(func(ns.NetNS) error {
		_, _, err := ip.SetupVethWithName(spec.IfName, spec.HostIfName, spec.MTU, mac, hostNS)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create veth pair: %w", err)
	}

	if err := prepareHostEnd(spec); err != nil {
		return nil, err
	}

	var pod podState
	err = podNS.Do(func(ns.NetNS) error {
		if err := configureContainerEnd(spec); err != nil {
			return err
		}
		pod, err = readPodState(spec.IfName)
		return err
	})
	if err != nil {
		return nil, err
	}
	host, err := readHostState(spec.HostIfName)
	if err != nil {
		return nil, err
	}
	// Read back what the kernel made rather than trusting each step: this also catches a
	// concurrent change of either end while it was being configured.
	if diffs := differences(spec, pod, host); len(diffs) > 0 {
		return nil, fmt.Errorf("interface differs from the spec after configuration: %s", strings.Join(diffs, "; "))
	}
	return interfaceOf(spec, pod, host), nil
}

// prepareHostEnd disables IPv6 on the host end, so that the Node sends no router solicitations,
// MLD reports or DAD probes into the Pod's VLAN, and makes sure its MTU is the spec's.
func prepareHostEnd(spec Spec) error {
	_, err := sysctl.Sysctl(fmt.Sprintf(disableIPv6Sysctl, spec.HostIfName), "1")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disable IPv6 on host interface %s: %w", spec.HostIfName, err)
	}
	link, state, err := readLink(spec.HostIfName)
	if err != nil {
		return err
	}
	if !state.exists {
		return fmt.Errorf("host interface %s vanished after its creation", spec.HostIfName)
	}
	if spec.MTU != 0 && state.mtu != spec.MTU {
		if err := netlink.LinkSetMTU(link, spec.MTU); err != nil {
			return fmt.Errorf("set MTU of host interface %s to %d: %w", spec.HostIfName, spec.MTU, err)
		}
	}
	return nil
}

// configureContainerEnd runs in the Pod's namespace: offloads, addresses, routes, link up, then
// the announcements once IPv6 addresses have left the tentative state.
func configureContainerEnd(spec Spec) error {
	if spec.DisableTXChecksum {
		if err := setTXChecksum(spec.IfName, false); err != nil {
			return err
		}
	}

	result := &current.Result{Interfaces: []*current.Interface{{Name: spec.IfName}}}
	hasIPv6 := false
	for _, ipc := range spec.IPs {
		result.IPs = append(result.IPs, &current.IPConfig{
			Interface: current.Int(0),
			Address:   ipc.Address,
			Gateway:   ipc.Gateway,
		})
		hasIPv6 = hasIPv6 || ipc.Address.IP.To4() == nil
	}
	result.Routes = spec.Routes
	if err := ipam.ConfigureIface(spec.IfName, result); err != nil {
		return fmt.Errorf("configure addresses and routes: %w", err)
	}

	if hasIPv6 {
		// ConfigureIface waits for DAD only when there is an IPv6 gateway.
		if err := ip.SettleAddresses(spec.IfName, dadTimeout); err != nil {
			return fmt.Errorf("wait for IPv6 duplicate address detection: %w", err)
		}
	}

	ips := make([]net.IP, 0, len(spec.IPs))
	for _, ipc := range spec.IPs {
		ips = append(ips, ipc.Address.IP)
	}
	if err := sendAnnouncements(spec.IfName, ips); err != nil {
		return fmt.Errorf("announce addresses: %w", err)
	}
	return nil
}

// Delete removes the interface ifName from the Pod namespace netnsPath together with its host end
// hostIfName. It succeeds when they are already gone, and when netnsPath is empty or no longer a
// network namespace (the host end is then deleted by name). An interface named ifName whose peer
// is not hostIfName is someone else's and is left alone.
func Delete(ctx context.Context, netnsPath, ifName, hostIfName string) error {
	if err := validateLinkName(hostIfName); err != nil {
		return fmt.Errorf("delete interface %s: hostIfName: %w", ifName, err)
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
