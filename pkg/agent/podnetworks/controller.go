// Package podnetworks keeps the secondary networks of running Pods in line with their
// k8s.v1.cni.cncf.io/networks annotation, without a CNI call: the annotation added to a Pod after
// it started (the first attachment, on with SecondaryNetwork) and, behind the
// SecondaryNetworkHotplug gate, every later change (entries added are attached, entries removed
// are detached). It also keeps the Pod condition podvlan.io/SecondaryNetworksReady.
//
// It is a level-triggered controller: an informer on this Node's Pods feeds a rate-limited
// workqueue keyed by Pod, and one sync compares what the annotation asks for with what the Pod's
// current sandbox has (its OVS ports), then attaches what is missing and detaches what was
// removed. It acts only on a Pod whose sandbox the CNI shim recorded and whose CNI ADD has
// completed: until then the ADD owns the Pod's networks (see Sandboxes).
package podnetworks

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	k8stypes "k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/agent/engine"
	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/podstatus"
	"github.com/podvlan/podvlan/pkg/cni/selection"
)

// Options are the controller's collaborators and settings.
type Options struct {
	Pods      corelisters.PodLister
	Sandboxes Sandboxes
	// ADDs are the CNI ADDs the agent is serving; nil when none can be (tests).
	ADDs        InFlight
	Attachments Attachments
	Attacher    Attacher
	Resolver    Resolver
	Status      Status
	// Hotplug says whether SecondaryNetworkHotplug is on.
	Hotplug bool
	// Ready returns nil when the agent can attach (OVSDB connected, bridge ready).
	Ready func() error
	// BaseDelay and MaxDelay bound the retry backoff of one Pod (default 500 ms and 1 min).
	BaseDelay, MaxDelay time.Duration
	// Workers sync different Pods at the same time (default 2).
	Workers int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Controller keeps running Pods' secondary networks. Create it with New.
type Controller struct {
	o     Options
	queue workqueue.TypedRateLimitingInterface[string]

	mu sync.Mutex
	// written is the condition last written per Pod UID: the informer may not show it yet when
	// the next sync runs, and an Event is only recorded when the condition changes.
	written map[k8stypes.UID]corev1.PodCondition
	// unlisted are interfaces detached from a Pod whose network-status entries are still to be
	// removed (the write failed): the ports that named them are gone.
	unlisted map[k8stypes.UID][]string

	networksChanged chan struct{}
}

// New returns a Controller.
func New(o Options) *Controller {
	if o.BaseDelay <= 0 {
		o.BaseDelay = 500 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = time.Minute
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Controller{
		o: o,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](o.BaseDelay, o.MaxDelay),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "pod-networks"}),
		written:         map[k8stypes.UID]corev1.PodCondition{},
		unlisted:        map[k8stypes.UID][]string{},
		networksChanged: make(chan struct{}, 1),
	}
}

// PodHandler returns the Pod informer's event handler: every added or updated Pod is queued (the
// sync decides cheaply, from caches, whether there is anything to do), and a deleted Pod's memory
// is dropped.
func (c *Controller) PodHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueue(obj) },
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				c.forget(pod.UID)
			}
		},
	}
}

func (c *Controller) enqueue(obj any) {
	if pod, ok := obj.(*corev1.Pod); ok && relevant(pod) {
		c.queue.Add(pod.Namespace + "/" + pod.Name)
	}
}

// NetworksChanged says that a NetworkAttachmentDefinition or an IPPool appeared or changed its
// spec: the Pods waiting for one are synced again (coalesced: a burst of changes is one pass).
func (c *Controller) NetworksChanged() {
	select {
	case c.networksChanged <- struct{}{}:
	default:
	}
}

// resyncWaiting queues the Pods of the Node whose networks are not (known to be) ready. A Pod
// whose networks are ready does not care: its attachments are never touched for a change of
// their NetworkAttachmentDefinition.
func (c *Controller) resyncWaiting() {
	pods, err := c.o.Pods.List(labels.Everything())
	if err != nil {
		klog.ErrorS(err, "List Pods to resync secondary networks")
		return
	}
	for _, pod := range pods {
		if !relevant(pod) {
			continue
		}
		cond := c.lastWritten(pod.UID)
		if cond == nil {
			cond = FindCondition(pod, ConditionType)
		}
		if cond == nil || cond.Status != corev1.ConditionTrue {
			c.queue.Add(pod.Namespace + "/" + pod.Name)
		}
	}
}

// resyncAll queues every relevant Pod of the Node.
func (c *Controller) resyncAll() {
	pods, err := c.o.Pods.List(labels.Everything())
	if err != nil {
		klog.ErrorS(err, "List Pods to resync secondary networks")
		return
	}
	for _, pod := range pods {
		c.enqueue(pod)
	}
}

