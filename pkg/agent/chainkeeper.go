package agent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/agent/chain"
	"github.com/podvlan/podvlan/pkg/config"
)

// uninstallTimeout bounds the DaemonSet lookup and the unchaining when the agent stops, within
// the Pod's termination grace period.
const uninstallTimeout = 5 * time.Second

// keepChain starts the chain keeper on the Node's CNI configuration directory. The returned
// function stops it and, when the agent is stopping (ctx ended) because its DaemonSet is gone or
// being deleted, takes antrea off the Node; on any other stop (a restart, a rollout) the chain
// stays, so that Pods created meanwhile still get their networks.
func (a *agent) keepChain(ctx context.Context, nodeRef *corev1.ObjectReference) func() {
	cfg := a.o.Config
	want := chain.Want{Chained: false, Why: "feature gate " + string(config.SecondaryNetwork) + " is off"}
	switch {
	case a.o.ConfigError != nil:
		want = chain.Want{Chained: true, Why: config.AgentFileName + " is invalid: Pods that ask for secondary networks get its error"}
	case cfg.Gates.Enabled(config.SecondaryNetwork):
		want = chain.Want{Chained: true, Why: "feature gate " + string(config.SecondaryNetwork) + " is on"}
	}
	socket := ""
	if cfg.CNISocket != config.DefaultCNISocket {
		socket = cfg.CNISocket
	}
	keeper := chain.New(chain.Options{ConfDir: a.o.CNIConfDir, CNISocket: socket, Want: want,
		Recorder: a.reporter.Recorder(), Node: nodeRef, Metrics: a.metrics})
	keeperCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		keeper.Run(keeperCtx)
	}()
	klog.InfoS("Keeping the CNI chain", "dir", a.o.CNIConfDir, "chained", want.Chained, "why", want.Why)
	return func() {
		stop()
		<-done
		if ctx.Err() == nil || a.o.DaemonSet == "" {
			return
		}
		uctx, cancel := context.WithTimeout(context.Background(), uninstallTimeout)
		defer cancel()
		uninstalling, why, err := chain.Uninstalling(uctx, a.kube, a.o.DaemonSet)
		if err != nil {
			klog.ErrorS(err, "Cannot tell an uninstall from a restart; leaving antrea chained")
			return
		}
		if !uninstalling {
			klog.InfoS("Leaving antrea chained", "daemonSet", a.o.DaemonSet, "reason", why)
			return
		}
		klog.InfoS("Uninstalling the antrea CNI plugin from this Node", "daemonSet", a.o.DaemonSet, "reason", why)
		if err := keeper.Uninstall(a.o.CNIBinDir); err != nil {
			klog.ErrorS(err, "Uninstalling the antrea CNI plugin", "dir", a.o.CNIConfDir)
		}
	}
}
