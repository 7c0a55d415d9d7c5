package ipam

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	"github.com/podvlan/podvlan/pkg/client/informers/externalversions"
)

// realCluster is the test cluster's API server with the project's CRDs installed.
type realCluster struct {
	cfg   *rest.Config
	admin versioned.Interface
}

func newRealCluster(t *testing.T) *realCluster {
	t.Helper()
	c := teststack.LocalCluster(t)
	c.InstallCRDs(t)
	cfg := c.RestConfig(t)
	return &realCluster{cfg: cfg, admin: versioned.NewForConfigOrDie(cfg)}
}

// Subnets for test pools: a random 10.x.0.0/16 (and fdxx:xxxx::/32) per test process, one /24
// (/64) per pool, so that tests never share addresses with each other or with other processes.
var (
	subnetBase = 100 + rand.IntN(150)
	v6Base     = rand.Uint32()
	subnetSeq  atomic.Int32
)

// nextV4 returns a fresh 10.x.y.0/24 as "10.x.y." for building addresses (y < 252).
func nextV4() string { return fmt.Sprintf("10.%d.%d.", subnetBase, subnetSeq.Add(1)%252) }

// wideV4 is the network address of the process's one /22 (10.x.252.0/22), kept apart from nextV4.
var wideV4 = fmt.Sprintf("10.%d.252.0", subnetBase)

// nextV6 returns a fresh fdxx:xxxx:y::/64 as "fdxx:xxxx:y::" for building addresses.
func nextV6() string {
	return fmt.Sprintf("fd%02x:%04x:%x::", v6Base>>24, v6Base&0xffff, subnetSeq.Add(1))
}

// createPool creates an IPPool with a unique name and deletes it when the test ends.
func (c *realCluster) createPool(t *testing.T, prefix string, spec v1beta1.IPPoolSpec) string {
	t.Helper()
	name := fmt.Sprintf("%s-%08x", prefix, rand.Uint32())
	ctx := context.Background()
	_, err := c.admin.CrdV1beta1().IPPools().Create(ctx,
		&v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create IPPool %s: %v", name, err)
	}
	c.cleanupPool(t, name)
	return name
}

// cleanupPool deletes a pool when the test ends.
func (c *realCluster) cleanupPool(t *testing.T, name string) {
	ctx := context.Background()
	t.Cleanup(func() {
		// Empty the status first: an admission webhook may refuse to delete a pool in use.
		if p, err := c.admin.CrdV1beta1().IPPools().Get(ctx, name, metav1.GetOptions{}); err == nil {
			p.Status = v1beta1.IPPoolStatus{}
			_, _ = c.admin.CrdV1beta1().IPPools().UpdateStatus(ctx, p, metav1.UpdateOptions{})
		}
		if err := c.admin.CrdV1beta1().IPPools().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Logf("delete IPPool %s: %v", name, err)
		}
	})
}

// v4Pool creates an IPv4 pool on a fresh /24 with the given ranges (host parts appended to the
// subnet) and gateway host part; it returns the pool's name and the subnet text prefix.
func (c *realCluster) v4Pool(t *testing.T, vlan int32, gatewayHost string, ranges ...v1beta1.IPRange) (string, string) {
	t.Helper()
	net := nextV4()
	for i := range ranges {
		if ranges[i].CIDR != "" {
			ranges[i].CIDR = net + ranges[i].CIDR
		} else {
			ranges[i].Start, ranges[i].End = net+ranges[i].Start, net+ranges[i].End
		}
	}
	return c.createPool(t, "ipam-v4", v1beta1.IPPoolSpec{IPRanges: ranges,
		SubnetInfo: v1beta1.SubnetInfo{Gateway: net + gatewayHost, PrefixLength: 24, VLAN: vlan}}), net
}

// newAllocator returns an Allocator with its own client, connection and informer, as one agent
// on one Node would have.
func (c *realCluster) newAllocator(t *testing.T, opts Options) *Allocator {
	t.Helper()
	cfg := rest.CopyConfig(c.cfg)
	// A custom dialer keeps client-go from sharing the cached transport: one connection per "Node".
	cfg.Dial = (&net.Dialer{}).DialContext
	client := versioned.NewForConfigOrDie(cfg)
	factory := externalversions.NewSharedInformerFactory(client, 0)
	a, err := NewAllocator(client, factory.Crd().V1beta1().IPPools(), opts)
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

// status reads a pool's status from the API server.
func (c *realCluster) status(t *testing.T, pool string) v1beta1.IPPoolStatus {
	t.Helper()
	p, err := c.admin.CrdV1beta1().IPPools().Get(context.Background(), pool, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get IPPool %s: %v", pool, err)
	}
	return p.Status
}

// heldBy maps each recorded address to its owner's container ID and interface.
func heldBy(st v1beta1.IPPoolStatus) map[netip.Addr]string {
	out := map[netip.Addr]string{}
	for _, e := range st.IPAddresses {
		a := netip.MustParseAddr(e.IPAddress)
		if _, dup := out[a]; dup {
			out[a] = "DUPLICATE"
			continue
		}
		out[a] = e.Owner.Pod.ContainerID + "/" + e.Owner.Pod.IFName
	}
	return out
}

func podOwner(containerID, ifName string) Owner {
	return Owner{Namespace: "ns-" + containerID, Name: "pod-" + containerID, UID: "uid-" + containerID,
		ContainerID: containerID, IFName: ifName}
}
