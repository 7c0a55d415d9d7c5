// Package cnihandler carries out the CNI commands the shim forwards to the agent, for the three
// ways in: chained after the primary plugin (networks from the Pod annotation), as a Multus
// delegate (one network), and as an IPAM plugin of another CNI plugin (addresses only).
package cnihandler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/types/create"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/component-base/featuregate"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/agent/engine"
	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/podstatus"
	"github.com/podvlan/podvlan/pkg/cni/netconf"
	"github.com/podvlan/podvlan/pkg/cni/selection"
	"github.com/podvlan/podvlan/pkg/cni/server"
	"github.com/podvlan/podvlan/pkg/config"
	"github.com/podvlan/podvlan/pkg/ipam"
)

// Pods finds the Pod of a CNI call; uid, when not empty, must match (a Pod recreated under the
// same name is another Pod).
type Pods interface {
	Get(ctx context.Context, namespace, name, uid string) (*corev1.Pod, error)
}

// Addresses is what the IPAM-only path needs of the allocator.
type Addresses interface {
	Allocate(ctx context.Context, req ipam.Request) (*ipam.Result, error)
	Release(ctx context.Context, owner ipam.Owner) error
	Allocations(filter ipam.Filter) ([]ipam.Allocation, error)
}

// Attacher is what the handler needs of the attach engine (an *engine.Engine).
type Attacher interface {
	Attach(ctx context.Context, sb plan.Sandbox, attachments []plan.Attachment) ([]engine.Attached, error)
	Detach(ctx context.Context, sb plan.Sandbox) error
	DetachInterfaces(ctx context.Context, sb plan.Sandbox, ifNames ...string) error
	Check(ctx context.Context, sb plan.Sandbox, attachments []plan.Attachment) error
	// Allocate and Release serve the IPAM-only way in, with intents (crash safety).
	Allocate(ctx context.Context, sb plan.Sandbox, a plan.Attachment) (plan.Addressing, error)
	Release(ctx context.Context, sb plan.Sandbox, ifName string) error
	GC(ctx context.Context, way plan.Way, network string, keep engine.Keep) ([]string, error)
}

// Reporter surfaces outcomes on the Pod.
type Reporter interface {
	AttachFailed(pod podstatus.PodRef, err error)
	Attached(pod podstatus.PodRef, message string)
	DetachFailed(pod podstatus.PodRef, err error)
	// QueueNetworkStatus has the Pod's network-status written after the answer.
	QueueNetworkStatus(pod podstatus.PodRef, ours []nadv1.NetworkStatus)
}

// Handler implements server.Handler.
type Handler struct {
	gates featuregate.FeatureGate
	// engine is set once the agent is connected to OVSDB; noEngine says why it never will be.
	engine   atomic.Pointer[Attacher]
	noEngine error
	addrs    Addresses // nil when AntreaIPAM is disabled
	pods     Pods
	lookup   plan.Lookup
	reporter Reporter
	ready    func() error
	synced   func() bool
	// configErr, when set, is why the agent runs degraded: every secondary network is refused with it.
	configErr error
}

// Options are the Handler's collaborators.
type Options struct {
	Gates featuregate.FeatureGate
	// NoEngine, when set, is why secondary networks cannot be attached although the gate is on
	// (for example no bridge is configured); otherwise the engine arrives through SetEngine.
	NoEngine error
	Addrs    Addresses
	Pods     Pods
	Lookup   plan.Lookup
	Reporter Reporter
	// Ready returns nil when ADD can be served (OVSDB connected, caches synced).
	Ready func() error
	// PoolsSynced reports whether the IPPool cache has synced; until then the IPAM-only way in
	// answers "try again" rather than from an incomplete cache. Nil means synced.
	PoolsSynced func() bool
	// ConfigError, when set, is why antrea-agent.conf could not be loaded: the agent runs degraded,
	// serves Pods without secondary networks and refuses every network with this error.
	ConfigError error
}

// New returns a Handler.
func New(o Options) *Handler {
	return &Handler{gates: o.Gates, noEngine: o.NoEngine, addrs: o.Addrs, pods: o.Pods, lookup: o.Lookup,
		reporter: o.Reporter, ready: o.Ready, synced: o.PoolsSynced, configErr: o.ConfigError}
}

// SetEngine makes secondary networks available; the agent calls it once OVSDB is connected.
// Until then Pods without secondary networks are served, and Pods with them get "try again".
func (h *Handler) SetEngine(e Attacher) { h.engine.Store(&e) }

