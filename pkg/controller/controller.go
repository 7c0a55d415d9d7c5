// Package controller wires antrea-controller together: the HTTPS server (IPPool admission webhook,
// /healthz, /readyz, /metrics), the informers, the webhook registration and the IPPool garbage
// collector. The deciding parts live in the sub-packages; this one only starts and stops them.
//
// With the AntreaIPAM feature gate off the controller serves health and metrics only: it serves no
// webhook, registers nothing and leaves any existing webhook configuration alone (apply the
// manifest of build/yamls/webhook only together with the gate), and it collects nothing.
package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	crdinformers "github.com/podvlan/podvlan/pkg/client/informers/externalversions"
	"github.com/podvlan/podvlan/pkg/config"
	"github.com/podvlan/podvlan/pkg/controller/certs"
	"github.com/podvlan/podvlan/pkg/controller/health"
	"github.com/podvlan/podvlan/pkg/controller/ippoolgc"
	"github.com/podvlan/podvlan/pkg/controller/metrics"
	"github.com/podvlan/podvlan/pkg/controller/webhook"
)

// shutdownTimeout bounds how long in-flight requests may take once a stop was asked for.
const shutdownTimeout = 10 * time.Second

// registerRetryInterval paces attempts to register the webhook while the API server refuses.
const registerRetryInterval = 2 * time.Second

// Options is everything Run needs; cmd/antrea-controller fills it from flags and the config file.
type Options struct {
	// Config is the loaded antrea-controller.conf.
	Config *config.Controller
	// RestConfig reaches the API server.
	RestConfig *rest.Config
	// BindAddress is the address of the HTTPS server; its port is Config.APIPort.
	BindAddress string
	// Listener, when set, is used instead of listening on BindAddress (tests pass port 0 listeners).
	Listener net.Listener
	// CertDir: with selfSignedCert the generated certificate is written there (when set) for
	// inspection; without it tls.crt, tls.key and optionally ca.crt are read from there.
	CertDir string
	// Webhook says how the API server reaches the webhook (configuration name, URL or Service).
	// Its CABundle is filled in by Run.
	Webhook webhook.Registration
	// GCPoolSelector restricts garbage collection to labelled pools; nil means every pool.
	GCPoolSelector labels.Selector
	// CertLifetimes, CertReloadInterval and CAPropagation tune the serving certificate's
	// rotation (certs.ProviderOptions); zero values mean the defaults.
	CertLifetimes      certs.Lifetimes
	CertReloadInterval time.Duration
	CAPropagation      time.Duration
}

// Controller is a configured, not yet running antrea-controller.
type Controller struct {
	opts     Options
	listener net.Listener
	certs    *certs.Provider
	metrics  *metrics.Metrics
	checks   *health.Checks

	// registered is set once the webhook configuration was first written; a CA bundle
	// published before that is picked up by that first write.
	registered atomic.Bool
	kube       kubernetes.Interface
}

// New prepares the serving certificate and opens the listener, so that the address is known
// (Addr) before Run starts serving.
func New(opts Options) (*Controller, error) {
	if opts.Config == nil {
		return nil, errors.New("no controller configuration")
	}
	m := metrics.New()
	provider, err := servingCertificate(opts, m)
	if err != nil {
		return nil, err
	}
	ln := opts.Listener
	if ln == nil {
		addr := net.JoinHostPort(opts.BindAddress, strconv.Itoa(opts.Config.APIPort))
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
	}
	return &Controller{opts: opts, listener: ln, certs: provider, metrics: m, checks: health.NewChecks()}, nil
}

// Addr is the address the HTTPS server listens on.
func (c *Controller) Addr() net.Addr { return c.listener.Addr() }

// CABundle is the PEM of the CA that signed the serving certificate (empty when unknown).
func (c *Controller) CABundle() []byte { return c.certs.CABundle() }

// Certificates is the serving certificate's provider, for tests.
func (c *Controller) Certificates() *certs.Provider { return c.certs }

// Metrics are the controller's metrics, for tests.
func (c *Controller) Metrics() *metrics.Metrics { return c.metrics }

