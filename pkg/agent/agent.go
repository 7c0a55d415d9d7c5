// Package agent wires the antrea-agent together: the OVSDB client and secondary bridge, informers
// on this Node's Pods and on the NetworkAttachmentDefinitions and IPPools, the IPPool allocator,
// the attach engine, the CNI server for the shim, and reconciliation.
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
	"github.com/podvlan/podvlan/pkg/agent/engine"
	"github.com/podvlan/podvlan/pkg/agent/objects"
	"github.com/podvlan/podvlan/pkg/agent/podstatus"
	"github.com/podvlan/podvlan/pkg/agent/reconcile"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	crdinformers "github.com/podvlan/podvlan/pkg/client/informers/externalversions"
	"github.com/podvlan/podvlan/pkg/cni/server"
	"github.com/podvlan/podvlan/pkg/config"
	"github.com/podvlan/podvlan/pkg/ipam"
	"github.com/podvlan/podvlan/pkg/ovs"
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
	// Ready, when not nil, is closed once the agent serves ADD (for tests and benchmarks).
	Ready chan<- struct{}
}

// Run runs the agent until ctx ends.
func Run(ctx context.Context, o Options) error {
	cfg := o.Config
	if o.ReconcileInterval <= 0 {
		o.ReconcileInterval = time.Minute
	}
	secondary := cfg.Gates.Enabled(config.SecondaryNetwork)
	ipamOn := cfg.Gates.Enabled(config.AntreaIPAM)
	klog.InfoS("Starting antrea-agent", "node", o.NodeName, "SecondaryNetwork", secondary, "AntreaIPAM", ipamOn)

	kube, err := kubernetes.NewForConfig(o.RestConfig)
	if err != nil {
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
	reporter := podstatus.NewReporter(kube, o.NodeName)
	defer reporter.Shutdown()

	// Only this Node's Pods: an agent must not hold every Pod of the cluster in memory.
	podFactory := informers.NewSharedInformerFactoryWithOptions(kube, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", o.NodeName).String()
		}))
	podInformer := podFactory.Core().V1().Pods()
	nadFactory := nadinformers.NewSharedInformerFactory(nads, 0)
	nadInformer := nadFactory.K8sCniCncfIo().V1().NetworkAttachmentDefinitions()
	crdFactory := crdinformers.NewSharedInformerFactory(crds, 0)
	poolInformer := crdFactory.Crd().V1beta1().IPPools()

	pods := &objects.Pods{Client: kube, Lister: podInformer.Lister()}
	lookup := &objects.Networks{NADClient: nads, NADLister: nadInformer.Lister(), CRDClient: crds, PoolLister: poolInformer.Lister()}

	var allocator *ipam.Allocator
	if ipamOn {
		if allocator, err = ipam.NewAllocator(crds, poolInformer, ipam.Options{}); err != nil {
			return err
		}
	}

	var (
		ovsClient  *ovs.Client
		eng        *engine.Engine
		bridgeMgr  *bridge.Manager
		reconciler *reconcile.Reconciler
	)
	podDeleted := make(chan struct{}, 1)
	if secondary {
		br, ok := cfg.Bridge()
		if !ok {
			return errors.New("feature gate SecondaryNetwork is enabled but antrea-agent.conf names no secondaryNetwork.ovsBridges")
		}
		endpoint := o.OVSDBEndpoint
		if endpoint == "" {
			endpoint = "unix:" + filepath.Join(cfg.OVSRunDir, "db.sock")
		}
		nodeIPs, err := nodeAddresses(ctx, kube, o.NodeName)
		if err != nil {
			return err
		}
		ovsClient, err = ovs.Connect(ctx, endpoint, ovs.WithNodeIPs(nodeIPs...))
		if err != nil {
			return fmt.Errorf("connect to OVSDB at %s: %w", endpoint, err)
		}
		defer ovsClient.Close()
		nodeRef := &corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: o.NodeName, UID: ""}
		bridgeMgr = bridge.New(ovsClient, ovs.BridgeConfig{Name: br.BridgeName, DatapathType: string(cfg.OVSDatapathType)},
			br.PhysicalInterfaces, reporter.Recorder(), nodeRef)
		// The pool allocator is optional: networks without ipam work with AntreaIPAM off.
		var addrs engine.Addresses = noAddresses{}
		if allocator != nil {
			addrs = allocator
		}
		eng = engine.New(ovsClient, addrs, engine.Options{Bridge: br.BridgeName,
			DisableTXChecksum: cfg.OVSDatapathType == config.DatapathNetdev})
		reconciler = reconcile.New(br.BridgeName, ovsClient, eng, pods, reconcile.KernelLinkExists)
		bridgeMgr.OnReconnect(func() { notify(podDeleted) })
		if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			DeleteFunc: func(any) { notify(podDeleted) },
		}); err != nil {
			return err
		}
	} else {
		_ = podInformer.Informer() // registered so that Pods are found from the cache
	}
	_ = nadInformer.Informer()
	_ = poolInformer.Informer()

	podFactory.Start(ctx.Done())
	nadFactory.Start(ctx.Done())
	crdFactory.Start(ctx.Done())
	defer podFactory.Shutdown()
	defer crdFactory.Shutdown()

	var synced atomic.Bool
	var reconciled atomic.Bool
	ready := func() error {
		if !synced.Load() {
			return errors.New("antrea-agent is starting: caches not synced yet")
		}
		if !secondary {
			return nil
		}
		if !ovsClient.Connected() {
			return fmt.Errorf("antrea-agent is not connected to OVSDB at %s", ovsClient.Endpoint())
		}
		if err := bridgeMgr.Ready(); err != nil {
			return err
		}
		if !reconciled.Load() {
			return errors.New("antrea-agent is starting: reconciliation not done yet")
		}
		return nil
	}
	var handlerAddrs cnihandler.Addresses
	if allocator != nil {
		handlerAddrs = allocator
	}
	handler := cnihandler.New(cnihandler.Options{Gates: cfg.Gates, Engine: eng, Addrs: handlerAddrs,
		Pods: pods, Lookup: lookup, Reporter: reporter, Ready: ready})
	srv := server.New(cfg.CNISocket, handler)
	if err := srv.Start(); err != nil {
		return fmt.Errorf("serve CNI on %s: %w", cfg.CNISocket, err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), server.DefaultGracePeriod)
		defer cancel()
		srv.Stop(stopCtx)
	}()
	klog.InfoS("Serving CNI", "socket", cfg.CNISocket)

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
	synced.Store(true)

	if secondary {
		go bridgeMgr.Run(ctx)
		first := make(chan struct{})
		go reconciler.Run(ctx, o.ReconcileInterval, podDeleted, first)
		select {
		case <-first:
		case <-ctx.Done():
			return ctx.Err()
		}
		reconciled.Store(true)
	}
	if o.Ready != nil {
		go func() {
			for ready() != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			close(o.Ready)
		}()
	}
	<-ctx.Done()
	klog.InfoS("Stopping antrea-agent")
	return nil
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

// noAddresses serves networks without ipam when AntreaIPAM is off; the handler refuses pool
// references before the engine is reached, so these are never asked to allocate.
type noAddresses struct{}

func (noAddresses) Allocate(context.Context, ipam.Request) (*ipam.Result, error) {
	return nil, errors.New("feature gate AntreaIPAM is disabled")
}
func (noAddresses) Release(context.Context, ipam.Owner) error      { return nil }
func (noAddresses) ReleaseContainer(context.Context, string) error { return nil }
