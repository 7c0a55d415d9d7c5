// Command hotplug measures how long a running Pod waits for a network added by annotating it:
// from the annotation patch to the interface with its address inside the Pod, and to the
// podvlan.io/SecondaryNetworksReady condition True, for Pods annotated one after another.
// The Pods' sandboxes went through the chained ADD without networks (the shim answered alone and
// recorded them) more than podnetworks.SettleTime before.
//
//	go run ./hack/bench/hotplug [-pods 50] [-out _output/bench/hotplug.json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	bh "github.com/podvlan/podvlan/internal/benchharness"
	"github.com/podvlan/podvlan/pkg/agent/podnetworks"
)

// Report is hotplug.json.
type Report struct {
	Benchmark string `json:"benchmark"`
	Pods      int    `json:"pods"`
	// Interface is annotation patch to eth1 with its address in the Pod; Condition is to the
	// condition True as the API server returns it.
	Interface bh.Stats    `json:"interface"`
	Condition bh.Stats    `json:"condition"`
	Samples   []Sample    `json:"samples"`
	Targets   []bh.Target `json:"targets"`
	Machine   bh.Machine  `json:"machine"`
}

// Sample is one Pod's figures, in milliseconds.
type Sample struct {
	Interface float64 `json:"interface_ms"`
	Condition float64 `json:"condition_ms"`
}

// deadline is the promise for the first attachment of a running Pod.
const deadline = 2 * time.Second

func main() {
	pods := flag.Int("pods", 50, "Pods to annotate one after another")
	out := flag.String("out", "", "JSON output (default <repo>/_output/bench/hotplug.json)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *pods, *out); err != nil {
		fmt.Fprintln(os.Stderr, "hotplug bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, pods int, out string) error {
	b, err := bh.Start(ctx, "hotplug")
	if err != nil {
		return err
	}
	c, namespace, cleanup := b.Cluster, b.Namespace, &b.Cleanup
	defer cleanup.Run()
	if out == "" {
		out = filepath.Join(c.OutputDir(), "hotplug.json")
	}
	node, agent, networks, err := b.AgentNode(ctx, "pvbh-", 100)
	if err != nil {
		return err
	}
	network := networks[0]

	fmt.Printf("Starting %d Pods without networks\n", pods)
	sandboxes := make([]*bh.Sandbox, pods)
	for i := range pods {
		sb, err := c.NewSandbox(ctx, node.Name, namespace, fmt.Sprintf("h-%03d", i), "")
		if err != nil {
			return err
		}
		sandboxes[i] = sb
		cleanup.Add(func() { bh.DeleteNetNS(context.Background(), sb.NetNS) })
	}
	cni := bh.NewCNI(b.Bins, filepath.Join(node.Dir, "cni-cache"))
	if err := cni.AttachAll(ctx, agent, sandboxes, 4); err != nil {
		return err
	}
	cleanup.Add(func() {
		if err := cni.DetachAll(context.Background(), agent, sandboxes, 4); err != nil {
			fmt.Fprintln(os.Stderr, "hotplug bench:", err)
		}
	})
	time.Sleep(podnetworks.SettleTime)

	fmt.Printf("Annotating %d Pods with %s, one after another\n", pods, network.Name)
	rep := Report{Benchmark: "hotplug", Pods: pods, Machine: bh.NewMachine(), Samples: make([]Sample, pods)}
	var ifaces, conds []time.Duration
	for i, sb := range sandboxes {
		iface, cond, err := annotate(ctx, c, sb, network.Name)
		if err != nil {
			return fmt.Errorf("Pod %s: %w\nagent log:\n%s", sb.Pod.Name, err, agent.LogTail(20))
		}
		ifaces, conds = append(ifaces, iface), append(conds, cond)
		rep.Samples[i] = Sample{Interface: bh.Millis(iface), Condition: bh.Millis(cond)}
	}
	if _, err := c.WaitPoolAllocations(ctx, network.Pool, pods, 15*time.Second); err != nil {
		return fmt.Errorf("%d annotated Pods: %w", pods, err)
	}
	rep.Interface, rep.Condition = bh.Summarize(ifaces), bh.Summarize(conds)
	limit := float64(deadline.Milliseconds())
	rep.Targets = []bh.Target{
		bh.NewTarget("hotplug", "annotation to interface ready, p99", rep.Interface.P99, limit, "ms",
			fmt.Sprintf("p50 %.0f ms over %d Pods", rep.Interface.P50, pods)),
		bh.NewTarget("hotplug", "annotation to condition True, p99", rep.Condition.P99, limit, "ms",
			fmt.Sprintf("p50 %.0f ms over %d Pods", rep.Condition.P50, pods)),
	}
	rep.Machine.Finish()
	fmt.Printf("annotation -> eth1 with its address:   p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", rep.Interface.P50, rep.Interface.P99, rep.Interface.Max)
	fmt.Printf("annotation -> condition True (API):    p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", rep.Condition.P50, rep.Condition.P99, rep.Condition.Max)
	fmt.Println("(the agent's informer delivers the annotation, the controller attaches, then writes network-status and the condition)")
	bh.PrintTargets(os.Stdout, rep.Targets)
	fmt.Printf("load average %s -> %s, %.0f s\n", rep.Machine.LoadStart, rep.Machine.LoadEnd, rep.Machine.DurationSec)
	if err := bh.WriteJSON(out, rep); err != nil {
		return err
	}
	fmt.Println("Wrote", out)
	return nil
}

// annotate patches the Pod's annotation and returns how long until eth1 had an IPv4 address in
// the sandbox, and until the API server returned the condition True.
func annotate(ctx context.Context, c *bh.Cluster, sb *bh.Sandbox, network string) (time.Duration, time.Duration, error) {
	handle, err := netns.GetFromPath(sb.NetNSPath())
	if err != nil {
		return 0, 0, err
	}
	defer handle.Close()
	nl, err := netlink.NewHandleAt(handle)
	if err != nil {
		return 0, 0, err
	}
	defer nl.Close()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{nadv1.NetworkAttachmentAnnot: network}}})
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := c.Kube.CoreV1().Pods(sb.Pod.Namespace).Patch(ctx, sb.Pod.Name, k8stypes.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return 0, 0, err
	}
	for !hasAddress(nl, "eth1") {
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return 0, 0, errors.New("eth1 got no address within 30 s")
		}
	}
	iface := time.Since(start)
	for {
		pod, err := c.Kube.CoreV1().Pods(sb.Pod.Namespace).Get(ctx, sb.Pod.Name, metav1.GetOptions{})
		if err != nil {
			return 0, 0, err
		}
		if cond := podnetworks.FindCondition(pod, podnetworks.ConditionType); cond != nil && cond.Status == corev1.ConditionTrue {
			return iface, time.Since(start), nil
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return 0, 0, errors.New("the condition did not turn True within 30 s")
		}
	}
}

func hasAddress(nl *netlink.Handle, name string) bool {
	link, err := nl.LinkByName(name)
	if err != nil {
		return false
	}
	addrs, err := nl.AddrList(link, netlink.FAMILY_V4)
	return err == nil && len(addrs) > 0
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
