// Package podstatus tells users what happened to their Pod's secondary networks where they look:
// Pod Events and the k8s.v1.cni.cncf.io/network-status annotation.
package podstatus

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// Event reasons, documented for users in docs/troubleshooting.md.
const (
	ReasonAttachFailed = "NetworkAttachFailed"
	ReasonAttached     = "NetworkAttached"
	ReasonDetachFailed = "NetworkDetachFailed"
)

// Reporter writes Events and the network-status annotation for one agent.
type Reporter struct {
	client      kubernetes.Interface
	recorder    record.EventRecorder
	broadcaster record.EventBroadcaster
	statuses    *statusQueue
}

// NewReporter returns a Reporter whose Events name the agent of nodeName as their source.
func NewReporter(client kubernetes.Interface, nodeName string) *Reporter {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	r := &Reporter{
		client:      client,
		broadcaster: b,
		recorder:    b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "antrea-agent", Host: nodeName}),
	}
	r.statuses = newStatusQueue(func(ctx context.Context, pod PodRef, ours []nadv1.NetworkStatus) error {
		return r.SetNetworkStatus(ctx, pod, nil, ours)
	}, r.warn, 50*time.Millisecond, 10*time.Second)
	r.statuses.start(statusWorkers)
	return r
}

// statusWorkers write network-status for different Pods at the same time.
const statusWorkers = 4

// Recorder returns the agent's Event recorder, for Events about other objects (the Node).
func (r *Reporter) Recorder() record.EventRecorder { return r.recorder }

// Shutdown writes the queued network-status annotations (for a few seconds at most), then
// flushes and stops the Event pipeline.
func (r *Reporter) Shutdown() {
	r.statuses.stop(5 * time.Second)
	r.broadcaster.Shutdown()
}

// PodRef identifies the Pod an event or annotation is about.
type PodRef struct {
	Namespace string
	Name      string
	UID       k8stypes.UID
}

func (p PodRef) object() *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: p.Namespace, Name: p.Name, UID: p.UID}
}

// AttachFailed records a Warning Event whose message is the user-facing error.
func (r *Reporter) AttachFailed(pod PodRef, err error) {
	r.recorder.Event(pod.object(), corev1.EventTypeWarning, ReasonAttachFailed, err.Error())
}

// Attached records a Normal Event listing what was attached.
func (r *Reporter) Attached(pod PodRef, message string) {
	r.recorder.Event(pod.object(), corev1.EventTypeNormal, ReasonAttached, message)
}

// DetachFailed records a Warning Event for a detach that will be retried by reconciliation.
func (r *Reporter) DetachFailed(pod PodRef, err error) {
	r.recorder.Event(pod.object(), corev1.EventTypeWarning, ReasonDetachFailed, err.Error())
}

// SetNetworkStatus replaces this agent's entries of the Pod's network-status annotation by ours,
// keeping entries of other writers (Multus, other plugins). An entry is this agent's when its
// interface is one of managedIfNames. The write is a patch guarded by the resourceVersion it was
// computed from, retried on conflict; a Pod that is gone or was recreated (other UID) is left alone.
func (r *Reporter) SetNetworkStatus(ctx context.Context, pod PodRef, managedIfNames []string, ours []nadv1.NetworkStatus) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := r.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.UID != "" && current.UID != pod.UID {
			return nil
		}
		value, changed, err := MergeNetworkStatus(current.Annotations[nadv1.NetworkStatusAnnot], managedIfNames, ours)
		if err != nil || !changed {
			return err
		}
		var annotation any = value
		if value == "" {
			annotation = nil // a JSON merge patch removes a key set to null
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": current.ResourceVersion,
			"annotations":     map[string]any{nadv1.NetworkStatusAnnot: annotation},
		}})
		if err != nil {
			return err
		}
		_, err = r.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, k8stypes.MergePatchType, patch, metav1.PatchOptions{}, "status")
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write %s of Pod %s/%s: %w", nadv1.NetworkStatusAnnot, pod.Namespace, pod.Name, err)
	}
	klog.V(2).InfoS("Wrote network-status", "pod", klog.KRef(pod.Namespace, pod.Name), "entries", len(ours))
	return nil
}

// statusEntry is an entry of network-status as this agent writes it. The contract asks for
// `"default": false`, which the library's type omits (omitempty); the outer field wins.
type statusEntry struct {
	nadv1.NetworkStatus
	Default bool `json:"default"`
}

// MergeNetworkStatus returns the annotation value with the entries of managedIfNames replaced by
// ours, and whether it differs from current. Other writers' entries are kept as they are, fields
// this agent does not know included. An unparsable current value is replaced: it cannot be
// anybody's valid state. An empty result means the annotation should be removed.
func MergeNetworkStatus(current string, managedIfNames []string, ours []nadv1.NetworkStatus) (string, bool, error) {
	var existing []json.RawMessage
	if current != "" {
		if err := json.Unmarshal([]byte(current), &existing); err != nil {
			existing = nil
		}
	}
	managed := make(map[string]bool, len(managedIfNames)+len(ours))
	for _, name := range managedIfNames {
		managed[name] = true
	}
	for _, s := range ours {
		managed[s.Interface] = true
	}
	merged := make([]any, 0, len(existing)+len(ours))
	for _, raw := range existing {
		var entry struct {
			Interface string `json:"interface"`
		}
		if err := json.Unmarshal(raw, &entry); err != nil || !managed[entry.Interface] {
			merged = append(merged, raw)
		}
	}
	for _, s := range ours {
		merged = append(merged, statusEntry{NetworkStatus: s, Default: s.Default})
	}
	if len(merged) == 0 {
		return "", current != "", nil
	}
	data, err := json.MarshalIndent(merged, "", "    ")
	if err != nil {
		return "", false, fmt.Errorf("encode network-status: %w", err)
	}
	return string(data), string(data) != current, nil
}

// HasEntries reports whether the annotation value current holds every entry of ours, in any
// order.
func HasEntries(current string, ours []nadv1.NetworkStatus) bool {
	var existing []nadv1.NetworkStatus
	if current != "" {
		if err := json.Unmarshal([]byte(current), &existing); err != nil {
			return false
		}
	}
	for _, want := range ours {
		if !slices.ContainsFunc(existing, func(have nadv1.NetworkStatus) bool { return reflect.DeepEqual(have, want) }) {
			return false
		}
	}
	return true
}
