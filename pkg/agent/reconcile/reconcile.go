// Package reconcile removes what crashes, missed CNI DELs and force-deleted Pods leave behind on
// a Node: the attachments of ADDs that never finished (their intents in OVSDB: the agent was
// killed between recording the intent and committing the port), IPAM-only attachments whose
// sandbox is gone (their committed intents), OVS ports (with their veths and addresses) whose
// sandbox or Pod is gone, and the CNI shim's records of sandboxes whose network namespace is gone. Everything live
// is left untouched, except that a live Pod whose network-status lacks the entries its ports
// record gets them written again (the agent writes it after answering ADD, and may have died
// before). State comes only from OVSDB and the API server, so this is also what makes an agent
// restart safe.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/podstatus"
	"github.com/podvlan/podvlan/pkg/ovs"
)

// Ports lists the secondary bridge's Pod ports.
type Ports interface {
	ListPodPorts(ctx context.Context, bridge string) ([]ovs.PodPort, error)
}

// Detacher removes a sandbox's attachments, and what the attachment of an intent may have made
// (an *engine.Engine).
type Detacher interface {
	Detach(ctx context.Context, sb plan.Sandbox) error
	Abandon(ctx context.Context, in ovs.Intent) error
}

// Intents lists the attachment intents recorded in OVSDB.
type Intents interface {
	ListIntents(ctx context.Context) ([]ovs.Intent, error)
}

// NetNSExists reports whether path is still a network namespace.
type NetNSExists func(path string) bool

// KernelNetNSExists reports whether path is a mounted network namespace (nsfs). A sandbox's
// namespace stays mounted under that path until the runtime removes the sandbox.
func KernelNetNSExists(path string) bool {
	var st unix.Statfs_t
	return path != "" && unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// Pods answers whether a Pod exists (asking the API server, the authority for removals).
type Pods interface {
	Exists(ctx context.Context, namespace, name, uid string) (bool, error)
}

// Statuses writes network-status annotations.
type Statuses interface {
	QueueNetworkStatus(pod podstatus.PodRef, ours []nadv1.NetworkStatus)
}

// PodCache returns a Pod of this Node from the informer cache.
type PodCache func(namespace, name string) (*corev1.Pod, error)

// LinkExists reports whether a network device exists in the agent's namespace.
type LinkExists func(name string) (bool, error)

// KernelLinkExists looks the device up with netlink.
func KernelLinkExists(name string) (bool, error) {
	_, err := netlink.LinkByName(name)
	if err == nil {
		return true, nil
	}
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return false, nil
	}
	return false, err
}

// SandboxRecords are the CNI shim's records of the Node's sandboxes (a *sandboxes.Store).
type SandboxRecords interface {
	// Prune forgets the records whose network namespace is gone and says how many.
	Prune() (int, error)
}

// Reconciler compares the ports with live sandboxes and Pods.
type Reconciler struct {
	bridge  string
	ports   Ports
	intents Intents
	detach  Detacher
	pods    Pods
	link    LinkExists
	netns   NetNSExists

	// statuses and podCache, when set, restore lost network-status entries.
	statuses Statuses
	podCache PodCache
	// records, when set, are pruned by every pass.
	records SandboxRecords
}

// New returns a Reconciler.
func New(bridge string, ports Ports, intents Intents, detach Detacher, pods Pods, link LinkExists, netns NetNSExists) *Reconciler {
	return &Reconciler{bridge: bridge, ports: ports, intents: intents, detach: detach, pods: pods, link: link, netns: netns}
}

// RestoreStatuses has every pass write the network-status entries that live Pods lack.
func (r *Reconciler) RestoreStatuses(statuses Statuses, pods PodCache) {
	r.statuses, r.podCache = statuses, pods
}

// ForgetSandboxRecords has every pass forget the shim's records of sandboxes whose network
// namespace is gone: the shim removes a record at DEL, but one whose DEL never came (a runtime
// that crashed, a namespace removed by hand) would stay until its Pod is looked up.
func (r *Reconciler) ForgetSandboxRecords(records SandboxRecords) { r.records = records }

// Stale is a sandbox whose attachments are to be removed, and why.
type Stale struct {
	Sandbox plan.Sandbox
	Reason  string
}

