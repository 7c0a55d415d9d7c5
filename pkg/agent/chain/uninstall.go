package chain

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ParseDaemonSetRef splits "namespace/name".
func ParseDaemonSetRef(ref string) (namespace, name string, err error) {
	ns, n, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || n == "" || strings.Contains(n, "/") {
		return "", "", fmt.Errorf("DaemonSet %q: want namespace/name", ref)
	}
	return ns, n, nil
}

// Uninstalling looks up the agent's DaemonSet (namespace/name) and tells an uninstall (true) from
// a restart, with the reason.
func Uninstalling(ctx context.Context, client kubernetes.Interface, ref string) (bool, string, error) {
	ns, name, err := ParseDaemonSetRef(ref)
	if err != nil {
		return false, "", err
	}
	ds, err := client.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
	uninstalling, why := DecideUninstalling(ds, err)
	return uninstalling, why, nil
}

// DecideUninstalling tells an uninstall from a restart when the agent stops: the DaemonSet gone
// or being deleted is an uninstall, one that is there is a restart (a rollout, a crash, a Node
// reboot). Deleting the manifests also deletes the agent's ServiceAccount and RBAC, so credentials
// refused count as an uninstall too. Any other failure (the API server unreachable) is taken as a
// restart: the Node's network configuration is changed only when the uninstall is certain, and
// an entry left behind by mistake is taken out by the next agent that starts with
// SecondaryNetwork off, or by hand (docs/getting-started.md).
func DecideUninstalling(ds *appsv1.DaemonSet, err error) (bool, string) {
	switch {
	case err == nil && ds.DeletionTimestamp == nil:
		return false, "the DaemonSet still exists: only this Pod stops"
	case err == nil:
		return true, "the DaemonSet is being deleted"
	case apierrors.IsNotFound(err):
		return true, "the DaemonSet is gone"
	case apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err):
		return true, "the agent's credentials were revoked (its ServiceAccount or RBAC was deleted): " + err.Error()
	default:
		return false, "cannot tell whether the DaemonSet is being deleted: " + err.Error()
	}
}
