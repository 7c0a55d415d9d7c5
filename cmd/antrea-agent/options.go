package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podvlan/podvlan/pkg/config"
)

// DefaultMetricsAddress serves the metrics on every address of the Node (the agent uses the
// host network), so that Prometheus scrapes them at the Node's address without extra settings.
const DefaultMetricsAddress = ":10351"

type options struct {
	configFile        string
	nodeName          string
	kubeconfig        string
	ovsdbEndpoint     string
	cniSocket         string
	reconcileInterval time.Duration
	metricsAddress    string
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.configFile, "config", "/etc/antrea/antrea-agent.conf", "path of antrea-agent.conf (the antrea-config ConfigMap key)")
	fs.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "name of this Node (default $NODE_NAME)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; overrides clientConnection.kubeconfig; empty means in-cluster")
	fs.StringVar(&o.ovsdbEndpoint, "ovsdb", "", "OVSDB endpoint such as unix:/path/db.sock; default unix:<ovsRunDir>/db.sock")
	fs.StringVar(&o.cniSocket, "cni-socket", "", "where to serve the CNI shim; overrides cniSocket")
	fs.DurationVar(&o.reconcileInterval, "reconcile-interval", time.Minute, "period of the sweep that removes attachments of vanished sandboxes")
	fs.StringVar(&o.metricsAddress, "metrics-bind-address", DefaultMetricsAddress, "host:port serving /metrics and /healthz over plain HTTP (default: every address of the Node, port 10351); empty disables")
}

// load reads and validates antrea-agent.conf and applies the flags that override it.
func (o *options) load() (*config.Agent, *rest.Config, error) {
	if o.nodeName == "" {
		return nil, nil, errors.New("--node-name (or $NODE_NAME) is required")
	}
	cfg, err := config.LoadAgentFile(o.configFile)
	if err != nil {
		return nil, nil, err
	}
	if o.cniSocket != "" {
		cfg.CNISocket = o.cniSocket
	}
	kubeconfig := cfg.ClientConnection.Kubeconfig
	if o.kubeconfig != "" {
		kubeconfig = o.kubeconfig
	}
	var rc *rest.Config
	if kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("client configuration: %w", err)
	}
	rc.UserAgent = "antrea-agent/" + o.nodeName
	// Bursts of CNI ADDs (a kubelet restart) read and write Pods, IPPools and Events at once.
	rc.QPS, rc.Burst = 50, 100
	return cfg, rc, nil
}
