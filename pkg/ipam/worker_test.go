package ipam

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned/fake"
	"github.com/podvlan/podvlan/pkg/client/informers/externalversions"
)

var ippoolsResource = v1beta1.SchemeGroupVersion.WithResource("ippools")

// fakeAPI is a fake clientset whose updates check and bump resourceVersion like the API server.
// beforeStatusWrite, when set, runs before each status write is applied and may fail it.
type fakeAPI struct {
	*fake.Clientset
	mu                sync.Mutex
	beforeStatusWrite func(n int, stored *v1beta1.IPPool) error
	statusWrites      int
}

func newFakeAPI(t testing.TB, pools ...*v1beta1.IPPool) *fakeAPI {
	t.Helper()
	var objs []runtime.Object
	for _, p := range pools {
		p = p.DeepCopy()
		p.ResourceVersion = "1"
		objs = append(objs, p)
	}
	f := &fakeAPI{Clientset: fake.NewSimpleClientset(objs...)}
	f.PrependReactor("update", "ippools", func(action k8stesting.Action) (bool, runtime.Object, error) {
		ua := action.(k8stesting.UpdateAction)
		obj := ua.GetObject().(*v1beta1.IPPool)
		f.mu.Lock()
		defer f.mu.Unlock()
		cur, err := f.Tracker().Get(ippoolsResource, "", obj.Name)
		if err != nil {
			return true, nil, err
		}
		stored := cur.(*v1beta1.IPPool)
		if ua.GetSubresource() == "status" {
			f.statusWrites++
			if f.beforeStatusWrite != nil {
				if err := f.beforeStatusWrite(f.statusWrites, stored); err != nil {
					return true, nil, err
				}
				if cur, err = f.Tracker().Get(ippoolsResource, "", obj.Name); err != nil {
					return true, nil, err
				}
				stored = cur.(*v1beta1.IPPool)
			}
		}
		if stored.ResourceVersion != obj.ResourceVersion {
			return true, nil, apierrors.NewConflict(v1beta1.Resource("ippools"), obj.Name,
				fmt.Errorf("resourceVersion %s is stale, current is %s", obj.ResourceVersion, stored.ResourceVersion))
		}
		next := stored.DeepCopy()
		if ua.GetSubresource() == "status" {
			next.Status = obj.Status
		} else {
			next.Spec = obj.Spec
		}
		f.bump(next)
		return true, next, f.Tracker().Update(ippoolsResource, next, "")
	})
	return f
}

func (f *fakeAPI) bump(p *v1beta1.IPPool) {
	rv, _ := strconv.Atoi(p.ResourceVersion)
	p.ResourceVersion = strconv.Itoa(rv + 1)
}

// store replaces the stored pool as another writer would (callable from beforeStatusWrite).
func (f *fakeAPI) store(p *v1beta1.IPPool) error {
	f.bump(p)
	return f.Tracker().Update(ippoolsResource, p, "")
}

func (f *fakeAPI) countActions(verb string) int {
	n := 0
	for _, a := range f.Actions() {
		if a.GetVerb() == verb && a.GetResource() == ippoolsResource {
			n++
		}
	}
	return n
}

func newFakeAllocator(t *testing.T, api *fakeAPI, opts Options) *Allocator {
	t.Helper()
	factory := externalversions.NewSharedInformerFactory(api, 0)
	a, err := NewAllocator(api, factory.Crd().V1beta1().IPPools(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("informer for %v did not sync", typ)
		}
	}
	return a
}

func request(containerID string, pools ...string) Request {
	return Request{Owner: Owner{Namespace: "ns", Name: "pod-" + containerID, ContainerID: containerID, IFName: "eth1"}, Pools: pools}
}

