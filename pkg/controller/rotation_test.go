package controller

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/controller/certs"
	"github.com/podvlan/podvlan/pkg/controller/controllertest"
	"github.com/podvlan/podvlan/pkg/controller/webhook"
)

// servedSerial is the serial number of the certificate the controller presents now.
func (r *running) servedSerial(t *testing.T) string {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(r.base, "https://"), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the certificate only
	if err != nil {
		t.Fatalf("dial the controller: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// The webhook has failurePolicy Fail: if the API server ever met a certificate it does not trust,
// IPPool writes would fail. Here the serving certificate renews itself every few seconds and the
// CA is replaced twice while IPPools are written without pause; every write must be judged.
func TestIPPoolWritesKeepWorkingWhileTheCertificateRotates(t *testing.T) {
	env := controllertest.Setup(t)
	r := start(t, env, `
featureGates: {AntreaIPAM: true}
ipPoolGC: {interval: 24h, gracePeriod: 24h}
`, func(o *Options) {
		o.CertLifetimes = certs.Lifetimes{Serving: 4 * time.Second}
		o.CAPropagation = 2 * time.Second
	})
	r.waitReady(t)
	subnet := env.FreeSubnet(t)
	good := env.NewPool("rotation", subnet, 100, v1beta1.IPRange{CIDR: netip.PrefixFrom(subnet.Addr(), 26).String()})
	bad := good.DeepCopy()
	bad.Spec.IPRanges = []v1beta1.IPRange{{CIDR: netip.PrefixFrom(controllertest.Addr(subnet, 256), 26).String()}}
	pools := env.CRD.CrdV1beta1().IPPools()
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	controllertest.Eventually(t, 30*time.Second, func() (bool, string) {
		_, err := pools.Create(controllertest.Ctx(t), bad, dryRun)
		return err != nil && strings.Contains(err.Error(), webhook.WebhookName), fmt.Sprintf("webhook not in use yet: %v", err)
	})

	ctx, cancel := context.WithCancel(controllertest.Ctx(t))
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, after := range []time.Duration{3 * time.Second, 4 * time.Second} {
			select {
			case <-ctx.Done():
				return
			case <-time.After(after):
			}
			if err := r.c.Certificates().RotateCA(ctx, r.c.publishCA); err != nil && ctx.Err() == nil {
				t.Errorf("rotate the CA: %v", err)
			}
		}
	})
	// A client that keeps its connection alive, as the API server does, must move to each new
	// certificate without a request ever failing.
	kept := keptAliveProbe{serials: map[string]bool{}}
	wg.Go(func() { kept.run(ctx, r.base+"/healthz") })
	serials, bundles := map[string]bool{}, map[string]bool{}
	writes := 0
	for end := time.Now().Add(14 * time.Second); time.Now().Before(end); time.Sleep(150 * time.Millisecond) {
		if _, err := pools.Create(ctx, good, dryRun); err != nil {
			t.Errorf("write %d: a valid IPPool was refused: %v", writes, err)
		}
		if _, err := pools.Create(ctx, bad, dryRun); err == nil || !strings.Contains(err.Error(), "denied the request") {
			t.Errorf("write %d: an invalid IPPool was not judged by the webhook: %v", writes, err)
		}
		writes++
		serials[r.servedSerial(t)] = true
		conf, err := env.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, r.c.opts.Webhook.ConfigurationName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bundles[string(conf.Webhooks[0].ClientConfig.CABundle)] = true
	}
	cancel()
	wg.Wait()
	// The first certificate, at least two renewals (every ~2.7 s) and two new CAs.
	if len(serials) < 5 {
		t.Errorf("%d certificates served in 14s, want at least 5", len(serials))
	}
	if len(bundles) < 3 {
		t.Errorf("%d CA bundles published, want the first and two rotations", len(bundles))
	}
	if kept.failures > 0 || kept.reused == 0 || len(kept.serials) < 3 {
		t.Errorf("kept-alive client: %d requests, %d failed (first: %v), %d on a reused connection, %d certificates seen; want none failed, reuse, and at least 3 certificates",
			kept.requests, kept.failures, kept.firstErr, kept.reused, len(kept.serials))
	}
	// The test's client trusts the first CA only.
	r.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // reads metrics only
	_, metrics := r.get(t, "/metrics")
	if !strings.Contains(metrics, `podvlan_controller_serving_certificate_reloads_total{result="success"}`) {
		t.Errorf("/metrics counts no successful rotation:\n%s", metrics)
	}
	t.Logf("%d writes judged across %d certificates and %d CA bundles; kept-alive client: %d requests, %d reused, %d certificates",
		writes, len(serials), len(bundles), kept.requests, kept.reused, len(kept.serials))
}

// keptAliveProbe sends requests every 50 ms on one kept-alive client until ctx ends, recording
// failures, connection reuse and the certificates it met. Its fields are read after run returns.
type keptAliveProbe struct {
	requests, failures, reused int
	firstErr                   error
	serials                    map[string]bool
}

func (p *keptAliveProbe) run(ctx context.Context, url string) {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // reads the certificate only
	defer client.CloseIdleConnections()
	for ctx.Err() == nil {
		reused := false
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		}), http.MethodGet, url, nil)
		if err != nil {
			panic(err)
		}
		resp, err := client.Do(req)
		if ctx.Err() != nil {
			return
		}
		p.requests++
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			p.serials[resp.TLS.PeerCertificates[0].SerialNumber.String()] = true
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err != nil {
			p.failures++
			if p.firstErr == nil {
				p.firstErr = err
			}
		}
		if reused {
			p.reused++
		}
		time.Sleep(50 * time.Millisecond)
	}
}
