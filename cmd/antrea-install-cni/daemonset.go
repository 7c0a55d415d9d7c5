package main

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// daemonSetStays looks the DaemonSet up and decides whether the agent is only restarting.
func daemonSetStays(ctx context.Context, ref, kubeconfig string) (bool, string, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return false, "", fmt.Errorf("--only-when-daemonset-deleted %q: want namespace/name", ref)
	}
	var rc *rest.Config
	var err error
	if kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return false, "", fmt.Errorf("client configuration: %w", err)
	}
	rc.UserAgent = "antrea-install-cni"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return false, "", fmt.Errorf("kubernetes client: %w", err)
	}
	ds, err := client.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
	stays, why := decideStays(ds, err)
	return stays, why, nil
}

// decideStays tells a restart (the DaemonSet is there and not being deleted) from an uninstall.
// Deleting the manifests also deletes the agent's ServiceAccount and RBAC, so a refusal counts as
// an uninstall too. Any other failure keeps the plugin installed: the Node's network configuration
// is changed only when the uninstall is certain, and the next agent Pod would chain it again anyway.
func decideStays(ds *appsv1.DaemonSet, err error) (bool, string) {
	switch {
	case err == nil && ds.DeletionTimestamp == nil:
		return true, "the DaemonSet still exists: only this Pod stops"
	case err == nil:
		return false, "the DaemonSet is being deleted"
	case apierrors.IsNotFound(err):
		return false, "the DaemonSet is gone"
	case apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err):
		return false, "the agent's credentials were revoked (its ServiceAccount or RBAC was deleted): " + err.Error()
	default:
		return true, "cannot tell whether the DaemonSet is being deleted: " + err.Error()
	}
}
