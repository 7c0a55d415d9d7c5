package benchharness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/ipam"
)

// Network is a VLAN network made for a benchmark: a NetworkAttachmentDefinition of type antrea
// with IPv4 IPAM from an IPPool of its own (a /24 whose addresses .2-.253 are allocatable).
type Network struct {
	Namespace string
	Name      string
	Pool      string
	VLAN      int
	Subnet    string
}

// CreateNetwork creates the IPPool (on a random 10.200-249.x.0/24) and the NAD.
func (c *Cluster) CreateNetwork(ctx context.Context, namespace, name string, vlan int) (*Network, error) {
	prefix := fmt.Sprintf("10.%d.%d", 200+rand.IntN(50), rand.IntN(256))
	n := &Network{Namespace: namespace, Name: name, Pool: UniqueName("pvbench-"), VLAN: vlan, Subnet: prefix + ".0/24"}
	pool := teststack.Pool24(n.Pool, prefix, 2, 253, vlan)
	pool.Labels = map[string]string{"podvlan.io/bench": "true"}
	err := retryWebhook(ctx, func(ctx context.Context) error {
		_, err := c.CRD.CrdV1beta1().IPPools().Create(ctx, pool, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create IPPool %s: %w", n.Pool, err)
	}
	nadCtx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	_, err = c.NAD.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace).Create(nadCtx,
		teststack.NAD(namespace, name, teststack.VLANNetworkConfig(vlan, n.Pool)), metav1.CreateOptions{})
	if err != nil {
		c.deletePool(n.Pool)
		return nil, fmt.Errorf("create NetworkAttachmentDefinition %s/%s: %w", namespace, name, err)
	}
	return n, nil
}

// DeleteNetwork removes the NAD and the IPPool (release every allocation first: a pool with live
// allocations may be protected by the admission webhook).
func (c *Cluster) DeleteNetwork(n *Network) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	err := c.NAD.K8sCniCncfIoV1().NetworkAttachmentDefinitions(n.Namespace).Delete(ctx, n.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		fmt.Fprintf(os.Stderr, "bench: delete NetworkAttachmentDefinition %s/%s: %v\n", n.Namespace, n.Name, err)
	}
	c.deletePool(n.Pool)
}

func (c *Cluster) deletePool(name string) {
	err := retryWebhook(context.Background(), func(ctx context.Context) error {
		err := c.CRD.CrdV1beta1().IPPools().Delete(ctx, name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: delete IPPool %s: %v\n", name, err)
	}
}

// webhookPatience is how long IPPool writes are retried while the IPPool admission webhook is
// registered but not answering (another session may be deploying the controller meanwhile).
const webhookPatience = 2 * time.Minute

// retryWebhook retries f while the API server cannot reach an admission webhook.
func retryWebhook(ctx context.Context, f func(context.Context) error) error {
	deadline := time.Now().Add(webhookPatience)
	for {
		callCtx, cancel := context.WithTimeout(ctx, apiTimeout)
		err := f(callCtx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "failed calling webhook") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(2 * time.Second):
		}
	}
}

// PoolAllocations returns "address owner-container/ifname" for every address the pool records, in
// its status and in its IPPoolBlocks (whose holders a Node reports about a second late).
func (c *Cluster) PoolAllocations(ctx context.Context, pool string) (map[string]string, error) {
	_, held, err := ipam.ReadPoolHolders(ctx, c.CRD, pool)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, a := range held {
		owner := ""
		if a.Owner.Pod != nil {
			owner = a.Owner.Pod.ContainerID + "/" + a.Owner.Pod.IFName
		}
		out[a.IPAddress] = owner
	}
	return out, nil
}

// WaitPoolAllocations polls PoolAllocations until the pool records n addresses, for at most
// timeout: a Node reports the holders of its IPPoolBlocks about a second after they change.
func (c *Cluster) WaitPoolAllocations(ctx context.Context, pool string, n int, timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		allocs, err := c.PoolAllocations(ctx, pool)
		if err != nil {
			return nil, err
		}
		if len(allocs) == n {
			return allocs, nil
		}
		if time.Now().After(deadline) {
			return allocs, fmt.Errorf("IPPool %s records %d addresses after %s, want %d", pool, len(allocs), timeout, n)
		}
		select {
		case <-ctx.Done():
			return allocs, fmt.Errorf("IPPool %s records %d addresses, want %d: %w", pool, len(allocs), n, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