func servingCertificate(opts Options, m *metrics.Metrics) (*certs.Provider, error) {
	po := certs.ProviderOptions{Dir: opts.CertDir, SelfSigned: opts.Config.SelfSignedCert, Lifetimes: opts.CertLifetimes,
		ReloadInterval: opts.CertReloadInterval, CAPropagation: opts.CAPropagation, Observer: m}
	if !po.SelfSigned {
		if opts.CertDir == "" {
			return nil, errors.New("selfSignedCert is false: give --cert-dir with tls.crt and tls.key")
		}
		return certs.NewProvider(po)
	}
	po.Names = certs.ServiceNames(opts.Webhook.Service.Namespace, opts.Webhook.Service.Name)
	if opts.Webhook.URL != "" {
		if u, err := url.Parse(opts.Webhook.URL); err == nil && u.Hostname() != "" {
			if ip := net.ParseIP(u.Hostname()); ip != nil {
				po.Names.IPs = append(po.Names.IPs, ip)
			} else {
				po.Names.DNS = append(po.Names.DNS, u.Hostname())
			}
		}
	}
	return certs.NewProvider(po)
}

// Run serves until ctx is done, then shuts down gracefully. It closes the listener.
func (c *Controller) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Serve's shutdown closes it too; this covers the early returns.
	defer c.listener.Close()
	ipam := c.opts.Config.Gates.Enabled(config.AntreaIPAM)

	mux := http.NewServeMux()
	c.checks.Register(mux)
	mux.Handle("/metrics", c.metrics.Handler())

	var (
		crdClient versioned.Interface
		kube      kubernetes.Interface
		crdInf    crdinformers.SharedInformerFactory
		kubeInf   informers.SharedInformerFactory
		collector *ippoolgc.Collector
	)
	if ipam {
		var err error
		if kube, err = kubernetes.NewForConfig(c.opts.RestConfig); err != nil {
			return fmt.Errorf("Kubernetes client: %w", err)
		}
		if crdClient, err = versioned.NewForConfig(c.opts.RestConfig); err != nil {
			return fmt.Errorf("IPPool client: %w", err)
		}
		crdInf = crdinformers.NewSharedInformerFactory(crdClient, 0)
		kubeInf = informers.NewSharedInformerFactory(kube, 0)
		pools := crdInf.Crd().V1beta1().IPPools()
		podInformer := kubeInf.Core().V1().Pods().Informer()
		if err := podInformer.SetTransform(ippoolgc.StripPod); err != nil {
			return fmt.Errorf("Pod informer: %w", err)
		}
		if err := c.observePools(pools.Informer()); err != nil {
			return err
		}
		c.checks.Add("ippool-cache-synced", syncedCheck(pools.Informer()))
		c.checks.Add("pod-cache-synced", syncedCheck(podInformer))
		handler := webhook.NewHandler(pools.Lister(), pools.Informer().HasSynced, c.metrics)
		mux.Handle(webhook.Path, handler)
		collector, err = ippoolgc.New(kube, crdClient, pools.Lister(), podInformer, c.metrics, ippoolgc.Options{
			Interval:     c.opts.Config.IPPoolGC.Interval,
			GracePeriod:  c.opts.Config.IPPoolGC.GracePeriod,
			PoolSelector: c.opts.GCPoolSelector,
			Blocks:       crdInf.Crd().V1beta1().IPPoolBlocks().Lister(),
			Nodes:        kubeInf.Core().V1().Nodes().Lister(),
		})
		if err != nil {
			return err
		}
		if err := collector.WatchUsage(pools.Informer(), crdInf.Crd().V1beta1().IPPoolBlocks().Informer()); err != nil {
			return err
		}
	} else {
		klog.InfoS("IPAM features are disabled: no IPPool webhook is served or registered and no garbage collection runs",
			"hint", config.GateDisabledError(config.AntreaIPAM, config.ControllerFileName))
	}

	var retirer connectionRetirer
	server := &http.Server{
		Handler:           retirer.wrap(mux),
		ConnContext:       retirer.connContext,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
		// HTTP/1.1 only, as webhook servers commonly do since the HTTP/2 rapid-reset attacks;
		// it also lets a certificate rotation retire kept-alive connections one response at a
		// time (retire.go), which HTTP/2's multiplexed connections would not allow.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	// Each handshake takes the certificate in service then: rotations need no restart.
	server.TLSConfig.GetCertificate = c.certs.GetCertificate
	c.certs.OnChange(retirer.certificateChanged)
	c.kube = kube
	serving := c.checks.AddFlag("https-serving")
	serveErr := make(chan error, 1)
	go func() { serveErr <- server.ServeTLS(c.listener, "", "") }()
	serving.Store(true)
	klog.InfoS("Serving HTTPS", "address", c.listener.Addr().String(), "ipam", ipam)

	var wg sync.WaitGroup
	wg.Go(func() { c.certs.Run(ctx, c.publishCA) })
	if ipam {
		registered := c.checks.AddFlag("webhook-registered")
		crdInf.Start(ctx.Done())
		kubeInf.Start(ctx.Done())
		wg.Go(func() {
			if !cache.WaitForCacheSync(ctx.Done(), crdInf.Crd().V1beta1().IPPools().Informer().HasSynced,
				kubeInf.Core().V1().Pods().Informer().HasSynced, crdInf.Crd().V1beta1().IPPoolBlocks().Informer().HasSynced,
				kubeInf.Core().V1().Nodes().Informer().HasSynced) {
				return
			}
			klog.InfoS("Caches synced")
			wg.Go(func() { collector.Run(ctx) })
			if err := c.register(ctx, kube); err != nil {
				return
			}
			c.registered.Store(true)
			// A bundle published while the first registration ran must not be lost.
			if err := c.publishCA(ctx, c.certs.CABundle()); err != nil {
				klog.ErrorS(err, "Could not update the IPPool webhook's CA bundle")
			}
			registered.Store(true)
		})
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		cancel()
		wg.Wait()
		shutdownFactories(crdInf, kubeInf)
		return fmt.Errorf("HTTPS server: %w", err)
	}
	klog.InfoS("Shutting down")
	shutdownCtx, stop := context.WithTimeout(context.Background(), shutdownTimeout)
	defer stop()
	err := server.Shutdown(shutdownCtx)
	wg.Wait()
	shutdownFactories(crdInf, kubeInf)
	if err != nil {
		return fmt.Errorf("shut down HTTPS server: %w", err)
	}
	return nil
}

