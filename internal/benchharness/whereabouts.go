package benchharness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podvlan/podvlan/internal/teststack"
)

// Whereabouts is the IPAM peer the ipam benchmark compares the agent's allocator with: the
// Whereabouts plugin (hack/tools/whereabouts) run the way a CNI plugin runs it, one process per
// allocation, against the local cluster's API server. Its IPPools and its lease live in a
// namespace of the benchmark's, through a kubeconfig whose context names that namespace.
type Whereabouts struct {
	binary     string
	kubeconfig string
	flatConfig string
	namespace  string
	cluster    *Cluster
}

// whereaboutsResources are what Whereabouts writes in its namespace, removed at the end.
var whereaboutsResources = []schema.GroupVersionResource{
	{Group: "whereabouts.cni.cncf.io", Version: "v1alpha1", Resource: "ippools"},
	{Group: "whereabouts.cni.cncf.io", Version: "v1alpha1", Resource: "overlappingrangeipreservations"},
	{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"},
}

// NewWhereabouts installs Whereabouts' CRDs (from the pinned module's doc/crds) and writes its
// kubeconfig: the admin one with namespace as its context's namespace.
func (b *Bench) NewWhereabouts(ctx context.Context) (*Whereabouts, error) {
	c := b.Cluster
	dir, err := moduleDir(ctx, filepath.Join(c.Root, "hack", "tools", "whereabouts"), "github.com/k8snetworkplumbingwg/whereabouts")
	if err != nil {
		return nil, err
	}
	crdCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := teststack.ApplyCRDs(crdCtx, c.Config, filepath.Join(dir, "doc", "crds")); err != nil {
		return nil, fmt.Errorf("Whereabouts CRDs: %w", err)
	}
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	kctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("%s has no current context", c.Kubeconfig)
	}
	kctx.Namespace = b.Namespace
	kubeconfig := filepath.Join(c.OutputDir(), "run", "whereabouts-"+b.Namespace+".kubeconfig")
	if err := os.MkdirAll(filepath.Dir(kubeconfig), 0o755); err != nil {
		return nil, err
	}
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		return nil, err
	}
	// Whereabouts reads its flat configuration file (which its DaemonSet installs on every Node
	// under /etc/cni/net.d) before the IPAM section, and refuses to run without one: the
	// benchmark's names the kubeconfig, and the IPAM section points at it.
	flat := filepath.Join(c.OutputDir(), "run", "whereabouts-"+b.Namespace+".conf")
	data, err := json.Marshal(map[string]any{"datastore": "kubernetes", "kubernetes": map[string]any{"kubeconfig": kubeconfig}})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(flat, data, 0o600); err != nil {
		return nil, err
	}
	w := &Whereabouts{binary: b.Bins.Whereabouts(), kubeconfig: kubeconfig, flatConfig: flat, namespace: b.Namespace, cluster: c}
	b.Cleanup.Add(func() { w.deleteState(); _ = os.Remove(kubeconfig); _ = os.Remove(flat) })
	return w, nil
}

// moduleDir is where the Go module cache holds module at the version the go.mod in toolDir pins.
func moduleDir(ctx context.Context, toolDir, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = toolDir
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		// Not downloaded yet (go list -m does not download).
		dl := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
		dl.Dir = toolDir
		out, err := dl.Output()
		if err != nil {
			return "", fmt.Errorf("go mod download %s in %s: %w", module, toolDir, err)
		}
		var info struct{ Dir string }
		if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
			return "", fmt.Errorf("go mod download %s: no directory in %q", module, out)
		}
		dir = info.Dir
	}
	return dir, nil
}

// Allocate runs Whereabouts' ADD for one Pod on network (its own IP range, subnet) and returns
// the address it was given.
func (w *Whereabouts) Allocate(ctx context.Context, network, subnet, pod, containerID string) (netip.Addr, error) {
	stdin, err := w.stdin(network, subnet)
	if err != nil {
		return netip.Addr{}, err
	}
	res, err := invoke.ExecPluginWithResult(ctx, w.binary, stdin, w.args("ADD", pod, containerID), nil)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("whereabouts ADD of %s: %w", pod, err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(r.IPs) == 0 {
		return netip.Addr{}, fmt.Errorf("whereabouts ADD of %s: no address", pod)
	}
	addr, ok := netip.AddrFromSlice(r.IPs[0].Address.IP)
	if !ok {
		return netip.Addr{}, fmt.Errorf("whereabouts ADD of %s: address %v", pod, r.IPs[0].Address.IP)
	}
	return addr.Unmap(), nil
}

func (w *Whereabouts) stdin(network, subnet string) ([]byte, error) {
	return json.Marshal(map[string]any{"cniVersion": CNIVersion, "name": network, "type": "bench",
		"ipam": map[string]any{"type": "whereabouts", "range": subnet, "network_name": network,
			"configuration_path": w.flatConfig, "kubernetes": map[string]any{"kubeconfig": w.kubeconfig}}})
}

func (w *Whereabouts) args(command, pod, containerID string) *invoke.Args {
	return &invoke.Args{Command: command, ContainerID: containerID, NetNS: "/var/run/netns/" + pod, IfName: "net1",
		PluginArgs: [][2]string{{"IgnoreUnknown", "true"}, {"K8S_POD_NAMESPACE", w.namespace}, {"K8S_POD_NAME", pod}},
		Path:       filepath.Dir(w.binary)}
}

// deleteState removes Whereabouts' IPPools, reservations and lease from its namespace (no
// namespace controller runs in the local cluster to do it).
func (w *Whereabouts) deleteState() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(w.cluster.Config)
	if err != nil {
		return
	}
	for _, r := range whereaboutsResources {
		err := dyn.Resource(r).Namespace(w.namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: delete %s in %s: %v\n", r.Resource, w.namespace, err)
		}
	}
}
