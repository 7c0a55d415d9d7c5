package ippoolgc

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/apis/crd/validation"
	crdinformers "github.com/podvlan/podvlan/pkg/client/informers/externalversions"
	"github.com/podvlan/podvlan/pkg/controller/controllertest"
)

// hiddenLabel marks Pods the collector's cache never sees: a cache lagging forever behind the API
// server, to prove that the live read before a release protects them.
const hiddenLabel = "podvlan-gc-test-hidden"

type countingRecorder struct {
	mu       sync.Mutex
	released int
	pending  int
	runs     int
}

func (r *countingRecorder) GCReleased(n int) { r.mu.Lock(); r.released += n; r.mu.Unlock() }
func (r *countingRecorder) GCPending(n int)  { r.mu.Lock(); r.pending = n; r.mu.Unlock() }
func (r *countingRecorder) GCRun(error)      { r.mu.Lock(); r.runs++; r.mu.Unlock() }

type stack struct {
	env       *controllertest.Env
	collector *Collector
	recorder  *countingRecorder
	now       time.Time
	nowMu     sync.Mutex
}

func (s *stack) clock() time.Time { s.nowMu.Lock(); defer s.nowMu.Unlock(); return s.now }
func (s *stack) advance(d time.Duration) {
	s.nowMu.Lock()
	s.now = s.now.Add(d)
	s.nowMu.Unlock()
}