func shutdownFactories(crdInf crdinformers.SharedInformerFactory, kubeInf informers.SharedInformerFactory) {
	if crdInf != nil {
		crdInf.Shutdown()
	}
	if kubeInf != nil {
		kubeInf.Shutdown()
	}
}

// register keeps trying until the configuration is written or ctx ends.
func (c *Controller) register(ctx context.Context, kube kubernetes.Interface) error {
	reg := c.opts.Webhook
	reg.CABundle = c.certs.CABundle()
	return wait.PollUntilContextCancel(ctx, registerRetryInterval, true, func(ctx context.Context) (bool, error) {
		if err := webhook.Register(ctx, kube, reg); err != nil {
			klog.ErrorS(err, "Could not register the IPPool webhook; retrying", "configuration", reg.ConfigurationName)
			return false, nil
		}
		return true, nil
	})
}

// publishCA writes caBundle into the webhook configuration once the controller registered it
// (before that, the first registration takes the current bundle). With the AntreaIPAM gate off
// there is no webhook to update.
func (c *Controller) publishCA(ctx context.Context, caBundle []byte) error {
	if c.kube == nil || !c.registered.Load() || len(caBundle) == 0 {
		return nil
	}
	reg := c.opts.Webhook
	reg.CABundle = caBundle
	if err := webhook.Register(ctx, c.kube, reg); err != nil {
		return fmt.Errorf("update the CA bundle of webhook configuration %s: %w", reg.ConfigurationName, err)
	}
	klog.InfoS("Updated the IPPool webhook's CA bundle", "configuration", reg.ConfigurationName)
	return nil
}

func syncedCheck(inf cache.SharedIndexInformer) func() error {
	return func() error {
		if !inf.HasSynced() {
			return errors.New("not synced yet")
		}
		return nil
	}
}

// observePools keeps the per-pool gauges current.
func (c *Controller) observePools(inf cache.SharedIndexInformer) error {
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pool, ok := obj.(*v1beta1.IPPool); ok {
				c.metrics.ObservePool(pool)
			}
		},
		UpdateFunc: func(_, obj any) {
			if pool, ok := obj.(*v1beta1.IPPool); ok {
				c.metrics.ObservePool(pool)
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if m, ok := obj.(metav1.Object); ok {
				c.metrics.ForgetPool(m.GetName())
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watch IPPools for metrics: %w", err)
	}
	return nil
}