func (c *Controller) forget(uid k8stypes.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.written, uid)
	delete(c.unlisted, uid)
}

// Run syncs Pods until ctx ends, and every resync period queues every relevant Pod again (the
// backstop for triggers missed, such as a sandbox recorded without a Pod update).
func (c *Controller) Run(ctx context.Context, resync time.Duration) {
	var wg sync.WaitGroup
	for range c.o.Workers {
		wg.Go(func() {
			for c.next(ctx) {
			}
		})
	}
	wg.Go(func() {
		var tick <-chan time.Time
		if resync > 0 {
			t := time.NewTicker(resync)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick:
				c.resyncAll()
			case <-c.networksChanged:
				c.resyncWaiting()
			}
		}
	})
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
}

func (c *Controller) next(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	res, err := c.Sync(ctx, key)
	switch {
	case err != nil:
		klog.ErrorS(err, "Sync of a Pod's secondary networks failed; will retry", "pod", key)
		c.queue.AddRateLimited(key)
	case res.Retry:
		c.queue.AddRateLimited(key)
	case res.After > 0:
		c.queue.Forget(key)
		c.queue.AddAfter(key, res.After)
	default:
		c.queue.Forget(key)
	}
	return true
}

// relevant says whether a Pod may need this controller: it asks for networks, carries the
// condition (which must follow the annotation's removal) or waits for it in a readiness gate.
// Every other Pod costs nothing.
func relevant(pod *corev1.Pod) bool {
	if pod.Spec.HostNetwork || pod.DeletionTimestamp != nil ||
		pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	return strings.TrimSpace(pod.Annotations[selection.AnnotationKey]) != "" ||
		FindCondition(pod, ConditionType) != nil || hasReadinessGate(pod)
}

// Result says when a Pod is to be synced again.
type Result struct {
	// Retry asks for another sync after the Pod's backoff: something could not be done yet.
	Retry bool
	// After asks for another sync after this long, without backoff.
	After time.Duration
}

var retry = Result{Retry: true}

// Sync brings one Pod ("namespace/name") in line with its annotation. An error is a failure of
// the sync itself (writing the condition or network-status), retried like Result.Retry.
func (c *Controller) Sync(ctx context.Context, key string) (Result, error) {
	namespace, name, _ := strings.Cut(key, "/")
	pod, err := c.o.Pods.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, err
	}
	if !relevant(pod) {
		return Result{}, nil
	}
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod))
	ctx = klog.NewContext(ctx, logger)

	sb, wait := c.sandbox(pod)
	if sb == nil {
		return wait, nil
	}
	if err := c.ready(); err != nil {
		return retry, c.unavailable(ctx, pod, err)
	}
	all, err := c.o.Attachments.Of(ctx, sb.ContainerID)
	if err != nil {
		return retry, c.unavailable(ctx, pod, err)
	}
	esb := plan.Sandbox{PodNamespace: pod.Namespace, PodName: pod.Name, PodUID: string(pod.UID),
		ContainerID: sb.ContainerID, NetNS: sb.NetNS}
	// A port without its network-status record is an attachment that never finished (the agent
	// stopped in the middle of it): take it away; if the annotation still asks for it, it is
	// attached again below.
	var current []Current
	for _, cur := range all {
		if cur.Status != "" {
			current = append(current, cur)
			continue
		}
		if err := c.o.Attacher.DetachInterfaces(ctx, esb, cur.IfName); err != nil {
			logger.Error(err, "Could not remove an unfinished attachment", "interface", cur.IfName, "port", cur.Port)
			return retry, nil
		}
		logger.Info("Removed an unfinished attachment", "interface", cur.IfName, "port", cur.Port)
	}

	annotation := strings.TrimSpace(pod.Annotations[selection.AnnotationKey])
	elements, err := selection.Parse(pod.Namespace, annotation)
	if err != nil {
		// Nothing changes on a malformed annotation: a typo must not cut the Pod's interfaces.
		o := Outcome{Attached: identities(current), Failed: err, FailedReason: ReasonInvalidAnnotation}
		return Result{}, c.report(ctx, pod, o, current, nil)
	}
	wanted := make([]Wanted, 0, len(elements))
	for _, el := range elements {
		w := Wanted{Identity: Identity{Network: el.NetworkKey(), IfName: el.Interface}, Element: el}
		w.Network, w.Foreign, w.Err = c.o.Resolver.Resolve(ctx, el)
		wanted = append(wanted, w)
	}
	d := Decide(wanted, current, c.o.Hotplug)
	if d.Refused != nil {
		return Result{}, c.report(ctx, pod, Outcome{Attached: identities(current), Refused: d.Refused}, current, nil)
	}

	var o Outcome
	fail := func(err error, fallback string) {
		if o.Failed == nil {
			o.Failed, o.FailedReason = err, ReasonOf(err, fallback)
		}
	}
	after := append([]Current(nil), d.Keep...)
	var detached []string
	for _, cur := range d.Detach {
		if err := c.o.Attacher.DetachInterfaces(ctx, esb, cur.IfName); err != nil {
			fail(fmt.Errorf("detach %s: %w", cur.Identity, err), ReasonDetachFailed)
			after = append(after, cur)
			continue
		}
		detached = append(detached, cur.IfName)
		logger.Info("Detached secondary network", "network", cur.Network, "interface", cur.IfName)
	}
	for _, w := range d.Pending {
		if w.Err != nil {
			fail(w.Err, ReasonAttachFailed)
		}
	}
	attached := c.attach(ctx, esb, d, fail)
	if len(attached) > 0 {
		if again, ok := c.o.Sandboxes.Lookup(pod.UID); !ok || again.ContainerID != sb.ContainerID {
			// The sandbox went away while attaching: take back what was made for it, so that no
			// port or address outlives it. The next sync works on the new sandbox, if any.
			for _, a := range attached {
				if err := c.o.Attacher.DetachInterfaces(ctx, esb, a.IfName); err != nil {
					logger.Error(err, "Could not detach from a sandbox that went away", "interface", a.IfName)
				}
			}
			return retry, nil
		}
	}
	for _, a := range attached {
		after = append(after, Current{Identity: Identity{Network: a.Network, IfName: a.IfName},
			Port: a.HostIfName, Status: statusJSON(a)})
	}
	o.Attached = identities(orderLike(after, wanted))
	if err := c.report(ctx, pod, o, orderLike(after, wanted), detached); err != nil {
		return retry, err
	}
	if len(attached) > 0 {
		c.o.Status.Event(pod, corev1.EventTypeNormal, podstatus.ReasonAttached, engine.Describe(attached))
	}
	if len(detached) > 0 {
		c.o.Status.Event(pod, corev1.EventTypeNormal, EventDetached, "detached "+strings.Join(detached, ", ")+
			"; their addresses are released")
	}
	return Result{Retry: o.Failed != nil}, nil
}

