package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podvlan/podvlan/pkg/agent/chain"
	"github.com/podvlan/podvlan/pkg/config"
)

type options struct {
	configFile        string
	nodeName          string
	kubeconfig        string
	ovsdbEndpoint     string
	cniSocket         string
	reconcileInterval time.Duration
	metricsAddress    string
	cniConfDir        string
	cniBinDir         string
	daemonSet         string
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.configFile, "config", "/etc/antrea/antrea-agent.conf", "path of antrea-agent.conf (the antrea-config ConfigMap key)")
	fs.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "name of this Node (default $NODE_NAME)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; overrides clientConnection.kubeconfig; empty means in-cluster")
	fs.StringVar(&o.ovsdbEndpoint, "ovsdb", "", "OVSDB endpoint such as unix:/path/db.sock; default unix:<ovsRunDir>/db.sock")
	fs.StringVar(&o.cniSocket, "cni-socket", "", "where to serve the CNI shim; overrides cniSocket")
	fs.DurationVar(&o.reconcileInterval, "reconcile-interval", time.Minute, "period of the sweep that removes attachments of vanished sandboxes")
	fs.StringVar(&o.metricsAddress, "metrics-bind-address", "127.0.0.1:10351",
		"host:port serving /metrics, /healthz and the probes' /livez and /readyz over plain HTTP; empty disables")
	fs.StringVar(&o.cniConfDir, "cni-conf-dir", "",
		"the Node's CNI configuration directory, as mounted: the agent keeps antrea chained in its primary configuration "+
			"while SecondaryNetwork is on (or the configuration is invalid) and out of it while it is off; empty leaves it alone")
	fs.StringVar(&o.cniBinDir, "cni-bin-dir", "", "the Node's CNI plugin directory, as mounted, whose antrea binary an uninstall removes")
	fs.StringVar(&o.daemonSet, "daemonset", "",
		"namespace/name of the agent's own DaemonSet: when it is gone or being deleted as the agent stops, the agent takes "+
			"antrea off the Node (uninstall); an ordinary stop (restart, rollout) leaves it chained; empty never unchains on stop")
}

// load reads and validates antrea-agent.conf and applies the flags that override it. A file that
// does not load is not fatal: it is returned as configErr with config.DegradedAgent's
// configuration, so that the agent keeps serving the Node's Pods rather than crash-looping.
func (o *options) load() (cfg *config.Agent, configErr error, rc *rest.Config, err error) {
	if o.nodeName == "" {
		return nil, nil, nil, errors.New("--node-name (or $NODE_NAME) is required")
	}
	if o.daemonSet != "" {
		if _, _, err := chain.ParseDaemonSetRef(o.daemonSet); err != nil {
			return nil, nil, nil, fmt.Errorf("--daemonset: %w", err)
		}
	}
	cfg, configErr = config.LoadAgentFile(o.configFile)
	if configErr != nil {
		data, _ := os.ReadFile(o.configFile)
		cfg = config.DegradedAgent(data)
	}
	if o.cniSocket != "" {
		cfg.CNISocket = o.cniSocket
	}
	kubeconfig := cfg.ClientConnection.Kubeconfig
	if o.kubeconfig != "" {
		kubeconfig = o.kubeconfig
	}
	if kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("client configuration: %w", err)
	}
	rc.UserAgent = "antrea-agent/" + o.nodeName
	// Bursts of CNI ADDs (a kubelet restart) read and write Pods, IPPools and Events at once.
	rc.QPS, rc.Burst = 50, 100
	return cfg, configErr, rc, nil
}
