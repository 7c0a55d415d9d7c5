package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	crdinformers "github.com/podvlan/podvlan/pkg/client/informers/externalversions"
	"github.com/podvlan/podvlan/pkg/controller/certs"
	"github.com/podvlan/podvlan/pkg/controller/controllertest"
)

// startWebhook serves the handler on 127.0.0.1 with a generated certificate and registers it with
// its URL for this test's pools only; it returns once the API server calls it.
func startWebhook(t *testing.T, env *controllertest.Env) *countingRecorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := crdinformers.NewSharedInformerFactory(env.CRD, 0)
	pools := factory.Crd().V1beta1().IPPools()
	recorder := &countingRecorder{map[string]int{}, map[string]int{}}
	handler := NewHandler(pools.Lister(), pools.Informer().HasSynced, recorder)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	bundle, err := certs.Generate(certs.Names{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := bundle.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, handler)
	server := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.ServeTLS(ln, "", "") }()

	reg := Registration{
		ConfigurationName: env.Name("webhook-test"),
		URL:               fmt.Sprintf("https://%s%s", ln.Addr(), Path),
		CABundle:          bundle.CAPEM,
		ObjectSelector:    env.LabelSelector(),
	}
	// Registered first, so that it runs last: the pools' cleanup needs the webhook to admit deletions.
	t.Cleanup(func() {
		ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
		defer stop()
		err := env.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, reg.ConfigurationName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete webhook configuration: %v", err)
		}
		_ = server.Close()
		cancel()
		factory.Shutdown()
	})
	if err := Register(ctxFor(t), env.Kube, reg); err != nil {
		t.Fatal(err)
	}
	// Registering twice is a no-op (the controller does it at every start).
	if err := Register(ctxFor(t), env.Kube, reg); err != nil {
		t.Fatal(err)
	}
	waitUntilCalled(t, env)
	return recorder
}

func ctxFor(t *testing.T) context.Context { return controllertest.Ctx(t) }

// waitUntilCalled waits until the API server uses the new configuration: a dry-run create of an
// invalid pool of this test is denied by the webhook (the CRD's own schema accepts it).
func waitUntilCalled(t *testing.T, env *controllertest.Env) {
	t.Helper()
	probe := env.NewPool("probe", netip.MustParsePrefix("198.18.0.0/24"), 0, cidr("198.19.255.0/28"))
	controllertest.Eventually(t, 30*time.Second, func() (bool, string) {
		_, err := env.CRD.CrdV1beta1().IPPools().Create(ctxFor(t), probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), WebhookName), fmt.Sprintf("webhook not called yet: %v", err)
	})
}

func updatePool(t *testing.T, env *controllertest.Env, name string, mutate func(*v1beta1.IPPool)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := env.CRD.CrdV1beta1().IPPools().Get(ctxFor(t), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(p)
		_, err = env.CRD.CrdV1beta1().IPPools().Update(ctxFor(t), p, metav1.UpdateOptions{})
		return err
	})
}