// sandbox returns the Pod's sandbox once this controller may act on it, else when to look again.
// It may act when the shim recorded the sandbox from the chained call and that sandbox's ADD is
// over: none is being served by the agent, and the record is older than SettleTime (an ADD the
// agent never sees, answered by the shim alone, is over a moment after the record is written).
func (c *Controller) sandbox(pod *corev1.Pod) (*Sandbox, Result) {
	logger := klog.LoggerWithValues(klog.Background(), "pod", klog.KObj(pod))
	sb, ok := c.o.Sandboxes.Lookup(pod.UID)
	switch {
	case !ok:
		// Being created (its ADD attaches the networks), or never recorded. A Pod update after
		// the sandbox starts brings the Pod back, and so does the backoff.
		logger.V(3).Info("No sandbox recorded for the Pod yet")
		return nil, retry
	case !sb.Chained:
		logger.V(2).Info("The Pod's sandbox was reached by Multus delegates only; its networks are Multus's", "container", sb.ContainerID)
		return nil, Result{}
	case c.o.ADDs != nil && c.o.ADDs.Busy(sb.ContainerID):
		return nil, retry
	}
	if age := c.o.Now().Sub(sb.Added); age < SettleTime {
		return nil, Result{After: SettleTime - age}
	}
	return &sb, Result{}
}

// attach attaches what the decision says: all at once for a first attachment with hot-plug off,
// else one network at a time, so that one that fails does not hold up the others.
func (c *Controller) attach(ctx context.Context, sb plan.Sandbox, d Decision, fail func(error, string)) []engine.Attached {
	if len(d.Attach) == 0 {
		return nil
	}
	networks := make([]plan.Attachment, 0, len(d.Attach))
	for _, w := range d.Attach {
		n := *w.Network
		n.WritesStatus = true
		networks = append(networks, n)
	}
	if d.AllOrNothing {
		attached, err := c.o.Attacher.Attach(ctx, sb, networks)
		if err != nil {
			fail(err, ReasonAttachFailed)
			return nil
		}
		return attached
	}
	var attached []engine.Attached
	for _, n := range networks {
		a, err := c.o.Attacher.Attach(ctx, sb, []plan.Attachment{n})
		if err != nil {
			fail(err, ReasonAttachFailed)
			continue
		}
		attached = append(attached, a...)
	}
	return attached
}

// unavailable handles an agent that cannot look at or change the sandbox now. The condition is
// set False only on a Pod that has none yet: a Pod whose networks were ready stays so (the
// datapath keeps forwarding while the agent reconnects), instead of leaving its Services.
func (c *Controller) unavailable(ctx context.Context, pod *corev1.Pod, err error) error {
	klog.FromContext(ctx).V(2).Info("Agent cannot attach now; will retry", "err", err)
	if FindCondition(pod, ConditionType) != nil || c.lastWritten(pod.UID) != nil {
		return nil
	}
	o := Outcome{Failed: err, FailedReason: ReasonAgentUnavailable}
	return c.writeCondition(ctx, pod, o)
}

