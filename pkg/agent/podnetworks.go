package agent

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/podvlan/podvlan/pkg/agent/engine"
	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/podnetworks"
	"github.com/podvlan/podvlan/pkg/agent/sandboxes"
	"github.com/podvlan/podvlan/pkg/cni/selection"
	"github.com/podvlan/podvlan/pkg/config"
)

// podNetworksInputs are what the running-Pods controller needs from Run, kept until the engine
// exists (once OVSDB is connected).
type podNetworksInputs struct {
	lookup plan.Lookup
	// client writes conditions and network-status, with the Reporter's rate limit.
	client   kubernetes.Interface
	pods     cache.SharedIndexInformer
	networks []cache.SharedIndexInformer // NetworkAttachmentDefinitions and IPPools
}

// startPodNetworks runs the controller that applies running Pods' annotation changes (see
// package podnetworks) through eng, reading attachments from the ports on bridge.
func (a *agent) startPodNetworks(ctx context.Context, eng *engine.Engine, ports podnetworks.PortLister, bridge string) error {
	cfg := a.o.Config
	in := a.podNetworks
	c := podnetworks.New(podnetworks.Options{
		Pods:        a.pods.Lister,
		Sandboxes:   recordedSandboxes{a.sandboxes},
		ADDs:        a.adds,
		Attachments: &podnetworks.PortAttachments{Ports: ports, Bridge: bridge},
		Attacher:    eng,
		Resolver:    &podnetworks.PlanResolver{Lookup: in.lookup, IPAM: cfg.Gates.Enabled(config.AntreaIPAM)},
		Status:      &podnetworks.APIStatus{Client: in.client, Reporter: a.reporter},
		Hotplug:     cfg.Gates.Enabled(config.SecondaryNetworkHotplug),
		Ready:       a.ready,
	})
	if _, err := in.pods.AddEventHandler(c.PodHandler()); err != nil {
		return fmt.Errorf("watch Pods for their networks: %w", err)
	}
	// A network created or whose spec changed may be what a Pod waits for.
	changed := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.NetworksChanged() },
		UpdateFunc: func(old, cur any) {
			o, err1 := meta.Accessor(old)
			n, err2 := meta.Accessor(cur)
			if err1 != nil || err2 != nil || o.GetGeneration() != n.GetGeneration() {
				c.NetworksChanged()
			}
		},
	}
	for _, inf := range in.networks {
		if _, err := inf.AddEventHandler(changed); err != nil {
			return fmt.Errorf("watch networks for Pods waiting for them: %w", err)
		}
	}
	go c.Run(ctx, a.o.ReconcileInterval)
	return nil
}

// recordedSandboxes finds running Pods' sandboxes in the records of the CNI shim.
type recordedSandboxes struct{ store *sandboxes.Store }

func (r recordedSandboxes) Lookup(uid k8stypes.UID) (podnetworks.Sandbox, bool) {
	sb, ok := r.store.Lookup(string(uid))
	// The chained call records the Pod's primary interface; a Multus delegate records its own.
	return podnetworks.Sandbox{ContainerID: sb.ContainerID, NetNS: sb.Netns, Added: sb.Added,
		Chained: sb.IfName == selection.PrimaryInterface}, ok
}