// attachEngine returns the engine, or a CNI error saying why networks cannot be attached now.
func (h *Handler) attachEngine() (Attacher, error) {
	if err := h.gateError(config.SecondaryNetwork); err != nil {
		return nil, err
	}
	if h.noEngine != nil {
		return nil, invalidConfig(h.noEngine)
	}
	if e := h.engine.Load(); e != nil {
		return *e, nil
	}
	return nil, tryAgain(errors.New("antrea-agent is not connected to OVSDB yet"))
}

// detachEngine returns the engine for DEL and GC; nil with no error when this agent cannot
// have attached anything.
func (h *Handler) detachEngine() (Attacher, error) {
	if h.gateError(config.SecondaryNetwork) != nil || h.noEngine != nil {
		return nil, nil
	}
	if e := h.engine.Load(); e != nil {
		return *e, nil
	}
	return nil, tryAgain(errors.New("antrea-agent is not connected to OVSDB yet"))
}

// ipamEngine returns the engine for the IPAM-only way in: nil with no error when no engine is
// ever expected (SecondaryNetwork off or no bridge: addresses are then served without intents,
// since intents live in OVSDB), "try again" while the IPPool cache or the engine is not ready.
func (h *Handler) ipamEngine() (Attacher, error) {
	if err := h.gateError(config.AntreaIPAM); err != nil {
		return nil, err
	}
	if h.synced != nil && !h.synced() {
		return nil, tryAgain(errors.New("antrea-agent is starting: the IPPool cache has not synced yet"))
	}
	if h.gateError(config.SecondaryNetwork) != nil || h.noEngine != nil {
		return nil, nil
	}
	if e := h.engine.Load(); e != nil {
		return *e, nil
	}
	return nil, tryAgain(errors.New("antrea-agent is not connected to OVSDB yet"))
}

var _ server.Handler = (*Handler)(nil)

func invalidConfig(err error) error {
	var typed *types.Error
	if errors.As(err, &typed) {
		return err
	}
	return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
}

func tryAgain(err error) error {
	return types.NewError(types.ErrTryAgainLater, err.Error(), "")
}

// internal is an error of the agent's own doing: code 999, except that a call cut short (the
// runtime gave up, or the agent is stopping) is "try again later", which is what it is.
func internal(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return tryAgain(err)
	}
	return types.NewError(types.ErrInternal, err.Error(), "")
}

func (h *Handler) gateError(gate featuregate.Feature) error {
	if h.configErr != nil {
		return invalidConfig(h.configErr)
	}
	if h.gates != nil && h.gates.Enabled(gate) {
		return nil
	}
	return invalidConfig(config.GateDisabledError(gate, config.AgentFileName))
}

// parse reads the configuration (the only time a request's stdin is parsed) and the arguments
// common to every command.
func parse(ctx context.Context, req *server.Request) (*netconf.Stdin, parsedArgs, error) {
	stdin, err := parseStdin(ctx, req)
	if err != nil {
		return nil, parsedArgs{}, err
	}
	if err := stdin.CheckCommand(req.Command); err != nil {
		return nil, parsedArgs{}, invalidConfig(err)
	}
	args, err := parseArgs(req.Args)
	if err != nil {
		return nil, parsedArgs{}, err
	}
	return stdin, args, nil
}

// parseStdin reads the configuration and names its network in the server's log of the command.
func parseStdin(ctx context.Context, req *server.Request) (*netconf.Stdin, error) {
	stdin, err := netconf.ParseStdin(req.Config)
	if err != nil {
		return nil, invalidConfig(err)
	}
	if stdin.Name != "" {
		server.AddLogKeys(ctx, "network", stdin.Name)
	}
	return stdin, nil
}

func sandboxOf(req *server.Request, args parsedArgs) plan.Sandbox {
	return plan.Sandbox{PodNamespace: args.Namespace, PodName: args.Name, PodUID: args.UID,
		ContainerID: req.ContainerID, NetNS: req.Netns}
}

