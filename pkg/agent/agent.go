// Package agent wires the antrea-agent together: the OVSDB client and secondary bridge, informers
// on this Node's Pods and on the NetworkAttachmentDefinitions and IPPools, the IPPool allocator,
// the attach engine, the CNI server for the shim, reconciliation, the controller of running Pods'
// networks, and the metrics endpoint.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"time"

	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	nadinformers "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/informers/externalversions"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/agent/bridge"
	"github.com/podvlan/podvlan/pkg/agent/cnihandler"
	"github.com/podvlan/podvlan/pkg/agent/delspool"
	"github.com/podvlan/podvlan/pkg/agent/engine"
	"github.com/podvlan/podvlan/pkg/agent/metrics"
	"github.com/podvlan/podvlan/pkg/agent/objects"
	"github.com/podvlan/podvlan/pkg/agent/podnetworks"
	"github.com/podvlan/podvlan/pkg/agent/podstatus"
	"github.com/podvlan/podvlan/pkg/agent/reconcile"
	"github.com/podvlan/podvlan/pkg/agent/sandboxes"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	crdinformers "github.com/podvlan/podvlan/pkg/client/informers/externalversions"
	"github.com/podvlan/podvlan/pkg/cni/nodestate"
	"github.com/podvlan/podvlan/pkg/cni/nodestate/spool"
	"github.com/podvlan/podvlan/pkg/cni/server"
	"github.com/podvlan/podvlan/pkg/config"
	"github.com/podvlan/podvlan/pkg/ipam"
	"github.com/podvlan/podvlan/pkg/ovs"
	"github.com/podvlan/podvlan/pkg/version"
)

// Options are what the agent needs besides antrea-agent.conf.
type Options struct {
	Config   *config.Agent
	NodeName string
	// RestConfig reaches the API server.
	RestConfig *rest.Config
	// OVSDBEndpoint overrides unix:<ovsRunDir>/db.sock.
	OVSDBEndpoint string
	// ReconcileInterval is the period of the leak sweep; default 1 minute.
	ReconcileInterval time.Duration
	// MetricsAddress is where /metrics, /healthz and the probes' /livez and /readyz are served
	// over plain HTTP; empty disables.
	MetricsAddress string
	// ConfigError, when set, is why antrea-agent.conf did not load; Config is then
	// config.DegradedAgent's. The agent runs degraded: it serves CNI, passes Pods without
	// secondary networks, refuses the others with this error, and says so on the Node.
	ConfigError error
	// CNIConfDir is the Node's CNI configuration directory, where the chain keeper keeps antrea
	// chained (SecondaryNetwork on, or ConfigError) or unchained; empty leaves it alone.
	CNIConfDir string
	// CNIBinDir is the Node's CNI plugin directory, whose antrea binary an uninstall removes.
	CNIBinDir string
	// DaemonSet is the agent's own DaemonSet, namespace/name: when it is gone or being deleted
	// as the agent stops, the agent takes antrea off the Node (uninstall). Empty never does.
	DaemonSet string
}

// agent holds what the goroutines of a running agent share.
type agent struct {
	o         Options
	kube      kubernetes.Interface
	reporter  *podstatus.Reporter
	pods      *objects.Pods
	allocator *ipam.Allocator
	handler   *cnihandler.Handler
	metrics   *metrics.Metrics
	// sandboxes are the Pod sandboxes the CNI shim recorded on this Node.
	sandboxes *sandboxes.Store
	// adds are the CNI ADDs being served, and podNetworks what the running-Pods controller
	// needs once the engine exists.
	adds        *podnetworks.ADDs
	podNetworks podNetworksInputs

	synced atomic.Bool
	// secondary is set once OVSDB is connected (nil while it is not, or with the gate off).
	secondary atomic.Pointer[secondaryNetwork]
}

// secondaryNetwork is the OVS side of a running agent.
type secondaryNetwork struct {
	ovs        *ovs.Client
	bridge     *bridge.Manager
	reconciled atomic.Bool
}