// report writes network-status (entries of after, without those of the detached interfaces) and
// the condition of o, with an Event when the condition's meaning changed to a failure or refusal.
func (c *Controller) report(ctx context.Context, pod *corev1.Pod, o Outcome, after []Current, detached []string) error {
	ref := podstatus.PodRef{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	c.mu.Lock()
	managed := append(slices.Clone(c.unlisted[pod.UID]), detached...)
	c.unlisted[pod.UID] = managed
	c.mu.Unlock()
	ours := make([]nadv1.NetworkStatus, 0, len(after))
	for _, cur := range after {
		var s nadv1.NetworkStatus
		if err := json.Unmarshal([]byte(cur.Status), &s); err != nil {
			klog.FromContext(ctx).Error(err, "Unreadable network-status entry on a port", "port", cur.Port)
			continue
		}
		ours = append(ours, s)
	}
	current := pod.Annotations[nadv1.NetworkStatusAnnot]
	if _, changed, err := podstatus.MergeNetworkStatus(current, managed, ours); err != nil || changed {
		if err := c.o.Status.SetNetworkStatus(ctx, ref, managed, ours); err != nil {
			return err
		}
	}
	c.mu.Lock()
	delete(c.unlisted, pod.UID)
	c.mu.Unlock()
	return c.writeCondition(ctx, pod, o)
}

// writeCondition writes the outcome's condition when it differs from the Pod's, and records an
// Event for a new failure or refusal.
func (c *Controller) writeCondition(ctx context.Context, pod *corev1.Pod, o Outcome) error {
	want := o.Condition()
	want.Message = firstLine(want.Message)
	if have := c.lastWritten(pod.UID); have != nil && SameCondition(*have, want) {
		return nil
	}
	if have := FindCondition(pod, ConditionType); have != nil && SameCondition(*have, want) {
		c.remember(pod.UID, want)
		return nil
	}
	if err := c.o.Status.SetCondition(ctx, pod, want); err != nil {
		return fmt.Errorf("set condition %s of Pod %s/%s: %w", ConditionType, pod.Namespace, pod.Name, err)
	}
	c.remember(pod.UID, want)
	klog.FromContext(ctx).V(2).Info("Set the Pod condition", "condition", ConditionType, "status", want.Status, "reason", want.Reason)
	switch {
	case o.Failed != nil && o.FailedReason == ReasonDetachFailed:
		c.o.Status.Event(pod, corev1.EventTypeWarning, podstatus.ReasonDetachFailed, want.Message)
	case o.Failed != nil:
		c.o.Status.Event(pod, corev1.EventTypeWarning, podstatus.ReasonAttachFailed, want.Message)
	case o.Refused != nil:
		c.o.Status.Event(pod, corev1.EventTypeWarning, EventChangeNotApplied,
			fmt.Sprintf("the change of %s (%s) is not applied: feature gate SecondaryNetworkHotplug is disabled; "+
				"the Pod keeps its interfaces until it is recreated", selection.AnnotationKey, o.Refused))
	}
	return nil
}

func (c *Controller) lastWritten(uid k8stypes.UID) *corev1.PodCondition {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.written[uid]; ok {
		return &w
	}
	return nil
}

func (c *Controller) remember(uid k8stypes.UID, cond corev1.PodCondition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written[uid] = cond
}

func (c *Controller) ready() error {
	if c.o.Ready == nil {
		return nil
	}
	return c.o.Ready()
}

// statusJSON is the network-status entry of a new attachment, as its port records it.
func statusJSON(a engine.Attached) string {
	data, err := json.Marshal(a.NetworkStatus())
	if err != nil {
		return ""
	}
	return string(data)
}

// orderLike orders attachments like the annotation's entries; those it no longer names (a
// failed detach) come last.
func orderLike(cur []Current, wanted []Wanted) []Current {
	pos := make(map[Identity]int, len(wanted))
	for i, w := range wanted {
		pos[w.Identity] = i
	}
	out := make([]Current, 0, len(cur))
	var rest []Current
	for i := range wanted {
		for _, c := range cur {
			if c.Identity == wanted[i].Identity {
				out = append(out, c)
			}
		}
	}
	for _, c := range cur {
		if _, ok := pos[c.Identity]; !ok {
			rest = append(rest, c)
		}
	}
	return append(out, rest...)
}

func identities(cur []Current) []Identity {
	out := make([]Identity, 0, len(cur))
	for _, c := range cur {
		out = append(out, c.Identity)
	}
	return out
}