func podRef(pod *corev1.Pod) podstatus.PodRef {
	return podstatus.PodRef{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
}

// Add implements CNI ADD.
func (h *Handler) Add(ctx context.Context, req *server.Request) (types.Result, error) {
	stdin, args, err := parse(ctx, req)
	if err != nil {
		return nil, err
	}
	switch stdin.Mode {
	case netconf.ModeChained:
		return h.addChained(ctx, req, stdin, args)
	case netconf.ModeDelegate:
		return h.addDelegate(ctx, req, stdin, args)
	default:
		return h.addIPAMOnly(ctx, req, stdin, args)
	}
}

func (h *Handler) addChained(ctx context.Context, req *server.Request, stdin *netconf.Stdin, args parsedArgs) (types.Result, error) {
	prev, err := create.Create(stdin.CNIVersion, stdin.PrevResult)
	if err != nil {
		return nil, invalidConfig(fmt.Errorf("prevResult: %w", err))
	}
	if !args.hasPod() {
		return prev, nil // not a Kubernetes Pod: nothing to attach
	}
	pod, err := h.pods.Get(ctx, args.Namespace, args.Name, args.UID)
	if err != nil {
		return nil, tryAgain(fmt.Errorf("get Pod %s/%s: %w", args.Namespace, args.Name, err))
	}
	annotation := strings.TrimSpace(pod.Annotations[selection.AnnotationKey])
	if annotation == "" {
		return prev, nil
	}
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod), "container", req.ContainerID)
	ctx = klog.NewContext(ctx, logger)
	fail := func(err error) (types.Result, error) {
		h.reporter.AttachFailed(podRef(pod), err)
		logger.Error(err, "Could not attach secondary networks")
		return nil, err
	}
	if _, err := h.attachEngine(); err != nil {
		// Say why networks cannot be served before judging their details.
		ours, perr := plan.OursIn(ctx, pod.Namespace, annotation, h.lookup)
		if perr != nil {
			return fail(invalidConfig(perr))
		}
		if len(ours) == 0 {
			return prev, nil
		}
		return fail(fmt.Errorf("Pod %s/%s asks for network %s: %w", pod.Namespace, pod.Name, ours[0], err))
	}
	p, err := plan.ForPod(ctx, pod.Namespace, annotation, h.lookup)
	if err != nil {
		return fail(invalidConfig(err))
	}
	if len(p.Attachments) == 0 {
		return prev, nil // every network belongs to another plugin
	}
	eng, err := h.attachEngine()
	if err != nil {
		return fail(fmt.Errorf("Pod %s/%s asks for network %s: %w", pod.Namespace, pod.Name, p.Attachments[0].Network, err))
	}
	if err := h.checkIPAMGate(p.Attachments); err != nil {
		return fail(err)
	}
	sb := sandboxOf(req, args)
	sb.PodUID = string(pod.UID)
	attached, err := eng.Attach(ctx, sb, p.Attachments)
	if err != nil {
		return fail(internal(err))
	}
	statuses := make([]nadv1.NetworkStatus, 0, len(attached))
	for _, a := range attached {
		statuses = append(statuses, a.NetworkStatus())
	}
	h.reporter.QueueNetworkStatus(podRef(pod), statuses)
	h.reporter.Attached(podRef(pod), engine.Describe(attached))
	logger.Info("Attached secondary networks", "networks", len(attached))
	return prev, nil
}

func (h *Handler) checkIPAMGate(attachments []plan.Attachment) error {
	for _, a := range attachments {
		if a.WantsAddresses() {
			if err := h.gateError(config.AntreaIPAM); err != nil {
				return invalidConfig(fmt.Errorf("network %s assigns addresses (ipam or ips): %w", a.Network, err))
			}
		}
	}
	return nil
}

// delegateAttachment plans the one attachment of a Multus delegate call; Multus passes the
// annotation's mac and ips in runtimeConfig, or else in CNI_ARGS.
func (h *Handler) delegateAttachment(ctx context.Context, req *server.Request, stdin *netconf.Stdin, args parsedArgs) (*plan.Attachment, error) {
	mac := stdin.Runtime.MAC
	if mac == nil {
		mac = args.MAC
	}
	ips := stdin.Runtime.IPs
	if len(ips) == 0 {
		ips = args.IPs
	}
	a, err := plan.ForDelegate(ctx, stdin.Network, req.IfName, mac, ips, h.lookup)
	if err != nil {
		return nil, invalidConfig(err)
	}
	return a, nil
}

