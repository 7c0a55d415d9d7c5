package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/config"
	"github.com/podvlan/podvlan/pkg/controller/controllertest"
	"github.com/podvlan/podvlan/pkg/controller/webhook"
)

type running struct {
	c      *Controller
	client *http.Client
	base   string
	stop   func() error
}

// start runs a controller in-process on a free port of 127.0.0.1, registered by URL for this test's
// pools only.
func start(t *testing.T, env *controllertest.Env, confYAML string, tune ...func(*Options)) *running {
	t.Helper()
	cfg, err := config.LoadController([]byte(confYAML))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := webhook.Registration{
		ConfigurationName: env.Name("controller-test"),
		URL:               fmt.Sprintf("https://%s%s", ln.Addr(), webhook.Path),
		Service:           webhook.ServiceRef{Namespace: "kube-system", Name: "antrea-controller"},
		ObjectSelector:    env.LabelSelector(),
	}
	opts := Options{Config: cfg, RestConfig: env.Rest, Listener: ln, Webhook: reg, GCPoolSelector: env.Selector()}
	for _, f := range tune {
		f(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("controller did not stop within 30s")
		}
	}
	t.Cleanup(func() {
		ctx, done := context.WithTimeout(context.Background(), 30*time.Second)
		defer done()
		err := env.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, reg.ConfigurationName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete webhook configuration: %v", err)
		}
		if err := stop(); err != nil {
			t.Errorf("stop controller: %v", err)
		}
	})
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(c.CABundle()) {
		t.Fatal("controller CA does not parse")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	return &running{c: c, client: client, base: "https://" + ln.Addr().String(), stop: stop}
}

func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := r.client.Get(r.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (r *running) waitReady(t *testing.T) {
	t.Helper()
	controllertest.Eventually(t, 60*time.Second, func() (bool, string) {
		code, body := r.get(t, "/readyz")
		return code == http.StatusOK, fmt.Sprintf("/readyz %d: %s", code, body)
	})
}

func TestControllerProtectsAnInUsePoolUntilTheCollectorReleasesIt(t *testing.T) {
	env := controllertest.Setup(t)
	r := start(t, env, `
featureGates: {AntreaIPAM: true}
ipPoolGC: {interval: 24h, gracePeriod: 1s}
`)
	r.waitReady(t)
	if code, body := r.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d %s", code, body)
	}

	ns := env.Namespace(t)
	pod := env.CreatePod(t, ns, "holder")
	subnet := env.FreeSubnet(t)
	pool := env.NewPool("in-use", subnet, 100, v1beta1.IPRange{CIDR: netip.PrefixFrom(subnet.Addr(), 26).String()})
	// The API server may take a moment to use the configuration the controller registered.
	controllertest.Eventually(t, 30*time.Second, func() (bool, string) {
		bad := pool.DeepCopy()
		bad.Spec.IPRanges = []v1beta1.IPRange{{CIDR: netip.PrefixFrom(controllertest.Addr(subnet, 256), 26).String()}}
		_, err := env.CRD.CrdV1beta1().IPPools().Create(controllertest.Ctx(t), bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), webhook.WebhookName), fmt.Sprintf("webhook not in use yet: %v", err)
	})
	env.MustCreatePool(t, pool)
	env.Allocate(t, pool.Name, controllertest.Entry(controllertest.Addr(subnet, 2), pod, "sandbox-1", "eth1"))

	err := env.CRD.CrdV1beta1().IPPools().Delete(controllertest.Ctx(t), pool.Name, metav1.DeleteOptions{})
	if err == nil || !strings.Contains(err.Error(), "has 1 allocated addresses") {
		t.Fatalf("delete of an in-use pool: %v, want a denial", err)
	}

	env.DeletePod(t, pod)
	controllertest.Eventually(t, 60*time.Second, func() (bool, string) {
		got := env.Addresses(t, pool.Name)
		return len(got) == 0, fmt.Sprintf("addresses %v still recorded", got)
	})
	if err := env.CRD.CrdV1beta1().IPPools().Delete(controllertest.Ctx(t), pool.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete after the release: %v", err)
	}

	_, metrics := r.get(t, "/metrics")
	for _, want := range []string{
		"podvlan_ippool_gc_released_total 1",
		`podvlan_ippool_webhook_denials_total{operation="DELETE"} 1`,
		`podvlan_ippool_webhook_denials_total{operation="CREATE"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if err := r.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if resp, err := r.client.Get(r.base + "/healthz"); err == nil {
		_ = resp.Body.Close()
		t.Error("the HTTPS server still answers after the stop")
	}
}

func TestControllerReportsPoolUsageMetrics(t *testing.T) {
	env := controllertest.Setup(t)
	r := start(t, env, `
featureGates: {AntreaIPAM: true}
ipPoolGC: {interval: 24h, gracePeriod: 24h}
`)
	r.waitReady(t)
	ns := env.Namespace(t)
	pod := env.CreatePod(t, ns, "user")
	subnet := env.FreeSubnet(t)
	// A /26 at the start of the /24: the network address and the gateway (.1) are not allocatable.
	pool := env.MustCreatePool(t, env.NewPool("usage", subnet, 0, v1beta1.IPRange{CIDR: netip.PrefixFrom(subnet.Addr(), 26).String()}))
	env.Allocate(t, pool.Name, controllertest.Entry(controllertest.Addr(subnet, 2), pod, "c1", "eth1"),
		controllertest.Entry(controllertest.Addr(subnet, 3), pod, "c1", "eth2"))
	controllertest.Eventually(t, 30*time.Second, func() (bool, string) {
		_, metrics := r.get(t, "/metrics")
		total := fmt.Sprintf(`podvlan_ippool_capacity_addresses{pool=%q} 62`, pool.Name)
		used := fmt.Sprintf(`podvlan_ippool_allocated_addresses{pool=%q} 2`, pool.Name)
		return strings.Contains(metrics, total) && strings.Contains(metrics, used), "pool gauges not reported yet"
	})
}

func TestControllerWithIPAMDisabledServesHealthOnly(t *testing.T) {
	env := controllertest.Setup(t)
	r := start(t, env, `featureGates: {AntreaIPAM: false}`)
	r.waitReady(t)
	resp, err := r.client.Post(r.base+webhook.Path, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("webhook path answered %d with IPAM disabled, want 404", resp.StatusCode)
	}
	name := r.c.opts.Webhook.ConfigurationName
	_, err = env.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(controllertest.Ctx(t), name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("webhook configuration %s: %v, want none registered", name, err)
	}
}
