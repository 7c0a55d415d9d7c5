package podnetworks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/podstatus"
	"github.com/podvlan/podvlan/pkg/cni/netconf"
	"github.com/podvlan/podvlan/pkg/cni/selection"
	"github.com/podvlan/podvlan/pkg/config"
	"github.com/podvlan/podvlan/pkg/ovs"
)

// PlanResolver resolves annotation elements with the planner's rules, and gives each failure
// the condition reason users see.
type PlanResolver struct {
	Lookup plan.Lookup
	// IPAM says whether AntreaIPAM is on; without it a network that assigns addresses is refused.
	IPAM bool
}

// Resolve implements Resolver.
func (r *PlanResolver) Resolve(ctx context.Context, el selection.Element) (*plan.Attachment, bool, error) {
	key := el.NetworkKey()
	nad, err := r.Lookup.NAD(ctx, el.Namespace, el.Name)
	if apierrors.IsNotFound(err) {
		return nil, false, WithReason(ReasonNADNotFound, fmt.Errorf("network %s (element %d of %s): NetworkAttachmentDefinition %s not found",
			key, el.Index, selection.AnnotationKey, key))
	}
	if err != nil {
		return nil, false, WithReason(ReasonAgentUnavailable, fmt.Errorf("network %s: get NetworkAttachmentDefinition: %w", key, err))
	}
	network, ours, err := netconf.ParseNAD(el.Namespace, el.Name, nad.Spec.Config)
	if err != nil {
		return nil, false, WithReason(ReasonInvalidNetwork, err)
	}
	if !ours {
		return nil, true, nil
	}
	if network.IPAM != nil {
		for _, name := range network.IPAM.IPPools {
			if _, err := r.Lookup.IPPool(ctx, name); apierrors.IsNotFound(err) {
				return nil, false, WithReason(ReasonIPPoolNotFound, fmt.Errorf("network %s: ipam.ippools: IPPool %q not found", key, name))
			}
		}
	}
	n, err := plan.FromNetwork(ctx, network, r.Lookup)
	if err != nil {
		return nil, false, WithReason(ReasonInvalidNetwork, err)
	}
	n.IfName, n.MAC, n.DefaultRoute = el.Interface, el.MAC, el.DefaultRoute
	statics, err := plan.StaticAddresses(ctx, key, el.IPs, n.Pools, r.Lookup)
	if err != nil {
		return nil, false, WithReason(ReasonInvalidAnnotation, err)
	}
	n.Static = append(n.Static, statics...)
	if (len(n.Pools) > 0 || len(n.Static) > 0) && !r.IPAM {
		return nil, false, WithReason(ReasonGateDisabled, fmt.Errorf("network %s assigns addresses (ipam or ips): %w",
			key, config.GateDisabledError(config.AntreaIPAM, config.AgentFileName)))
	}
	return n, false, nil
}

// PortLister lists the secondary bridge's Pod ports (the OVS client does, from its cache).
type PortLister interface {
	ListPodPorts(ctx context.Context, bridge string) ([]ovs.PodPort, error)
}

// PortAttachments reads a sandbox's attachments from the owners its OVS ports record.
type PortAttachments struct {
	Ports  PortLister
	Bridge string
}

// Of implements Attachments.
func (p *PortAttachments) Of(ctx context.Context, containerID string) ([]Current, error) {
	ports, err := p.Ports.ListPodPorts(ctx, p.Bridge)
	if err != nil {
		return nil, fmt.Errorf("list the ports of container %s: %w", containerID, err)
	}
	var out []Current
	for _, port := range ports {
		if port.Owner.ContainerID != containerID {
			continue
		}
		out = append(out, Current{Identity: Identity{Network: port.Owner.Network, IfName: port.Owner.IfName},
			Port: port.Name, Addresses: port.Owner.Addresses, Status: port.NetworkStatus})
	}
	return out, nil
}

// APIStatus writes conditions with a status patch, and network-status and Events through the
// agent's Reporter.
type APIStatus struct {
	Client   kubernetes.Interface
	Reporter *podstatus.Reporter
	// Now is the clock of transition times; time.Now when nil.
	Now func() time.Time
}

// SetCondition implements Status. The patch is a strategic merge on the status subresource,
// which merges conditions by type, so the kubelet's and other writers' conditions stay as they
// are; the UID in the patch makes it fail rather than touch a Pod recreated under the same name.
func (s *APIStatus) SetCondition(ctx context.Context, pod *corev1.Pod, c corev1.PodCondition) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	c.LastTransitionTime = metav1.NewTime(now())
	if have := FindCondition(pod, c.Type); have != nil && have.Status == c.Status {
		c.LastTransitionTime = have.LastTransitionTime
	}
	patch, err := conditionPatch(pod.UID, c)
	if err != nil {
		return err
	}
	_, err = s.Client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, k8stypes.StrategicMergePatchType, patch,
		metav1.PatchOptions{}, "status")
	return err
}

// conditionPatch is the strategic merge patch that sets one condition.
func conditionPatch(uid k8stypes.UID, c corev1.PodCondition) ([]byte, error) {
	return json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": uid},
		"status":   map[string]any{"conditions": []corev1.PodCondition{c}},
	})
}

// SetNetworkStatus implements Status.
func (s *APIStatus) SetNetworkStatus(ctx context.Context, pod podstatus.PodRef, managed []string, ours []nadv1.NetworkStatus) error {
	return s.Reporter.SetNetworkStatus(ctx, pod, managed, ours)
}

// Event implements Status.
func (s *APIStatus) Event(pod *corev1.Pod, eventType, reason, message string) {
	s.recorder().Event(pod, eventType, reason, message)
}

func (s *APIStatus) recorder() record.EventRecorder { return s.Reporter.Recorder() }
