// Command antrea-install-cni puts the antrea CNI plugin on the Node it runs on: it copies the
// `antrea` shim into the CNI bin directory and chains {"type": "antrea"} as the last plugin of the
// Node's primary CNI configuration list (see pkg/cniinstall for which file and how). With
// --uninstall it takes both away again, limited by --only-when-daemonset-deleted to a DaemonSet
// that is gone.
//
// The antrea-agent DaemonSet runs it as its init container with --binary-only: the chain itself
// is the agent's job (pkg/agent/chain), which chains only while SecondaryNetwork is on, chains
// again when the primary plugin rewrites its file, and unchains on uninstall. The full install and
// uninstall are for Nodes managed by hand (docs/getting-started.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/cniinstall"
	"github.com/podvlan/podvlan/pkg/config"
)

// apiTimeout bounds the DaemonSet lookup of a preStop hook, which runs within the Pod's grace period.
const apiTimeout = 5 * time.Second

type options struct {
	confDir      string
	binDir       string
	pluginBinary string
	cniSocket    string
	agentConfig  string
	uninstall    bool
	binaryOnly   bool
	onlyDeleted  string
	kubeconfig   string
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.confDir, "cni-conf-dir", "/host/etc/cni/net.d", "the Node's CNI configuration directory, as mounted")
	fs.StringVar(&o.binDir, "cni-bin-dir", "/host/opt/cni/bin", "the Node's CNI plugin directory, as mounted")
	fs.StringVar(&o.pluginBinary, "plugin-binary", "/usr/local/bin/antrea", "the antrea CNI shim to copy into --cni-bin-dir")
	fs.StringVar(&o.agentConfig, "agent-config", "",
		"antrea-agent.conf to take cniSocket from (the agent's socket, written into the chained entry when not the default)")
	fs.StringVar(&o.cniSocket, "cni-socket", "", "the agent's CNI socket; overrides --agent-config (default "+config.DefaultCNISocket+")")
	fs.BoolVar(&o.uninstall, "uninstall", false, "remove the chained entry and the binary instead of installing them")
	fs.BoolVar(&o.binaryOnly, "binary-only", false,
		"install the binary only and leave the CNI configuration alone (the agent keeps the chain); what the DaemonSet does")
	fs.StringVar(&o.onlyDeleted, "only-when-daemonset-deleted", "",
		"with --uninstall: namespace/name of the agent's DaemonSet; uninstall only when it is gone or being deleted, "+
			"not when just this Pod stops (a rollout, a restart)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig for --only-when-daemonset-deleted; empty means in-cluster")
}

func main() {
	klog.InitFlags(nil)
	var o options
	o.addFlags(flag.CommandLine)
	flag.Parse()
	if err := run(&o); err != nil {
		klog.ErrorS(err, "antrea-install-cni failed")
		klog.Flush()
		fmt.Fprintln(os.Stderr, "antrea-install-cni:", err)
		os.Exit(1)
	}
	klog.Flush()
}

func run(o *options) error {
	if o.onlyDeleted != "" && !o.uninstall {
		return errors.New("--only-when-daemonset-deleted needs --uninstall")
	}
	if o.binaryOnly && o.uninstall {
		return errors.New("--binary-only installs; it cannot be combined with --uninstall")
	}
	if o.binaryOnly {
		_, err := cniinstall.InstallBinary(cniinstall.Options{BinDir: o.binDir, PluginBinary: o.pluginBinary})
		return err
	}
	opts := cniinstall.Options{ConfDir: o.confDir, BinDir: o.binDir, PluginBinary: o.pluginBinary}
	socket := o.cniSocket
	if socket == "" && o.agentConfig != "" {
		cfg, err := config.LoadAgentFile(o.agentConfig)
		if err != nil {
			// The socket is all that is needed here: take it as a degraded agent would.
			klog.ErrorS(err, "Using the CNI socket of a degraded agent")
			data, _ := os.ReadFile(o.agentConfig)
			cfg = config.DegradedAgent(data)
		}
		socket = cfg.CNISocket
	}
	if socket != config.DefaultCNISocket {
		opts.CNISocket = socket
	}
	if !o.uninstall {
		_, err := cniinstall.Install(opts)
		return err
	}
	if o.onlyDeleted != "" {
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		defer cancel()
		gone, why, err := uninstalling(ctx, o.onlyDeleted, o.kubeconfig)
		if err != nil {
			return err
		}
		if !gone {
			klog.InfoS("Keeping the antrea CNI plugin installed", "daemonSet", o.onlyDeleted, "reason", why)
			return nil
		}
		klog.InfoS("Uninstalling the antrea CNI plugin", "daemonSet", o.onlyDeleted, "reason", why)
	}
	_, err := cniinstall.Uninstall(opts)
	return err
}