func (h *Handler) addDelegate(ctx context.Context, req *server.Request, stdin *netconf.Stdin, args parsedArgs) (types.Result, error) {
	var pod *corev1.Pod
	if args.hasPod() {
		var err error
		if pod, err = h.pods.Get(ctx, args.Namespace, args.Name, args.UID); err != nil && !apierrors.IsNotFound(err) {
			return nil, tryAgain(fmt.Errorf("get Pod %s/%s: %w", args.Namespace, args.Name, err))
		}
	}
	fail := func(err error) (types.Result, error) {
		if pod != nil {
			h.reporter.AttachFailed(podRef(pod), err)
		}
		klog.FromContext(ctx).Error(err, "Could not attach delegated network", "pod", klog.KRef(args.Namespace, args.Name), "interface", req.IfName)
		return nil, err
	}
	eng, err := h.attachEngine()
	if err != nil {
		return fail(err)
	}
	a, err := h.delegateAttachment(ctx, req, stdin, args)
	if err != nil {
		return fail(err)
	}
	if err := h.checkIPAMGate([]plan.Attachment{*a}); err != nil {
		return fail(err)
	}
	sb := sandboxOf(req, args)
	if pod != nil {
		sb.PodUID = string(pod.UID)
	}
	attached, err := eng.Attach(ctx, sb, []plan.Attachment{*a})
	if err != nil {
		return fail(internal(err))
	}
	if pod != nil {
		h.reporter.Attached(podRef(pod), engine.Describe(attached))
	}
	return attached[0].Result(req.Netns), nil
}

func (h *Handler) addIPAMOnly(ctx context.Context, req *server.Request, stdin *netconf.Stdin, args parsedArgs) (types.Result, error) {
	eng, err := h.ipamEngine()
	if err != nil {
		return nil, err
	}
	a, err := plan.ForIPAMOnly(stdin.Name, stdin.IPAM, req.IfName, args.IPs)
	if err != nil {
		return nil, invalidConfig(err)
	}
	sb := sandboxOf(req, args)
	var x plan.Addressing
	if eng != nil {
		x, err = eng.Allocate(ctx, sb, *a)
	} else {
		var res *ipam.Result
		if res, err = h.addrs.Allocate(ctx, a.Request(sb)); err == nil {
			x = a.Addressing(res.IPs)
		} else {
			err = fmt.Errorf("allocate addresses for %s of container %s: %w", req.IfName, req.ContainerID, err)
		}
	}
	if err != nil {
		err = internal(err)
		if args.hasPod() {
			h.reporter.AttachFailed(podstatus.PodRef{Namespace: args.Namespace, Name: args.Name, UID: k8stypes.UID(args.UID)}, err)
		}
		return nil, err
	}
	return x.Result(nil, a.DNS), nil
}

// Del implements CNI DEL: it succeeds when there is nothing (left) to remove.
func (h *Handler) Del(ctx context.Context, req *server.Request) error {
	stdin, args, err := parse(ctx, req)
	if err != nil {
		// A configuration that no longer parses must not block the sandbox's removal forever:
		// clean up by container ID, which needs no configuration.
		klog.FromContext(ctx).Error(err, "DEL with an invalid configuration; cleaning up by container ID", "container", req.ContainerID)
		return h.delChained(ctx, plan.Sandbox{ContainerID: req.ContainerID, NetNS: req.Netns})
	}
	switch stdin.Mode {
	case netconf.ModeChained:
		if err := h.delChained(ctx, sandboxOf(req, args)); err != nil {
			h.detachFailed(args, err)
			return err
		}
		return nil
	case netconf.ModeDelegate:
		eng, err := h.detachEngine()
		if eng == nil {
			return err
		}
		if err := eng.DetachInterfaces(ctx, sandboxOf(req, args), req.IfName); err != nil {
			h.detachFailed(args, err)
			return internal(err)
		}
		return nil
	default:
		if h.addrs == nil {
			return nil
		}
		eng, err := h.ipamEngine()
		if err != nil {
			if h.gateError(config.AntreaIPAM) != nil {
				return nil // nothing can have been allocated
			}
			return err
		}
		if eng != nil {
			err = eng.Release(ctx, sandboxOf(req, args), req.IfName)
		} else if err = h.addrs.Release(ctx, plan.OwnerOf(sandboxOf(req, args), req.IfName)); err != nil {
			err = fmt.Errorf("release addresses of %s of container %s: %w", req.IfName, req.ContainerID, err)
		}
		if err != nil {
			h.detachFailed(args, err)
			return internal(err)
		}
		return nil
	}
}

func (h *Handler) delChained(ctx context.Context, sb plan.Sandbox) error {
	eng, err := h.detachEngine()
	if eng == nil || sb.ContainerID == "" {
		return err
	}
	if err := eng.Detach(ctx, sb); err != nil {
		return internal(err)
	}
	return nil
}

// detachFailed tells the Pod's user that a DEL failed; the runtime retries it, and reconciliation
// removes what is left if the sandbox disappears.
func (h *Handler) detachFailed(args parsedArgs, err error) {
	if args.hasPod() {
		h.reporter.DetachFailed(podstatus.PodRef{Namespace: args.Namespace, Name: args.Name, UID: k8stypes.UID(args.UID)}, err)
	}
}