func TestWebhookOnARealAPIServer(t *testing.T) {
	env := controllertest.Setup(t)
	recorder := startWebhook(t, env)
	ns := env.Namespace(t)
	owner := env.CreatePod(t, ns, "owner")

	// Each case gets its own /24 (overlap across pools is denied, and other tests share the cluster).
	type fixture struct {
		subnet netip.Prefix
		pool   *v1beta1.IPPool // created before the action, with one range: .0/26 of the subnet
	}
	r26 := func(s netip.Prefix, host int, bits int) v1beta1.IPRange {
		return cidr(netip.PrefixFrom(controllertest.Addr(s, host), bits).String())
	}
	tests := []struct {
		name        string
		existing    bool // create the fixture pool first
		allocate    bool // and record an allocation in it
		action      func(t *testing.T, f fixture) error
		wantErrText []string // empty: the action must succeed
	}{
		{
			name: "creating a valid pool is allowed",
			action: func(t *testing.T, f fixture) error {
				_, err := env.CreatePool(t, env.NewPool("valid", f.subnet, 100, r26(f.subnet, 0, 26), v1beta1.IPRange{
					Start: controllertest.Addr(f.subnet, 100).String(), End: controllertest.Addr(f.subnet, 120).String()}))
				return err
			},
		},
		{
			name: "creating a pool with a range outside gateway/prefixLength is denied",
			action: func(t *testing.T, f fixture) error {
				outside := netip.PrefixFrom(controllertest.Addr(f.subnet, 256), 26)
				_, err := env.CreatePool(t, env.NewPool("outside", f.subnet, 0, cidr(outside.String())))
				return err
			},
			wantErrText: []string{WebhookName, "spec.ipRanges[0].cidr", "is not inside the subnet"},
		},
		{
			name: "creating a pool whose ranges overlap each other is denied",
			action: func(t *testing.T, f fixture) error {
				_, err := env.CreatePool(t, env.NewPool("self-overlap", f.subnet, 0, r26(f.subnet, 0, 26), r26(f.subnet, 32, 27)))
				return err
			},
			wantErrText: []string{"spec.ipRanges[1]", "overlaps spec.ipRanges[0]"},
		},
		{
			name:     "creating a pool that overlaps another pool is denied naming it",
			existing: true,
			action: func(t *testing.T, f fixture) error {
				_, err := env.CreatePool(t, env.NewPool("cross-overlap", f.subnet, 0, r26(f.subnet, 48, 28)))
				return err
			},
			wantErrText: []string{"overlaps", "of IPPool", "(spec.ipRanges[0])"},
		},
		{
			name:     "changing the gateway is denied",
			existing: true,
			action: func(t *testing.T, f fixture) error {
				return updatePool(t, env, f.pool.Name, func(p *v1beta1.IPPool) { p.Spec.SubnetInfo.Gateway = controllertest.Addr(f.subnet, 2).String() })
			},
			wantErrText: []string{"spec.subnetInfo.gateway", "immutable"},
		},
		{
			name:     "changing the prefix length is denied",
			existing: true,
			action: func(t *testing.T, f fixture) error {
				return updatePool(t, env, f.pool.Name, func(p *v1beta1.IPPool) { p.Spec.SubnetInfo.PrefixLength = 25 })
			},
			wantErrText: []string{"spec.subnetInfo.prefixLength", "immutable"},
		},
		{
			name:     "adding a range is allowed",
			existing: true,
			action: func(t *testing.T, f fixture) error {
				return updatePool(t, env, f.pool.Name, func(p *v1beta1.IPPool) { p.Spec.IPRanges = append(p.Spec.IPRanges, r26(f.subnet, 64, 26)) })
			},
		},
		{
			name:     "removing a range is denied",
			existing: true,
			action: func(t *testing.T, f fixture) error {
				return updatePool(t, env, f.pool.Name, func(p *v1beta1.IPPool) { p.Spec.IPRanges = []v1beta1.IPRange{r26(f.subnet, 64, 26)} })
			},
			wantErrText: []string{"was removed or changed; ranges can only be added"},
		},
		{
			name:     "changing a range is denied",
			existing: true,
			action: func(t *testing.T, f fixture) error {
				return updatePool(t, env, f.pool.Name, func(p *v1beta1.IPPool) { p.Spec.IPRanges[0] = r26(f.subnet, 0, 25) })
			},
			wantErrText: []string{"was removed or changed"},
		},
		{
			name:     "changing the VLAN of a pool without allocations is allowed",
			existing: true,
			action: func(t *testing.T, f fixture) error {
				return updatePool(t, env, f.pool.Name, func(p *v1beta1.IPPool) { p.Spec.SubnetInfo.VLAN = 300 })
			},
		},
		{
			name:     "changing the VLAN while addresses are allocated is denied",
			existing: true, allocate: true,
			action: func(t *testing.T, f fixture) error {
				return updatePool(t, env, f.pool.Name, func(p *v1beta1.IPPool) { p.Spec.SubnetInfo.VLAN = 300 })
			},
			wantErrText: []string{"spec.subnetInfo.vlan", "while 1 addresses are allocated"},
		},
		{
			name:     "deleting a pool with allocations is denied",
			existing: true, allocate: true,
			action: func(t *testing.T, f fixture) error {
				return env.CRD.CrdV1beta1().IPPools().Delete(ctxFor(t), f.pool.Name, metav1.DeleteOptions{})
			},
			wantErrText: []string{"has 1 allocated addresses", fmt.Sprintf("held by Pod %s/owner", ns)},
		},
		{
			name:     "deleting a pool is allowed once its allocations are released",
			existing: true, allocate: true,
			action: func(t *testing.T, f fixture) error {
				err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
					p, err := env.CRD.CrdV1beta1().IPPools().Get(ctxFor(t), f.pool.Name, metav1.GetOptions{})
					if err != nil {
						return err
					}
					p.Status = v1beta1.IPPoolStatus{}
					_, err = env.CRD.CrdV1beta1().IPPools().UpdateStatus(ctxFor(t), p, metav1.UpdateOptions{})
					return err
				})
				if err != nil {
					return fmt.Errorf("release (status write, not subject to the webhook): %w", err)
				}
				return env.CRD.CrdV1beta1().IPPools().Delete(ctxFor(t), f.pool.Name, metav1.DeleteOptions{})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fixture{subnet: env.FreeSubnet(t)}
			if tt.existing {
				f.pool = env.MustCreatePool(t, env.NewPool("fixture", f.subnet, 100, r26(f.subnet, 0, 26)))
				if tt.allocate {
					env.Allocate(t, f.pool.Name, controllertest.Entry(controllertest.Addr(f.subnet, 5), owner, "sandbox-1", "eth1"))
				}
			}
			err := tt.action(t, f)
			if len(tt.wantErrText) == 0 {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want a denial containing %q, got success", tt.wantErrText)
			}
			var status apierrors.APIStatus
			if !errors.As(err, &status) {
				t.Fatalf("want an API status error, got %v", err)
			}
			for _, want := range tt.wantErrText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if tt.existing {
				// A denied update or delete left the pool as it was.
				p, getErr := env.CRD.CrdV1beta1().IPPools().Get(ctxFor(t), f.pool.Name, metav1.GetOptions{})
				if getErr != nil {
					t.Fatalf("pool gone after a denial: %v", getErr)
				}
				if p.Spec.SubnetInfo != f.pool.Spec.SubnetInfo || len(p.Spec.IPRanges) != len(f.pool.Spec.IPRanges) {
					t.Errorf("pool changed despite the denial: %+v", p.Spec)
				}
			}
		})
	}
	if recorder.denials["CREATE"] == 0 || recorder.denials["UPDATE"] == 0 || recorder.denials["DELETE"] == 0 {
		t.Errorf("denials counted %v, want some of each operation", recorder.denials)
	}
}

func TestWebhookJudgesOnlyPoolsItsObjectSelectorMatches(t *testing.T) {
	env := controllertest.Setup(t)
	startWebhook(t, env)
	subnet := env.FreeSubnet(t)
	pool := env.NewPool("unlabelled", subnet, 0, cidr(netip.PrefixFrom(controllertest.Addr(subnet, 0), 26).String()))
	pool.Labels = nil
	env.MustCreatePool(t, pool)
	// The same change is denied for this test's labelled pools (see TestWebhookOnARealAPIServer).
	if err := updatePool(t, env, pool.Name, func(p *v1beta1.IPPool) { p.Spec.SubnetInfo.Gateway = controllertest.Addr(subnet, 2).String() }); err != nil {
		t.Fatalf("update of a pool outside the object selector: %v", err)
	}
}