// Once runs one reconciliation and returns the sandboxes it cleaned up (intents first, then
// ports).
func (r *Reconciler) Once(ctx context.Context) ([]Stale, error) {
	var errs []error
	if r.records != nil {
		// Independent of OVSDB: first, so that an unreachable OVSDB does not stop it.
		n, err := r.records.Prune()
		if err != nil {
			errs = append(errs, fmt.Errorf("forget the records of vanished sandboxes: %w", err))
		} else if n > 0 {
			klog.InfoS("Forgot the records of sandboxes that are gone", "records", n)
		}
	}
	abandoned, err := r.abandonIntents(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	ports, err := r.ports.ListPodPorts(ctx, r.bridge)
	if err != nil {
		return abandoned, errors.Join(append(errs, fmt.Errorf("reconcile: %w", err))...)
	}
	stale, err := r.findStale(ctx, ports)
	if err != nil {
		errs = append(errs, err)
	}
	cleaned := abandoned
	for _, s := range stale {
		if err := r.detach.Detach(ctx, s.Sandbox); err != nil {
			errs = append(errs, fmt.Errorf("clean up container %s of Pod %s/%s: %w", s.Sandbox.ContainerID,
				s.Sandbox.PodNamespace, s.Sandbox.PodName, err))
			continue
		}
		klog.InfoS("Removed attachments of a vanished sandbox", "pod", klog.KRef(s.Sandbox.PodNamespace, s.Sandbox.PodName),
			"container", s.Sandbox.ContainerID, "reason", s.Reason)
		cleaned = append(cleaned, s)
	}
	r.restoreStatuses(ports, stale)
	return cleaned, errors.Join(errs...)
}

// abandonIntents removes what the attachments of stale intents may have made (see judgeIntent).
func (r *Reconciler) abandonIntents(ctx context.Context) ([]Stale, error) {
	intents, err := r.intents.ListIntents(ctx)
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("reconcile intents: %w", err)) // the readable ones are judged
	}
	var out []Stale
	for _, in := range intents {
		podAlive := func() (bool, error) { return r.pods.Exists(ctx, in.PodNamespace, in.PodName, in.PodUID) }
		reason, err := judgeIntent(in, r.netns(in.NetNS), podAlive)
		if err != nil {
			errs = append(errs, fmt.Errorf("look up Pod %s/%s: %w", in.PodNamespace, in.PodName, err))
			continue
		}
		if reason == "" {
			continue
		}
		if err := r.detach.Abandon(ctx, in); err != nil {
			errs = append(errs, err)
			continue
		}
		sb := plan.Sandbox{PodNamespace: in.PodNamespace, PodName: in.PodName, PodUID: in.PodUID, ContainerID: in.ContainerID, NetNS: in.NetNS}
		klog.InfoS("Removed what an unfinished or vanished attachment held", "pod", klog.KRef(in.PodNamespace, in.PodName),
			"container", in.ContainerID, "interface", in.IfName, "network", in.Network, "way", in.Way, "reason", reason)
		out = append(out, Stale{Sandbox: sb, Reason: reason})
	}
	return out, errors.Join(errs...)
}

// judgeIntent decides whether the attachment of an intent is to be removed, and says why (""
// keeps it):
//
//   - an intent not committed belongs to an ADD that did not finish: the agent died before it
//     could commit or roll back (an ADD still in progress in this agent deletes its own intent,
//     which engine.Abandon checks under the sandbox's lock);
//   - a committed (IPAM-only) intent records a live attachment until its sandbox's network
//     namespace is gone or its Pod no longer exists.
func judgeIntent(in ovs.Intent, netnsAlive bool, podAlive func() (bool, error)) (string, error) {
	if !in.Committed {
		return "the ADD that recorded the intent did not finish", nil
	}
	if in.NetNS != "" && !netnsAlive {
		return "the sandbox's network namespace is gone", nil
	}
	if in.PodName == "" {
		return "", nil
	}
	alive, err := podAlive()
	if err != nil {
		return "", err
	}
	if !alive {
		return "the Pod no longer exists", nil
	}
	return "", nil
}

