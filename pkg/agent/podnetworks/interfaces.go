package podnetworks

import (
	"context"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/podvlan/podvlan/pkg/agent/engine"
	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/podstatus"
	"github.com/podvlan/podvlan/pkg/cni/selection"
)

// Sandbox is a Pod's current sandbox as the CNI shim recorded it.
type Sandbox struct {
	ContainerID string
	// NetNS is the path of the sandbox's network namespace.
	NetNS string
	// Chained says the record was written by the chained call, after the Pod's primary network:
	// this agent is in the Pod's CNI chain. A sandbox only Multus delegates reached has its
	// networks from Multus, which applies the annotation only when the sandbox is created.
	Chained bool
	// Added is when the shim recorded the sandbox, which it does before forwarding the ADD.
	Added time.Time
}

// Sandboxes finds the newest live sandbox of a Pod on this Node. Its ADD may still be running:
// the controller checks that with ADDs and SettleTime before it acts.
type Sandboxes interface {
	Lookup(podUID k8stypes.UID) (Sandbox, bool)
}

// InFlight says whether a CNI ADD of the container is being served (ADDs implements it).
type InFlight interface {
	Busy(containerID string) bool
}

// Attachments reads what a sandbox has now.
type Attachments interface {
	// Of returns the attachments of the sandbox with that container ID.
	Of(ctx context.Context, containerID string) ([]Current, error)
}

// Attacher attaches networks to a sandbox and detaches single interfaces from it. Attach is all
// or nothing; both are idempotent and serialized per container ID with the CNI verbs.
type Attacher interface {
	Attach(ctx context.Context, sb plan.Sandbox, networks []plan.Attachment) ([]engine.Attached, error)
	DetachInterfaces(ctx context.Context, sb plan.Sandbox, ifNames ...string) error
}

// Resolver plans one annotation element: its NetworkAttachmentDefinition, IPPools and the
// contract's rules. It returns Foreign for another plugin's network, and an error with a
// condition reason (see WithReason) when the element cannot be attached now.
type Resolver interface {
	Resolve(ctx context.Context, element selection.Element) (network *plan.Attachment, foreign bool, err error)
}

// Status writes what users see on the Pod.
type Status interface {
	// SetCondition sets the Pod's condition of c.Type (the transition time is the writer's).
	SetCondition(ctx context.Context, pod *corev1.Pod, c corev1.PodCondition) error
	// SetNetworkStatus replaces this agent's network-status entries: those of managed interfaces
	// and of ours.
	SetNetworkStatus(ctx context.Context, pod podstatus.PodRef, managed []string, ours []nadv1.NetworkStatus) error
	// Event records an Event on the Pod.
	Event(pod *corev1.Pod, eventType, reason, message string)
}