// Check implements CNI CHECK.
func (h *Handler) Check(ctx context.Context, req *server.Request) error {
	stdin, args, err := parse(ctx, req)
	if err != nil {
		return err
	}
	switch stdin.Mode {
	case netconf.ModeChained:
		if !args.hasPod() {
			return nil
		}
		pod, err := h.pods.Get(ctx, args.Namespace, args.Name, args.UID)
		if err != nil {
			return tryAgain(fmt.Errorf("get Pod %s/%s: %w", args.Namespace, args.Name, err))
		}
		p, err := plan.ForPod(ctx, pod.Namespace, pod.Annotations[selection.AnnotationKey], h.lookup)
		if err != nil {
			return invalidConfig(err)
		}
		if len(p.Attachments) == 0 {
			return nil
		}
		eng, err := h.attachEngine()
		if err != nil {
			return err
		}
		return wrapCheck(eng.Check(ctx, sandboxOf(req, args), p.Attachments))
	case netconf.ModeDelegate:
		eng, err := h.attachEngine()
		if err != nil {
			return err
		}
		a, err := h.delegateAttachment(ctx, req, stdin, args)
		if err != nil {
			return err
		}
		return wrapCheck(eng.Check(ctx, sandboxOf(req, args), []plan.Attachment{*a}))
	default:
		if _, err := h.ipamEngine(); err != nil {
			return err
		}
		return h.checkIPAMOnly(req, stdin)
	}
}

func wrapCheck(err error) error {
	if err == nil {
		return nil
	}
	return internal(err)
}

func (h *Handler) checkIPAMOnly(req *server.Request, stdin *netconf.Stdin) error {
	allocs, err := h.addrs.Allocations(ipam.Filter{ContainerID: req.ContainerID})
	if err != nil {
		return internal(err)
	}
	have := map[string]bool{}
	for _, a := range allocs {
		if a.Owner.IFName == req.IfName {
			have[a.Pool] = true
		}
	}
	for _, pool := range stdin.IPAM.IPPools {
		if !have[pool] {
			return internal(fmt.Errorf("interface %s of container %s holds no address of IPPool %q", req.IfName, req.ContainerID, pool))
		}
	}
	return nil
}

// GC implements CNI GC: the attachments of the network in the call that are missing from its
// valid list are removed; another way in's or another network's are never touched (see
// engine.GC). A chained sandbox counts as valid when any of its interfaces is listed, because
// the runtime lists the primary interface only.
func (h *Handler) GC(ctx context.Context, req *server.Request) error {
	stdin, err := parseStdin(ctx, req)
	if err != nil {
		return err
	}
	keepContainer := make(map[string]bool, len(stdin.ValidAttachments))
	keepAttachment := make(map[netconf.Attachment]bool, len(stdin.ValidAttachments))
	for _, a := range stdin.ValidAttachments {
		keepContainer[a.ContainerID] = true
		keepAttachment[a] = true
	}
	var way plan.Way
	var network string
	var eng Attacher
	keep := func(containerID, ifName string) bool {
		return keepAttachment[netconf.Attachment{ContainerID: containerID, IfName: ifName}]
	}
	switch stdin.Mode {
	case netconf.ModeChained:
		way, network = plan.Chained, stdin.Name
		keep = func(containerID, _ string) bool { return keepContainer[containerID] }
		eng, err = h.detachEngine()
	case netconf.ModeDelegate:
		way, network = plan.Delegate, stdin.Network.Key()
		eng, err = h.detachEngine()
	default:
		way, network = plan.IPAMOnly, stdin.Name
		if eng, err = h.ipamEngine(); err != nil && h.gateError(config.AntreaIPAM) != nil {
			return nil // nothing can have been allocated
		}
	}
	if eng == nil {
		return err // nil: nothing of this way in can exist without the engine
	}
	removed, err := eng.GC(ctx, way, network, keep)
	if err != nil {
		return internal(fmt.Errorf("garbage-collect attachments of network %s (%s): %w", network, way, err))
	}
	if len(removed) > 0 {
		klog.FromContext(ctx).Info("Garbage-collected attachments missing from the valid list", "network", network, "way", way, "removed", removed)
	}
	return nil
}

// Status implements CNI STATUS.
func (h *Handler) Status(ctx context.Context, req *server.Request) error {
	if h.ready == nil {
		return nil
	}
	if err := h.ready(); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	return nil
}