// restoreStatuses queues the network-status entries recorded on the ports of live sandboxes for
// the Pods whose annotation lacks one of them.
func (r *Reconciler) restoreStatuses(ports []ovs.PodPort, stale []Stale) {
	if r.statuses == nil || r.podCache == nil {
		return
	}
	gone := map[string]bool{}
	for _, s := range stale {
		gone[s.Sandbox.ContainerID] = true
	}
	type podKey struct{ namespace, name, uid string }
	entries := map[podKey][]nadv1.NetworkStatus{}
	containers := map[podKey]map[string]bool{}
	for _, p := range ports {
		if p.NetworkStatus == "" || gone[p.Owner.ContainerID] {
			continue
		}
		var entry nadv1.NetworkStatus
		if err := json.Unmarshal([]byte(p.NetworkStatus), &entry); err != nil {
			klog.ErrorS(err, "Unreadable network-status entry on a port", "port", p.Name)
			continue
		}
		k := podKey{p.Owner.PodNamespace, p.Owner.PodName, p.Owner.PodUID}
		entries[k] = append(entries[k], entry)
		if containers[k] == nil {
			containers[k] = map[string]bool{}
		}
		containers[k][p.Owner.ContainerID] = true
	}
	for k, ours := range entries {
		if len(containers[k]) > 1 {
			continue // two sandboxes of one Pod: the newer one's ADD writes it
		}
		pod, err := r.podCache(k.namespace, k.name)
		if err != nil || (k.uid != "" && string(pod.UID) != k.uid) {
			continue
		}
		if podstatus.HasEntries(pod.Annotations[nadv1.NetworkStatusAnnot], ours) {
			continue
		}
		slices.SortFunc(ours, func(a, b nadv1.NetworkStatus) int { return strings.Compare(a.Interface, b.Interface) })
		klog.InfoS("Writing the network-status entries the Pod lacks", "pod", klog.KObj(pod), "entries", len(ours))
		r.statuses.QueueNetworkStatus(podstatus.PodRef{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}, ours)
	}
}

// findStale decides, per container, whether its sandbox is gone: its Pod no longer exists (or is
// another Pod with the same name), or its veth host ends vanished (the kernel removes a veth
// with the sandbox's network namespace). A port whose veth exists belongs to a live sandbox or to
// an ADD in progress (the veth is made before the port), so it is kept.
func (r *Reconciler) findStale(ctx context.Context, ports []ovs.PodPort) ([]Stale, error) {
	type container struct {
		owner   ovs.PortOwner
		ports   []ovs.PodPort
		anyLink bool
	}
	byID := map[string]*container{}
	var errs []error
	for _, p := range ports {
		c := byID[p.Owner.ContainerID]
		if c == nil {
			c = &container{owner: p.Owner}
			byID[p.Owner.ContainerID] = c
		}
		c.ports = append(c.ports, p)
		exists, err := r.link(p.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("look up device %s: %w", p.Name, err))
			c.anyLink = true // unsure: keep
			continue
		}
		c.anyLink = c.anyLink || exists
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var stale []Stale
	for _, id := range ids {
		c := byID[id]
		sb := plan.Sandbox{PodNamespace: c.owner.PodNamespace, PodName: c.owner.PodName, PodUID: c.owner.PodUID, ContainerID: id}
		if !c.anyLink {
			stale = append(stale, Stale{Sandbox: sb, Reason: "the sandbox's network namespace is gone"})
			continue
		}
		alive, err := r.pods.Exists(ctx, c.owner.PodNamespace, c.owner.PodName, c.owner.PodUID)
		if err != nil {
			errs = append(errs, fmt.Errorf("look up Pod %s/%s: %w", c.owner.PodNamespace, c.owner.PodName, err))
			continue
		}
		if !alive {
			stale = append(stale, Stale{Sandbox: sb, Reason: "the Pod no longer exists"})
		}
	}
	return stale, errors.Join(errs...)
}

// Run reconciles at start, every interval, and whenever trigger fires (Pod deletions, OVSDB
// reconnections), until ctx ends. done, when not nil, is closed after the first pass.
func (r *Reconciler) Run(ctx context.Context, interval time.Duration, trigger <-chan struct{}, done chan<- struct{}) {
	first := true
	for {
		if _, err := r.Once(ctx); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Reconciliation incomplete; will retry")
		}
		if first && done != nil {
			close(done)
		}
		first = false
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		case <-trigger:
		}
	}
}
