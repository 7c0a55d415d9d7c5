package ippoolgc

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// JudgeOwner decides whether an allocation's owner is gone. pod is the Pod of the owner's
// namespace/name, nil when there is none. The reason says why, for logs.
func JudgeOwner(owner *v1beta1.PodOwner, pod *corev1.Pod) (orphan bool, reason string) {
	switch {
	case owner == nil:
		return false, "no Pod owner recorded"
	case pod == nil:
		return true, "the Pod no longer exists"
	case owner.UID != "" && types.UID(owner.UID) != pod.UID:
		return true, fmt.Sprintf("the Pod was recreated under the same name (UID %s, allocation made for UID %s)", pod.UID, owner.UID)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return true, fmt.Sprintf("the Pod has terminated (phase %s)", pod.Status.Phase)
	default:
		return false, "the Pod is live"
	}
}

// Key identifies one entry of one pool's status.ipAddresses, with everything that was judged: an
// entry is released only while it is still recorded exactly so.
type Key struct {
	Pool        string
	IP          string
	Namespace   string
	Name        string
	UID         string
	ContainerID string
	IFName      string
}

// KeyOf is the key of a status entry with a Pod owner.
func KeyOf(pool string, entry *v1beta1.IPAddressState) (Key, bool) {
	o := entry.Owner.Pod
	if o == nil {
		return Key{}, false
	}
	return Key{Pool: pool, IP: entry.IPAddress, Namespace: o.Namespace, Name: o.Name, UID: o.UID,
		ContainerID: o.ContainerID, IFName: o.IFName}, true
}

// WithoutEntries returns pool's status with the entries of keys removed and the usage recounted,
// and the entries removed.
func WithoutEntries(pool *v1beta1.IPPool, keys map[Key]bool) (v1beta1.IPPoolStatus, []v1beta1.IPAddressState) {
	status := v1beta1.IPPoolStatus{Usage: pool.Status.Usage}
	var removed []v1beta1.IPAddressState
	for i := range pool.Status.IPAddresses {
		entry := pool.Status.IPAddresses[i]
		if k, ok := KeyOf(pool.Name, &entry); ok && keys[k] {
			removed = append(removed, entry)
			continue
		}
		status.IPAddresses = append(status.IPAddresses, entry)
	}
	status.Usage.Used = len(status.IPAddresses) + status.Usage.InBlocks
	return status, removed
}