// Run runs the agent until ctx ends. It serves the CNI shim as early as possible: Pods without
// secondary networks must never wait for OVSDB.
func Run(ctx context.Context, o Options) error {
	cfg := o.Config
	if o.ReconcileInterval <= 0 {
		o.ReconcileInterval = time.Minute
	}
	secondaryOn := o.ConfigError == nil && cfg.Gates.Enabled(config.SecondaryNetwork)
	ipamOn := o.ConfigError == nil && cfg.Gates.Enabled(config.AntreaIPAM)
	klog.InfoS("Starting antrea-agent", append(version.Get().KeysAndValues(),
		"node", o.NodeName, "SecondaryNetwork", secondaryOn, "AntreaIPAM", ipamOn, "degraded", o.ConfigError != nil)...)

	a := &agent{o: o, metrics: metrics.New()}
	a.metrics.SetReadiness(a.readyz)
	a.metrics.ConfigInvalid(o.ConfigError != nil)
	if o.MetricsAddress != "" {
		// The endpoint ends with Run, also when Run fails.
		metricsCtx, stopMetrics := context.WithCancel(ctx)
		defer stopMetrics()
		if err := a.metrics.Start(metricsCtx, o.MetricsAddress); err != nil {
			return err
		}
	}
	var err error
	if a.kube, err = kubernetes.NewForConfig(o.RestConfig); err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	nads, err := nadclient.NewForConfig(o.RestConfig)
	if err != nil {
		return fmt.Errorf("NetworkAttachmentDefinition client: %w", err)
	}
	crds, err := versioned.NewForConfig(o.RestConfig)
	if err != nil {
		return fmt.Errorf("IPPool client: %w", err)
	}
	// Events and network-status are written after the CNI answers, with a client (and so a rate
	// limit) of their own: a burst of them must never hold up the next ADD's IPPool writes.
	reportClient, err := kubernetes.NewForConfig(rest.CopyConfig(o.RestConfig))
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	a.reporter = podstatus.NewReporter(reportClient, o.NodeName)
	defer a.reporter.Shutdown()
	nodeRef := &corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: o.NodeName}
	if o.ConfigError != nil {
		klog.ErrorS(o.ConfigError, "Running degraded: Pods without secondary networks are served, Pods with them get this error")
		a.reporter.Recorder().Event(nodeRef, corev1.EventTypeWarning, "InvalidConfiguration",
			"antrea-agent runs degraded, secondary networks are refused until the configuration is fixed and the agent restarted: "+
				o.ConfigError.Error())
	}

	// Only this Node's Pods: an agent must not hold every Pod of the cluster in memory.
	podFactory := informers.NewSharedInformerFactoryWithOptions(a.kube, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", o.NodeName).String()
		}))
	podInformer := podFactory.Core().V1().Pods()
	nadFactory := nadinformers.NewSharedInformerFactory(nads, 0)
	nadInformer := nadFactory.K8sCniCncfIo().V1().NetworkAttachmentDefinitions()
	crdFactory := crdinformers.NewSharedInformerFactory(crds, 0)
	poolInformer := crdFactory.Crd().V1beta1().IPPools()

	a.pods = &objects.Pods{Client: a.kube, Lister: podInformer.Lister()}
	lookup := &objects.Lookup{NADClient: nads, NADLister: nadInformer.Lister(), CRDClient: crds, PoolLister: poolInformer.Lister()}
	if ipamOn {
		opts := ipam.Options{}
		if o.ConfigError == nil && cfg.Gates.Enabled(config.IPPoolBlocks) {
			// Address blocks of this Node; their records sit next to the CNI socket, on the Node's
			// /var/run (they must outlive the agent, not the Node's sandboxes).
			opts = ipam.Options{NodeName: o.NodeName, Blocks: crdFactory.Crd().V1beta1().IPPoolBlocks(),
				StateDir: filepath.Join(filepath.Dir(cfg.CNISocket), "ipam")}
		}
		if a.allocator, err = ipam.NewAllocator(crds, poolInformer, opts); err != nil {
			return err
		}
		if opts.NodeName != "" {
			defer a.allocator.FlushBlocks()
		}
	}

	br, hasBridge := cfg.Bridge()
	if secondaryOn && hasBridge {
		// The bridge reads as not ready until it is first ensured.
		a.metrics.SecondaryBridgeState(br.BridgeName, br.PhysicalInterfaces, false, nil, nil)
	}
	var noEngine error
	if secondaryOn && !hasBridge {
		noEngine = fmt.Errorf("feature gate %s is enabled but %s configures no secondaryNetwork.ovsBridges", config.SecondaryNetwork, config.AgentFileName)
		klog.ErrorS(noEngine, "Secondary networks cannot be attached on this Node")
	}
	var handlerAddrs cnihandler.Addresses
	if a.allocator != nil {
		handlerAddrs = a.allocator
	}
	a.handler = cnihandler.New(cnihandler.Options{Gates: cfg.Gates, NoEngine: noEngine, Addrs: handlerAddrs,
		Pods: a.pods, Lookup: lookup, Reporter: a.reporter, Ready: a.ready, PoolsSynced: poolInformer.Informer().HasSynced,
		ConfigError: o.ConfigError})

	reconcileNow := make(chan struct{}, 1)
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(any) { notify(reconcileNow) },
	}); err != nil {
		return err
	}
	_ = nadInformer.Informer()
	_ = poolInformer.Informer()
	podFactory.Start(ctx.Done())
	nadFactory.Start(ctx.Done())
	crdFactory.Start(ctx.Done())
	defer podFactory.Shutdown()
	defer crdFactory.Shutdown()

	// What the shim recorded while the agent was away: sandboxes, and DELs to run.
	stateDirs := nodestate.ForSocket(cfg.CNISocket)
	a.sandboxes = sandboxes.New(stateDirs.Sandboxes)
	drainer := delspool.New(stateDirs.Spool, a.handler, a.canRunDel)
	drainer.OnDepth(a.metrics.DELSpoolDepth)
	drainer.OnResult(func(_ spool.Entry, _ time.Duration, err error) { a.metrics.SpooledDELRun(err) })
	go drainer.Run(ctx)

	a.adds = podnetworks.NewADDs()
	a.podNetworks = podNetworksInputs{lookup: lookup, client: reportClient, pods: podInformer.Informer(),
		networks: []cache.SharedIndexInformer{nadInformer.Informer(), poolInformer.Informer()}}
	srv := server.New(cfg.CNISocket, a.adds.Wrap(a.handler))
	srv.OnOutcome(a.metrics.CNIRequest)
	if err := srv.Start(); err != nil {
		return fmt.Errorf("serve CNI on %s: %w", cfg.CNISocket, err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), server.DefaultGracePeriod)
		defer cancel()
		srv.Stop(stopCtx)
	}()
	klog.InfoS("Serving CNI", "socket", cfg.CNISocket)
	if o.CNIConfDir != "" {
		// Chained once the agent serves; deferred after the server's Stop, so it runs before it:
		// an uninstall unchains while the agent still answers.
		defer a.keepChain(ctx, nodeRef)()
	}

	for _, f := range []struct {
		name string
		sync cache.InformerSynced
	}{
		{"Pods", podInformer.Informer().HasSynced},
		{"NetworkAttachmentDefinitions", nadInformer.Informer().HasSynced},
		{"IPPools", poolInformer.Informer().HasSynced},
	} {
		if !cache.WaitForNamedCacheSync(f.name, ctx.Done(), f.sync) {
			return ctx.Err()
		}
	}
	a.synced.Store(true)
	if a.allocator != nil {
		go a.loadBlocks(ctx)
	}

	if secondaryOn && hasBridge {
		if err := a.runSecondary(ctx, br, reconcileNow); err != nil {
			return err
		}
	} else {
		// Without reconciliation the shim's records still need forgetting once their sandboxes go.
		go a.pruneSandboxRecords(ctx)
	}
	<-ctx.Done()
	klog.InfoS("Stopping antrea-agent")
	return nil
}

