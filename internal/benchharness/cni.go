package benchharness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
)

// CNIVersion is the version of the configurations the harness writes.
const CNIVersion = "1.0.0"

// CNI runs CNI plugins the way a container runtime does (libcni), timing each plugin it runs.
type CNI struct {
	config *libcni.CNIConfig
	bins   Binaries
}

// NewCNI returns a runner that finds the shim in bins and the primary plugins in the reference
// plugin directory; cacheDir is libcni's result cache (empty: a temporary place is not needed for
// STATUS).
func NewCNI(bins Binaries, cacheDir string) *CNI { return newCNI(bins, cacheDir, os.Stderr) }

// newCNI is NewCNI with the plugins' standard error going to stderr.
func newCNI(bins Binaries, cacheDir string, stderr io.Writer) *CNI {
	exec := &timedExec{inner: &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: stderr}, PluginDecoder: version.PluginDecoder{}}}
	return &CNI{config: libcni.NewCNIConfigWithCacheDir([]string{bins.Dir, teststack.ReferencePlugins}, cacheDir, exec), bins: bins}
}

// Steps are the plugins one CNI call ran, in order, with how long each took.
type Steps []Step

// Step is one plugin run.
type Step struct {
	Plugin   string
	Command  string
	Duration time.Duration
}

// Of returns the total time of the runs of plugin.
func (s Steps) Of(plugin string) time.Duration {
	var d time.Duration
	for _, st := range s {
		if st.Plugin == plugin {
			d += st.Duration
		}
	}
	return d
}

type stepsKey struct{}

type stepRecorder struct {
	mu    sync.Mutex
	steps Steps
}

// timedExec times every plugin run and records it on the recorder its context carries.
type timedExec struct{ inner invoke.Exec }

func (e *timedExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	start := time.Now()
	out, err := e.inner.ExecPlugin(ctx, pluginPath, stdin, environ)
	if rec, ok := ctx.Value(stepsKey{}).(*stepRecorder); ok {
		command := ""
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, "CNI_COMMAND="); ok {
				command = v
			}
		}
		rec.mu.Lock()
		rec.steps = append(rec.steps, Step{Plugin: filepath.Base(pluginPath), Command: command, Duration: time.Since(start)})
		rec.mu.Unlock()
	}
	return out, err
}

func (e *timedExec) FindInPath(plugin string, paths []string) (string, error) {
	return e.inner.FindInPath(plugin, paths)
}

func (e *timedExec) Decode(data []byte) (version.PluginInfo, error) { return e.inner.Decode(data) }

// ChainedList is a Node's primary network (bridge + host-local) with antrea chained after it, as
// the agent's install step writes it.
func ChainedList(agent *Agent, primarySubnet string) (*libcni.NetworkConfigList, error) {
	return teststack.PrimaryChain{Name: "bench-primary", CNIVersion: CNIVersion, Bridge: "pvprim0", Subnet: primarySubnet,
		HostLocalDir: filepath.Join(agent.Node.Dir, "host-local"), Socket: agent.Socket, PodAnnotations: true}.ConfList()
}

// Add runs CNI ADD of list for the sandbox's primary interface eth0 on the Node, and returns what
// each plugin took.
func (c *CNI) Add(ctx context.Context, node *Node, list *libcni.NetworkConfigList, sb *Sandbox) (Steps, error) {
	return c.runList(ctx, node, list, sb.RuntimeConf("eth0"), true)
}

// Del runs CNI DEL of list.
func (c *CNI) Del(ctx context.Context, node *Node, list *libcni.NetworkConfigList, sb *Sandbox) (Steps, error) {
	return c.runList(ctx, node, list, sb.RuntimeConf("eth0"), false)
}

// runList runs ADD (add) or DEL of list in the Node's namespace and returns what each plugin took.
func (c *CNI) runList(ctx context.Context, node *Node, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf, add bool) (Steps, error) {
	rec := &stepRecorder{}
	ctx = context.WithValue(ctx, stepsKey{}, rec)
	err := node.Do(func() error {
		if add {
			_, err := c.config.AddNetworkList(ctx, list, rt)
			return err
		}
		return c.config.DelNetworkList(ctx, list, rt)
	})
	return rec.steps, err
}

func jsonString(v any) (string, error) {
	data, err := json.Marshal(v)
	return string(data), err
}

// countPorts counts the ports on a bridge of the Node.
func countPorts(ctx context.Context, node *Node, bridge string) (int, error) {
	out, err := node.Vsctl(ctx, "list-ports", bridge)
	if err != nil {
		return 0, err
	}
	return len(strings.Fields(out)), nil
}

// ExecShim runs the antrea entry of a chained list alone (ADD or DEL), with a primary result as
// prevResult, the way libcni runs the last plugin of a list. The shim only talks to the agent's
// socket, so it runs in the caller's namespace.
func (c *CNI) ExecShim(ctx context.Context, agent *Agent, command string, sb *Sandbox) (time.Duration, error) {
	return c.ExecShimAt(ctx, agent.Socket, command, sb)
}

// ExecShimAt is ExecShim against the agent (or NullAgent) serving socket.
func (c *CNI) ExecShimAt(ctx context.Context, socket, command string, sb *Sandbox) (time.Duration, error) {
	return c.ExecChained(ctx, c.bins.Shim(), socket, command, sb)
}

