// Command antrea-install-cni puts the antrea CNI plugin on the Node it runs on, as the init
// container of the antrea-agent DaemonSet: it copies the `antrea` shim into the CNI bin directory
// and chains {"type": "antrea"} as the last plugin of the Node's primary CNI configuration list
// (see pkg/cniinstall for which file and how). With --uninstall it takes both away again; the
// DaemonSet runs that as the agent's preStop hook, limited by --only-when-daemonset-deleted to
// the agent's last stop, so that a restart of the agent does not unchain it.
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
	"github.com/podvlan/podvlan/pkg/version"
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
	fs.StringVar(&o.onlyDeleted, "only-when-daemonset-deleted", "",
		"with --uninstall: namespace/name of the agent's DaemonSet; uninstall only when it is gone or being deleted, "+
			"not when just this Pod stops (a rollout, a restart)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig for --only-when-daemonset-deleted; empty means in-cluster")
}

func main() {
	klog.InitFlags(nil)
	var o options
	o.addFlags(flag.CommandLine)
	printVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *printVersion {
		fmt.Println(version.Get().String("antrea-install-cni"))
		return
	}
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
	opts := cniinstall.Options{ConfDir: o.confDir, BinDir: o.binDir, PluginBinary: o.pluginBinary}
	socket := o.cniSocket
	if socket == "" && o.agentConfig != "" {
		cfg, err := config.LoadAgentFile(o.agentConfig)
		if err != nil {
			return err
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
		stays, why, err := daemonSetStays(ctx, o.onlyDeleted, o.kubeconfig)
		if err != nil {
			return err
		}
		if stays {
			klog.InfoS("Keeping the antrea CNI plugin installed", "daemonSet", o.onlyDeleted, "reason", why)
			return nil
		}
		klog.InfoS("Uninstalling the antrea CNI plugin", "daemonSet", o.onlyDeleted, "reason", why)
	}
	_, err := cniinstall.Uninstall(opts)
	return err
}