// runSecondary connects to OVSDB (retrying until ctx ends), then keeps the bridge and starts
// serving secondary networks and reconciling. It returns once that is under way.
func (a *agent) runSecondary(ctx context.Context, br config.OVSBridge, reconcileNow chan struct{}) error {
	cfg := a.o.Config
	endpoint := a.o.OVSDBEndpoint
	if endpoint == "" {
		endpoint = "unix:" + filepath.Join(cfg.OVSRunDir, "db.sock")
	}
	nodeIPs, err := nodeAddresses(ctx, a.kube, a.o.NodeName)
	if err != nil {
		return err
	}
	klog.InfoS("Connecting to OVSDB", "endpoint", endpoint)
	ovsClient, err := ovs.Connect(ctx, endpoint, ovs.WithNodeIPs(nodeIPs...))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("connect to OVSDB at %s: %w", endpoint, err)
	}
	context.AfterFunc(ctx, ovsClient.Close)
	nodeRef := &corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: a.o.NodeName}
	sn := &secondaryNetwork{ovs: ovsClient}
	sn.bridge = bridge.New(ovsClient, ovs.BridgeConfig{Name: br.BridgeName, DatapathType: string(cfg.OVSDatapathType),
		MulticastSnooping: br.EnableMulticastSnooping}, br.PhysicalInterfaces, a.reporter.Recorder(), nodeRef)
	sn.bridge.OnReconnect(func() { notify(reconcileNow) })
	sn.bridge.OnState(func(ready bool, missing, refused []string) {
		a.metrics.SecondaryBridgeState(br.BridgeName, br.PhysicalInterfaces, ready, missing, refused)
	})
	// Networks without ipam work with AntreaIPAM off; the handler refuses address requests then.
	var addrs engine.Addresses = noAddresses{}
	if a.allocator != nil {
		addrs = a.allocator
	}
	eng := engine.New(ovsClient, ovsClient, addrs, engine.Options{Bridge: br.BridgeName, Observe: a.metrics.NetworkOperation,
		DisableTXChecksum: cfg.OVSDatapathType == config.DatapathNetdev})
	reconciler := reconcile.New(br.BridgeName, ovsClient, ovsClient, eng, a.pods, reconcile.KernelLinkExists, reconcile.KernelNetNSExists)
	reconciler.RestoreStatuses(a.reporter, func(namespace, name string) (*corev1.Pod, error) {
		return a.pods.Lister.Pods(namespace).Get(name)
	})
	reconciler.ForgetSandboxRecords(a.sandboxes)
	a.secondary.Store(sn)
	a.handler.SetEngine(eng)
	if err := a.startPodNetworks(ctx, eng, ovsClient, br.BridgeName); err != nil {
		return err
	}

	go sn.bridge.Run(ctx)
	first := make(chan struct{})
	go reconciler.Run(ctx, a.o.ReconcileInterval, reconcileNow, first)
	go func() {
		select {
		case <-first:
			sn.reconciled.Store(true)
			klog.InfoS("Initial reconciliation done")
		case <-ctx.Done():
		}
	}()
	return nil
}