// waitFor polls cond until it holds; it fails the test after a generous bound, so it never
// decides a result by timing, only guards against hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRequestsQueuedDuringAWriteShareTheNextWrite(t *testing.T) {
	pool := testPool("coalesce", "10.1.0.1", 24, cidr("10.1.0.0/24"))
	api := newFakeAPI(t, pool)
	entered, release := make(chan struct{}), make(chan struct{})
	var updates atomic.Int32
	// Reactors run under the fake's lock: count here rather than through Actions().
	api.PrependReactor("update", "ippools", func(k8stesting.Action) (bool, runtime.Object, error) {
		if updates.Add(1) == 1 { // hold the first write until the others queued up
			close(entered)
			<-release
		}
		return false, nil, nil
	})
	a := newFakeAllocator(t, api, Options{})

	const queued = 20
	results := make(chan *Result, queued+1)
	errs := make(chan error, queued+1)
	allocate := func(id string) {
		res, err := a.Allocate(context.Background(), request(id, "coalesce"))
		results <- res
		errs <- err
	}
	go allocate("first")
	<-entered
	for i := range queued {
		go allocate(fmt.Sprintf("c%d", i))
	}
	w := a.existingWorker("coalesce")
	waitFor(t, "requests to queue behind the first write", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.queue) == queued
	})
	close(release)

	seen := map[string]bool{}
	for range queued + 1 {
		if err := <-errs; err != nil {
			t.Fatalf("allocate: %v", err)
		}
		addr := (<-results).IPs[0].Address.Addr().String()
		if seen[addr] {
			t.Fatalf("address %s handed out twice", addr)
		}
		seen[addr] = true
	}
	if st := a.Stats(); st.Writes != 2 || st.Operations != queued+1 {
		t.Fatalf("stats %+v: want the %d queued requests carried by one second write (2 writes, %d operations)", st, queued, queued+1)
	}
}

func TestWriteConflictRereadsThePoolFromTheAPIServer(t *testing.T) {
	pool := testPool("conflict", "10.2.0.1", 24, span("10.2.0.2", "10.2.0.3"))
	api := newFakeAPI(t, pool)
	// Another agent takes 10.2.0.2 just before our first write lands.
	api.beforeStatusWrite = func(n int, stored *v1beta1.IPPool) error {
		if n != 1 {
			return nil
		}
		other := stored.DeepCopy()
		o := owner("other-agent", "eth1")
		other.Status.IPAddresses = []v1beta1.IPAddressState{{IPAddress: "10.2.0.2", Phase: v1beta1.IPAddressPhaseAllocated,
			Owner: v1beta1.IPAddressOwner{Pod: &o}}}
		return api.store(other)
	}
	a := newFakeAllocator(t, api, Options{})
	getsBefore := api.countActions("get")

	res, err := a.Allocate(context.Background(), request("mine", "conflict"))
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	if got := res.IPs[0].Address.Addr().String(); got != "10.2.0.3" {
		t.Fatalf("got %s; want 10.2.0.3, the address the other agent left", got)
	}
	if st := a.Stats(); st.Conflicts != 1 || st.Writes != 1 {
		t.Fatalf("stats %+v; want 1 conflict then 1 write", st)
	}
	if api.countActions("get") <= getsBefore {
		t.Fatalf("no GET after the conflict: the pool must be re-read from the API server, not the cache")
	}
}

func TestConflictsUntilTheDeadlineGiveATypedError(t *testing.T) {
	pool := testPool("busy", "10.3.0.1", 24, cidr("10.3.0.0/28"))
	api := newFakeAPI(t, pool)
	var writes atomic.Int32
	api.beforeStatusWrite = func(_ int, stored *v1beta1.IPPool) error {
		writes.Add(1)
		return api.store(stored.DeepCopy()) // someone else always writes first
	}
	a := newFakeAllocator(t, api, Options{Timeout: 300 * time.Millisecond})

	_, err := a.Allocate(context.Background(), request("c1", "busy"))
	var conflict *WriteConflictError
	if !errors.As(err, &conflict) || conflict.Pool != "busy" || conflict.Attempts < 1 {
		t.Fatalf("got %v; want a WriteConflictError naming pool busy", err)
	}
	if !apierrors.IsConflict(err) {
		t.Fatalf("error %v does not carry the last conflict", err)
	}
}

func TestReleaseRightAfterAllocateFindsTheAddressBeforeTheCacheDoes(t *testing.T) {
	pool := testPool("fresh", "10.4.0.1", 24, cidr("10.4.0.0/28"))
	api := newFakeAPI(t, pool)
	a := newFakeAllocator(t, api, Options{})
	req := request("c1", "fresh")
	if _, err := a.Allocate(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(context.Background(), req.Owner); err != nil {
		t.Fatal(err)
	}
	stored, err := api.CrdV1beta1().IPPools().Get(context.Background(), "fresh", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Status.IPAddresses) != 0 || stored.Status.Usage.Used != 0 {
		t.Fatalf("status after release: %+v", stored.Status)
	}
}
