package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podvlan/podvlan/pkg/config"
	"github.com/podvlan/podvlan/pkg/controller"
	"github.com/podvlan/podvlan/pkg/controller/webhook"
)

// Defaults of the flags, matching build/yamls (the Deployment mounts antrea-config there).
const (
	defaultConfigPath     = "/etc/antrea/antrea-controller.conf"
	defaultBindAddress    = "0.0.0.0"
	defaultWebhookService = "kube-system/antrea-controller"
	// userAgent names the controller in the API server's audit log.
	userAgent = "antrea-controller"
)

// options are the command-line flags.
type options struct {
	configPath     string
	kubeconfig     string
	bindAddress    string
	certDir        string
	webhookName    string
	webhookURL     string
	webhookService string
	ippoolSelector string
}

func newOptions() *options {
	return &options{
		configPath:     defaultConfigPath,
		bindAddress:    defaultBindAddress,
		webhookName:    webhook.DefaultConfigurationName,
		webhookService: defaultWebhookService,
	}
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.configPath, "config", o.configPath, "path of antrea-controller.conf")
	fs.StringVar(&o.kubeconfig, "kubeconfig", o.kubeconfig,
		"kubeconfig file; overrides clientConnection.kubeconfig of the configuration (empty for both: in-cluster)")
	fs.StringVar(&o.bindAddress, "bind-address", o.bindAddress,
		"address of the HTTPS server (webhook, /healthz, /readyz, /metrics); the port is apiPort of the configuration")
	fs.StringVar(&o.certDir, "cert-dir", o.certDir,
		"with selfSignedCert: true, where the generated tls.crt, tls.key and ca.crt are written for inspection (optional); "+
			"with selfSignedCert: false, where they are read from (required)")
	fs.StringVar(&o.webhookName, "webhook-name", o.webhookName,
		"name of the ValidatingWebhookConfiguration to register or inject the CA bundle into")
	fs.StringVar(&o.webhookURL, "webhook-url", o.webhookURL,
		"register the webhook with this clientConfig.url (for an API server that reaches the controller directly, e.g. "+
			"https://127.0.0.1:10349"+webhook.Path+"; a URL without a path gets "+webhook.Path+"); "+
			"empty: the Service of --webhook-service")
	fs.StringVar(&o.webhookService, "webhook-service", o.webhookService,
		"namespace/name of the Service in front of the controller, used when --webhook-url is empty")
	fs.StringVar(&o.ippoolSelector, "ippool-selector", o.ippoolSelector,
		"label selector of the IPPools this controller validates and collects (default: all); overlap is always "+
			"checked against every pool. Meant for tests that share a cluster")
}

// complete validates the flags, loads the configuration and builds the controller's options.
func (o *options) complete() (controller.Options, error) {
	cfg, err := config.LoadControllerFile(o.configPath)
	if err != nil {
		return controller.Options{}, err
	}
	if o.kubeconfig != "" {
		cfg.ClientConnection.Kubeconfig = o.kubeconfig
	}
	reg, err := o.registration()
	if err != nil {
		return controller.Options{}, err
	}
	opts := controller.Options{Config: cfg, BindAddress: o.bindAddress, CertDir: o.certDir, Webhook: reg}
	if o.ippoolSelector != "" {
		sel, err := metav1.ParseToLabelSelector(o.ippoolSelector)
		if err != nil {
			return controller.Options{}, fmt.Errorf("--ippool-selector: %w", err)
		}
		if opts.GCPoolSelector, err = metav1.LabelSelectorAsSelector(sel); err != nil {
			return controller.Options{}, fmt.Errorf("--ippool-selector: %w", err)
		}
		opts.Webhook.ObjectSelector = sel
	}
	if cfg.Gates.Enabled(config.AntreaIPAM) {
		if opts.RestConfig, err = restConfig(cfg.ClientConnection.Kubeconfig); err != nil {
			return controller.Options{}, err
		}
	}
	return opts, nil
}

// registration turns the webhook flags into a webhook.Registration (without the CA bundle).
func (o *options) registration() (webhook.Registration, error) {
	if o.webhookName == "" {
		return webhook.Registration{}, errors.New("--webhook-name must not be empty")
	}
	reg := webhook.Registration{ConfigurationName: o.webhookName}
	ns, name, ok := strings.Cut(o.webhookService, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return webhook.Registration{}, fmt.Errorf("--webhook-service %q: want namespace/name", o.webhookService)
	}
	reg.Service = webhook.ServiceRef{Namespace: ns, Name: name}
	if o.webhookURL == "" {
		return reg, nil
	}
	u, err := url.Parse(o.webhookURL)
	if err != nil {
		return webhook.Registration{}, fmt.Errorf("--webhook-url: %w", err)
	}
	switch {
	case u.Scheme != "https":
		return webhook.Registration{}, fmt.Errorf("--webhook-url %q: the API server calls webhooks over https only", o.webhookURL)
	case u.Host == "":
		return webhook.Registration{}, fmt.Errorf("--webhook-url %q: no host", o.webhookURL)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return webhook.Registration{}, fmt.Errorf("--webhook-url %q: user, query and fragment are not allowed", o.webhookURL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = webhook.Path
	}
	reg.URL = u.String()
	return reg, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		if kubeconfig == "" {
			return nil, fmt.Errorf("in-cluster Kubernetes configuration (set clientConnection.kubeconfig or --kubeconfig outside a cluster): %w", err)
		}
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.UserAgent = userAgent
	// Enough for the collector's bursts of live reads after a mass Pod deletion.
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}