// readyz is the readiness probe: ready, and a configuration that loaded. A degraded agent serves
// the Node's Pods (its CNI STATUS succeeds: the Node's network is available) but is not ready, so
// that a rollout of a bad configuration stops at the first Node.
func (a *agent) readyz() error {
	if a.o.ConfigError != nil {
		return fmt.Errorf("antrea-agent runs degraded: %w", a.o.ConfigError)
	}
	return a.ready()
}

// ready is CNI STATUS: nil once ADD can be served in full.
func (a *agent) ready() error {
	if !a.synced.Load() {
		return errors.New("antrea-agent is starting: caches not synced yet")
	}
	cfg := a.o.Config
	if _, ok := cfg.Bridge(); !cfg.Gates.Enabled(config.SecondaryNetwork) || !ok {
		return nil
	}
	sn := a.secondary.Load()
	if sn == nil || !sn.ovs.Connected() {
		return errors.New("antrea-agent is not connected to OVSDB")
	}
	if err := sn.bridge.Ready(); err != nil {
		return err
	}
	if !sn.reconciled.Load() {
		return errors.New("antrea-agent is starting: reconciliation not done yet")
	}
	return nil
}

// canRunDel is nil once a DEL run now really releases what it names: caches synced and, with
// secondary networks on, OVSDB connected. The spooled DELs wait for it.
func (a *agent) canRunDel() error {
	if !a.synced.Load() {
		return errors.New("antrea-agent is starting: caches not synced yet")
	}
	cfg := a.o.Config
	if _, ok := cfg.Bridge(); !cfg.Gates.Enabled(config.SecondaryNetwork) || !ok {
		return nil
	}
	if sn := a.secondary.Load(); sn == nil || !sn.ovs.Connected() {
		return errors.New("antrea-agent is not connected to OVSDB")
	}
	return nil
}

// loadBlocks adopts this Node's IPPoolBlocks at start rather than at the first IPAM command, so
// that holders a killed agent recorded but did not report are reported without waiting for one
// (ipam.Allocator.LoadBlocks). It retries until it succeeds or ctx ends.
func (a *agent) loadBlocks(ctx context.Context) {
	for {
		err := a.allocator.LoadBlocks(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		klog.ErrorS(err, "Cannot adopt this Node's IPPoolBlocks yet; retrying")
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// pruneSandboxRecords forgets, every reconcile interval, the shim's records of sandboxes that are
// gone; with secondary networks on, reconciliation does it.
func (a *agent) pruneSandboxRecords(ctx context.Context) {
	for {
		if n, err := a.sandboxes.Prune(); err != nil {
			klog.ErrorS(err, "Cannot forget the records of vanished sandboxes")
		} else if n > 0 {
			klog.InfoS("Forgot the records of sandboxes that are gone", "records", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(a.o.ReconcileInterval):
		}
	}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// nodeAddresses returns the Node's addresses, which the uplinks must never carry.
func nodeAddresses(ctx context.Context, kube kubernetes.Interface, name string) ([]net.IP, error) {
	node, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get Node %s: %w", name, err)
	}
	var ips []net.IP
	for _, a := range node.Status.Addresses {
		if ip := net.ParseIP(a.Address); ip != nil {
			ips = append(ips, ip)
		}
	}
	return ips, nil
}

// noAddresses serves networks without ipam when AntreaIPAM is off; the handler refuses address
// requests before the engine is reached, so these are never asked to allocate.
type noAddresses struct{}

func (noAddresses) Allocate(context.Context, ipam.Request) (*ipam.Result, error) {
	return nil, fmt.Errorf("feature gate %s is disabled", config.AntreaIPAM)
}
func (noAddresses) Release(context.Context, ipam.Owner) error      { return nil }
func (noAddresses) ReleaseContainer(context.Context, string) error { return nil }
