package podnetworks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/podvlan/podvlan/pkg/ipam"
	"github.com/podvlan/podvlan/pkg/ovs"
)

// ConditionType is the Pod condition this agent keeps on Pods that ask for secondary networks.
// It can be listed in a Pod's spec.readinessGates, so that the Pod is Ready only once its
// secondary networks are.
const ConditionType corev1.PodConditionType = "podvlan.io/SecondaryNetworksReady"

// Reasons of the condition, documented for users in docs/running-pods.md.
const (
	// ReasonAttached: every network of this agent that the annotation asks for is attached.
	ReasonAttached = "Attached"
	// ReasonNoNetworks: the annotation asks for none of this agent's networks (any more).
	ReasonNoNetworks = "NoSecondaryNetworks"
	// ReasonChangeNotApplied: the interfaces the Pod has are attached and ready, but a later
	// change of the annotation is not applied because SecondaryNetworkHotplug is off. The
	// condition stays True: the Pod's networks work as they did, and an ignored edit must not
	// take the Pod out of its Services.
	ReasonChangeNotApplied = "ChangeNotApplied"

	ReasonNADNotFound       = "NetworkAttachmentDefinitionNotFound"
	ReasonIPPoolNotFound    = "IPPoolNotFound"
	ReasonIPPoolExhausted   = "IPPoolExhausted"
	ReasonInvalidAnnotation = "InvalidAnnotation"
	ReasonInvalidNetwork    = "InvalidNetworkConfig"
	ReasonGateDisabled      = "FeatureGateDisabled"
	ReasonAgentUnavailable  = "AgentUnavailable"
	ReasonAttachFailed      = "AttachFailed"
	ReasonDetachFailed      = "DetachFailed"
)

// Event reasons of this controller, besides podstatus's NetworkAttached and NetworkAttachFailed.
const (
	EventDetached         = "NetworkDetached"
	EventChangeNotApplied = "NetworkChangeNotApplied"
)

// ReasonError is an error with the condition reason that describes it.
type ReasonError struct {
	Reason string
	Err    error
}

func (e *ReasonError) Error() string { return e.Err.Error() }

func (e *ReasonError) Unwrap() error { return e.Err }

// WithReason marks err with a condition reason.
func WithReason(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &ReasonError{Reason: reason, Err: err}
}

// ReasonOf names the condition reason for an error: an explicit one, or one read from the error
// types of the allocator and the OVS client; otherwise fallback.
func ReasonOf(err error, fallback string) string {
	var r *ReasonError
	var exhausted *ipam.PoolExhaustedError
	var noPool *ipam.PoolNotFoundError
	switch {
	case errors.As(err, &r):
		return r.Reason
	case errors.As(err, &exhausted):
		return ReasonIPPoolExhausted
	case errors.As(err, &noPool):
		return ReasonIPPoolNotFound
	case errors.Is(err, ovs.ErrNotConnected), errors.Is(err, context.DeadlineExceeded):
		return ReasonAgentUnavailable
	}
	return fallback
}

// Outcome is what a sync of one Pod found and did, from which its condition follows.
type Outcome struct {
	// Attached are the Pod's attachments after the sync, as identities.
	Attached []Identity
	// Refused is the change hot-plug being off kept from being applied.
	Refused *Change
	// Failed is the first reason the annotation is not fully applied, nil when it is.
	Failed error
	// FailedReason is Failed's condition reason.
	FailedReason string
}

// Condition returns the Pod condition an outcome stands for (without transition time).
func (o Outcome) Condition() corev1.PodCondition {
	c := corev1.PodCondition{Type: ConditionType}
	switch {
	case o.Failed != nil:
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, o.FailedReason, o.Failed.Error()
	case o.Refused != nil:
		c.Status, c.Reason = corev1.ConditionTrue, ReasonChangeNotApplied
		c.Message = fmt.Sprintf("%s; the change of the annotation (%s) is not applied: feature gate SecondaryNetworkHotplug is disabled",
			describeAttached(o.Attached), o.Refused)
	case len(o.Attached) == 0:
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, ReasonNoNetworks, "the Pod asks for no secondary network of this agent"
	default:
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, ReasonAttached, describeAttached(o.Attached)
	}
	return c
}

func describeAttached(ids []Identity) string {
	if len(ids) == 0 {
		return "no secondary network attached"
	}
	return "attached " + joinIdentities(ids)
}

// FindCondition returns the Pod's condition of type t, if any.
func FindCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// SameCondition reports whether two conditions say the same (times aside).
func SameCondition(a, b corev1.PodCondition) bool {
	return a.Type == b.Type && a.Status == b.Status && a.Reason == b.Reason && a.Message == b.Message
}

// hasReadinessGate reports whether the Pod waits for the condition to be Ready.
func hasReadinessGate(pod *corev1.Pod) bool {
	for _, g := range pod.Spec.ReadinessGates {
		if g.ConditionType == ConditionType {
			return true
		}
	}
	return false
}

// firstLine keeps Event and condition messages readable when an error joins several.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " (and more)"
	}
	return s
}