// newStack starts informers (Pods without the hidden label, this test's pools) and a collector.
func newStack(t *testing.T, grace, interval time.Duration) *stack {
	env := controllertest.Setup(t)
	s := &stack{env: env, recorder: &countingRecorder{}, now: time.Unix(1_000_000, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	crdFactory := crdinformers.NewSharedInformerFactory(env.CRD, 0)
	kubeFactory := informers.NewSharedInformerFactoryWithOptions(env.Kube, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = hiddenLabel + "!=true" }))
	pools := crdFactory.Crd().V1beta1().IPPools()
	podInformer := kubeFactory.Core().V1().Pods().Informer()
	if err := podInformer.SetTransform(StripPod); err != nil {
		t.Fatal(err)
	}
	c, err := New(env.Kube, env.CRD, pools.Lister(), podInformer, s.recorder,
		Options{Interval: interval, GracePeriod: grace, PoolSelector: env.Selector(), Now: s.clock,
			Blocks: crdFactory.Crd().V1beta1().IPPoolBlocks().Lister(), Nodes: kubeFactory.Core().V1().Nodes().Lister()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WatchUsage(pools.Informer(), crdFactory.Crd().V1beta1().IPPoolBlocks().Informer()); err != nil {
		t.Fatal(err)
	}
	s.collector = c
	crdFactory.Start(ctx.Done())
	kubeFactory.Start(ctx.Done())
	crdFactory.WaitForCacheSync(ctx.Done())
	kubeFactory.WaitForCacheSync(ctx.Done())
	t.Cleanup(func() {
		cancel()
		crdFactory.Shutdown()
		kubeFactory.Shutdown()
	})
	return s
}

// waitForPodCache waits until the collector's Pod cache shows want (namespace/name → UID and phase;
// an empty UID means absent).
func (s *stack) waitForPodCache(t *testing.T, want map[string]*corev1.Pod) {
	t.Helper()
	controllertest.Eventually(t, 30*time.Second, func() (bool, string) {
		for ref, pod := range want {
			ns, name, _ := strings.Cut(ref, "/")
			cached, err := s.collector.pods.Pods(ns).Get(name)
			switch {
			case pod == nil && !apierrors.IsNotFound(err):
				return false, fmt.Sprintf("cache still has %s", ref)
			case pod != nil && (err != nil || cached.UID != pod.UID || cached.Status.Phase != pod.Status.Phase):
				return false, fmt.Sprintf("cache does not show %s with UID %s phase %q yet", ref, pod.UID, pod.Status.Phase)
			}
		}
		return true, ""
	})
}

// runUntilFirstPass runs the collector until the test ends and waits for its first pass (the
// one Run makes at start).
func (s *stack) runUntilFirstPass(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.collector.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	controllertest.Eventually(t, 30*time.Second, func() (bool, string) {
		s.recorder.mu.Lock()
		defer s.recorder.mu.Unlock()
		return s.recorder.runs > 0, "no pass yet"
	})
}

func (s *stack) waitForPoolCache(t *testing.T, pool *v1beta1.IPPool) {
	t.Helper()
	controllertest.Eventually(t, 30*time.Second, func() (bool, string) {
		cached, err := s.collector.pools.Get(pool.Name)
		return err == nil && cached.ResourceVersion == pool.ResourceVersion, fmt.Sprintf("pool cache not at %s yet", pool.ResourceVersion)
	})
}

func TestCollectionDecisionsOnARealAPIServer(t *testing.T) {
	const grace = time.Minute
	s := newStack(t, grace, time.Hour)
	env := s.env
	ns := env.Namespace(t)

	live := env.CreatePod(t, ns, "live")
	gone := env.CreatePod(t, ns, "gone")
	oldIncarnation := env.CreatePod(t, ns, "sts-0")
	terminated := env.CreatePod(t, ns, "done")
	hidden := createHiddenPod(t, env, ns, "hidden")

	env.DeletePod(t, gone)
	env.DeletePod(t, oldIncarnation)
	newIncarnation := env.CreatePod(t, ns, "sts-0")
	terminated.Status.Phase = corev1.PodFailed
	terminated, err := env.Kube.CoreV1().Pods(ns).UpdateStatus(controllertest.Ctx(t), terminated, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	subnet := env.FreeSubnet(t)
	ip := func(host int) netip.Addr { return controllertest.Addr(subnet, host) }
	pool := env.MustCreatePool(t, env.NewPool("gc", subnet, 0, v1beta1.IPRange{CIDR: netip.PrefixFrom(subnet.Addr(), 26).String()}))
	pool = env.Allocate(t, pool.Name,
		controllertest.Entry(ip(2), live, "c-live", "eth1"),
		controllertest.Entry(ip(3), gone, "c-gone", "eth1"),
		controllertest.Entry(ip(4), oldIncarnation, "c-sts-old", "eth1"),
		controllertest.Entry(ip(5), newIncarnation, "c-sts-new", "eth1"),
		controllertest.Entry(ip(6), terminated, "c-done", "eth1"),
		controllertest.Entry(ip(7), hidden, "c-hidden", "eth1"),
	)
	s.waitForPodCache(t, map[string]*corev1.Pod{
		ns + "/live": live, ns + "/gone": nil, ns + "/sts-0": newIncarnation, ns + "/done": terminated, ns + "/hidden": nil,
	})
	s.waitForPoolCache(t, pool)

	all := []string{ip(2).String(), ip(3).String(), ip(4).String(), ip(5).String(), ip(6).String(), ip(7).String()}
	orphansByCache := []string{ip(3).String(), ip(4).String(), ip(6).String(), ip(7).String()}
	passes := []struct {
		name         string
		advance      time.Duration
		wantReleased []string
		wantPending  []string
		wantStored   []string
	}{
		{
			name:        "an orphan just found is only tracked: an agent may have allocated moments ago",
			wantPending: orphansByCache, wantStored: all,
		},
		{
			name:    "orphans are still kept just before the grace period ends",
			advance: grace - time.Second, wantPending: orphansByCache, wantStored: all,
		},
		{
			name: "after the grace period the gone, replaced and terminated owners are released; " +
				"the live one, the new incarnation and the Pod the cache missed are kept",
			advance:      time.Second,
			wantReleased: []string{ip(3).String(), ip(4).String(), ip(6).String()},
			wantStored:   []string{ip(2).String(), ip(5).String(), ip(7).String()},
		},
	}
	for _, p := range passes {
		t.Run(p.name, func(t *testing.T) {
			s.advance(p.advance)
			res, err := s.collector.CollectOnce(controllertest.Ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if got := keyIPs(res.Released); !slices.Equal(got, sorted(p.wantReleased)) {
				t.Errorf("released %v, want %v", got, sorted(p.wantReleased))
			}
			// The hidden Pod's entry looks orphaned to the cache at every pass but the live read keeps it.
			if got := keyIPs(res.Pending); !slices.Equal(got, sorted(p.wantPending)) {
				t.Errorf("pending %v, want %v", got, sorted(p.wantPending))
			}
			if got := sorted(env.Addresses(t, pool.Name)); !slices.Equal(got, sorted(p.wantStored)) {
				t.Errorf("stored %v, want %v", got, sorted(p.wantStored))
			}
		})
	}
	got, err := env.CRD.CrdV1beta1().IPPools().Get(controllertest.Ctx(t), pool.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Usage.Used != 3 {
		t.Errorf("usage.used %d after the release, want 3", got.Status.Usage.Used)
	}
	if s.recorder.released != 3 {
		t.Errorf("released counter %d, want 3", s.recorder.released)
	}
}

func createHiddenPod(t *testing.T, env *controllertest.Env, ns, name string) *corev1.Pod {
	t.Helper()
	pod := env.CreatePod(t, ns, name)
	pod.Labels = map[string]string{hiddenLabel: "true"}
	updated, err := env.Kube.CoreV1().Pods(ns).Update(controllertest.Ctx(t), pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("label Pod %s: %v", name, err)
	}
	return updated
}

func TestRunReleasesAnOrphanAfterItsPodIsDeletedWithoutWaitingForTheInterval(t *testing.T) {
	// The interval is far beyond the test's timeout: only the deletion event and the end of the
	// grace period can trigger the release.
	s := newStack(t, time.Second, 24*time.Hour)
	s.collector.opts.Now = time.Now
	env := s.env
	ns := env.Namespace(t)
	keep := env.CreatePod(t, ns, "keep")
	victim := env.CreatePod(t, ns, "victim")
	subnet := env.FreeSubnet(t)
	pool := env.MustCreatePool(t, env.NewPool("gc-run", subnet, 0, v1beta1.IPRange{CIDR: netip.PrefixFrom(subnet.Addr(), 26).String()}))
	keepIP, victimIP := controllertest.Addr(subnet, 2).String(), controllertest.Addr(subnet, 3).String()
	pool = env.Allocate(t, pool.Name, controllertest.Entry(controllertest.Addr(subnet, 2), keep, "c-keep", "eth1"),
		controllertest.Entry(controllertest.Addr(subnet, 3), victim, "c-victim", "eth1"))
	s.waitForPoolCache(t, pool)
	s.waitForPodCache(t, map[string]*corev1.Pod{ns + "/keep": keep, ns + "/victim": victim})

	// The first pass (at start) finds nothing to release.
	s.runUntilFirstPass(t)
	if got := sorted(env.Addresses(t, pool.Name)); !slices.Equal(got, sorted([]string{keepIP, victimIP})) {
		t.Fatalf("stored %v before any deletion, want both", got)
	}

	env.DeletePod(t, victim)
	controllertest.Eventually(t, 60*time.Second, func() (bool, string) {
		got := env.Addresses(t, pool.Name)
		return slices.Equal(got, []string{keepIP}), fmt.Sprintf("stored %v, want only %s", got, keepIP)
	})
}

func keyIPs(keys []Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.IP)
	}
	return sorted(out)
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// With address blocks no agent writes a pool's status: its usage (total, and the holders its
// blocks report) is the collector's, written soon after a block changes, not one interval later.
func TestRunWritesUsageSoonAfterABlockChanges(t *testing.T) {
	s := newStack(t, time.Minute, 24*time.Hour)
	env := s.env
	ctx := controllertest.Ctx(t)
	ns := env.Namespace(t)
	pod := env.CreatePod(t, ns, "holder")
	subnet := env.FreeSubnet(t)
	pool := env.MustCreatePool(t, env.NewPool("usage", subnet, 0, v1beta1.IPRange{CIDR: netip.PrefixFrom(subnet.Addr(), 26).String()}))
	parsed, err := validation.ParsePool(pool)
	if err != nil {
		t.Fatal(err)
	}
	s.waitForPoolCache(t, pool)

	s.runUntilFirstPass(t)

	b, err := env.CRD.CrdV1beta1().IPPoolBlocks().Create(ctx, &v1beta1.IPPoolBlock{
		ObjectMeta: metav1.ObjectMeta{Name: pool.Name + ".a"},
		Spec:       v1beta1.IPPoolBlockSpec{Pool: pool.Name, CIDR: netip.PrefixFrom(subnet.Addr(), 30).String(), NodeName: "usage-node"},
		Status: v1beta1.IPPoolBlockStatus{Used: 2, IPAddresses: []v1beta1.IPAddressState{
			controllertest.Entry(controllertest.Addr(subnet, 1), pod, "c-1", "eth1"),
			controllertest.Entry(controllertest.Addr(subnet, 2), pod, "c-1", "eth2")}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.CRD.CrdV1beta1().IPPoolBlocks().Delete(context.Background(), b.Name, metav1.DeleteOptions{})
	})
	want := v1beta1.IPPoolUsage{Total: parsed.UsageTotal(), Used: 2, InBlocks: 2, Blocks: 1}
	controllertest.Eventually(t, 30*time.Second, func() (bool, string) {
		p, err := env.CRD.CrdV1beta1().IPPools().Get(ctx, pool.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Usage == want, fmt.Sprintf("usage %+v, want %+v", p.Status.Usage, want)
	})
}
