package main

import (
	"context"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podvlan/podvlan/pkg/agent/chain"
)

// uninstalling looks the agent's DaemonSet up and tells an uninstall from a restart, as the agent
// itself does when it stops (chain.DecideUninstalling).
func uninstalling(ctx context.Context, ref, kubeconfig string) (bool, string, error) {
	if _, _, err := chain.ParseDaemonSetRef(ref); err != nil {
		return false, "", fmt.Errorf("--only-when-daemonset-deleted: %w", err)
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
	return chain.Uninstalling(ctx, client, ref)
}
