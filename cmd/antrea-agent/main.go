// Command antrea-agent attaches VLAN secondary networks to the Pods of its Node.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/agent"
)

func main() {
	klog.InitFlags(nil)
	var o options
	o.addFlags(flag.CommandLine)
	flag.Parse()
	if err := run(&o); err != nil {
		fmt.Fprintln(os.Stderr, "antrea-agent:", err)
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func run(o *options) error {
	cfg, configErr, rc, err := o.load()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return agent.Run(ctx, agent.Options{Config: cfg, NodeName: o.nodeName, RestConfig: rc,
		OVSDBEndpoint: o.ovsdbEndpoint, ReconcileInterval: o.reconcileInterval, MetricsAddress: o.metricsAddress,
		ConfigError: configErr, CNIConfDir: o.cniConfDir, CNIBinDir: o.cniBinDir, DaemonSet: o.daemonSet})
}