// ExecFloor runs the exec floor in the shim's place, with the same input: the least any chained
// plugin costs.
func (c *CNI) ExecFloor(ctx context.Context, command string, sb *Sandbox) (time.Duration, error) {
	return c.ExecChained(ctx, c.bins.ExecFloor(), "", command, sb)
}

// ChainedStdin is the configuration libcni gives the last plugin of the chained list: the
// primary result as prevResult on ADD, and the Pod's annotations as the runtime passes them to a
// plugin that declares the pod-annotations capability (the shim answers a Pod that asks for no
// secondary network from them, without the agent).
func ChainedStdin(pluginType, socket, command string, sb *Sandbox) ([]byte, error) {
	annotations := map[string]string{}
	maps.Copy(annotations, sb.Pod.Annotations)
	conf := map[string]any{"cniVersion": CNIVersion, "name": "bench-primary", "type": pluginType,
		"capabilities":  map[string]bool{teststack.PodAnnotationsCapability: true},
		"runtimeConfig": map[string]any{teststack.PodAnnotationsCapability: annotations}}
	if socket != "" {
		conf["cniSocket"] = socket
	}
	if command == "ADD" {
		conf["prevResult"] = map[string]any{"cniVersion": CNIVersion,
			"interfaces": []any{map[string]any{"name": "eth0", "sandbox": sb.NetNSPath()}}}
	}
	return json.Marshal(conf)
}

// ExecChained runs binary as the last plugin of the chained list (see ChainedStdin) and returns
// how long it took.
func (c *CNI) ExecChained(ctx context.Context, binary, socket, command string, sb *Sandbox) (time.Duration, error) {
	stdin, err := ChainedStdin(filepath.Base(binary), socket, command, sb)
	if err != nil {
		return 0, err
	}
	rt := sb.RuntimeConf("eth0")
	args := &invoke.Args{Command: command, ContainerID: rt.ContainerID, NetNS: rt.NetNS, IfName: rt.IfName,
		PluginArgs: rt.Args, Path: c.bins.Dir}
	start := time.Now()
	if command == "ADD" {
		_, err = invoke.ExecPluginWithResult(ctx, binary, stdin, args, nil)
	} else {
		err = invoke.ExecPluginWithoutResult(ctx, binary, stdin, args, nil)
	}
	return time.Since(start), err
}

// Sandbox is a Pod sandbox made in place of a container runtime.
type Sandbox = teststack.Sandbox

// NewSandbox creates the Pod object, annotated with the networks it asks for, and its namespace.
func (c *Cluster) NewSandbox(ctx context.Context, node, namespace, name, networks string) (*Sandbox, error) {
	pod, err := c.CreatePod(ctx, node, namespace, name, networks)
	if err != nil {
		return nil, err
	}
	sb := &Sandbox{Pod: pod, NetNS: UniqueName("pvbs-"), ContainerID: NewContainerID()}
	if err := teststack.NewPodNetNS(ctx, sb.NetNS); err != nil {
		return nil, err
	}
	return sb, nil
}

// NewContainerID returns a random container ID, as a runtime gives every new sandbox.
func NewContainerID() string { return UniqueName("bench") + UniqueName("") + UniqueName("") }

// CreatePod creates a Pod object bound to node; networks, when not empty, is its
// k8s.v1.cni.cncf.io/networks annotation.
func (c *Cluster) CreatePod(ctx context.Context, node, namespace, name, networks string) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	created, err := c.Kube.CoreV1().Pods(namespace).Create(ctx, teststack.SandboxPod(node, namespace, name, networks), metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create Pod %s/%s: %w", namespace, name, err)
	}
	return created, nil
}

// DeleteNetNS removes a network namespace if it exists.
func DeleteNetNS(ctx context.Context, name string) {
	if _, err := os.Stat("/var/run/netns/" + name); err != nil {
		return
	}
	if _, err := Run(ctx, "ip", "netns", "del", name); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	}
}

// AttachAll runs CNI ADD through the shim for every sandbox, workers at a time.
func (c *CNI) AttachAll(ctx context.Context, agent *Agent, sandboxes []*Sandbox, workers int) error {
	return ForEach(ctx, len(sandboxes), workers, func(i int) error {
		if _, err := c.ExecShim(ctx, agent, "ADD", sandboxes[i]); err != nil {
			return fmt.Errorf("ADD of %s/%s: %w", sandboxes[i].Pod.Namespace, sandboxes[i].Pod.Name, err)
		}
		return nil
	})
}

// DetachAll runs CNI DEL through the shim for every sandbox, workers at a time.
func (c *CNI) DetachAll(ctx context.Context, agent *Agent, sandboxes []*Sandbox, workers int) error {
	return ForEach(ctx, len(sandboxes), workers, func(i int) error {
		if _, err := c.ExecShim(ctx, agent, "DEL", sandboxes[i]); err != nil {
			return fmt.Errorf("DEL of %s/%s: %w", sandboxes[i].Pod.Namespace, sandboxes[i].Pod.Name, err)
		}
		return nil
	})
}
