package teststack

import (
	"context"
	"fmt"
	"maps"
	"os/exec"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/cni/shim"
)

// The one container-runtime stand-in of the project: the e2e tests, the bench harness and
// hack/sandbox make Pod sandboxes and call CNI through libcni with what is here, as containerd does.

// ReferencePlugins is where Debian's containernetworking-plugins keeps bridge and host-local.
const ReferencePlugins = "/usr/lib/cni"

// PodAnnotationsCapability is the CNI capability through which containerd and CRI-O hand a plugin
// the Pod's annotations (runtimeConfig key of the same name).
const PodAnnotationsCapability = shim.PodAnnotationsCapability

// Sandbox is a Pod sandbox made in place of a container runtime: a Pod object (bound to a Node,
// run by no kubelet), a network namespace and a container ID.
type Sandbox struct {
	Pod         *corev1.Pod
	NetNS       string // name under /var/run/netns
	ContainerID string
}

// NetNSPath is the sandbox namespace's path.
func (s *Sandbox) NetNSPath() string { return "/var/run/netns/" + s.NetNS }

// RuntimeConf is what the runtime passes to CNI for the interface ifName: the Kubernetes CNI_ARGS
// and the Pod's annotations as a capability argument (libcni hands it only to plugins that declare
// the capability).
func (s *Sandbox) RuntimeConf(ifName string) *libcni.RuntimeConf {
	annotations := map[string]string{}
	maps.Copy(annotations, s.Pod.Annotations)
	return &libcni.RuntimeConf{
		CapabilityArgs: map[string]any{PodAnnotationsCapability: annotations},
		ContainerID:    s.ContainerID,
		NetNS:          s.NetNSPath(),
		IfName:         ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "true"},
			{"K8S_POD_NAMESPACE", s.Pod.Namespace},
			{"K8S_POD_NAME", s.Pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", s.ContainerID},
			{"K8S_POD_UID", string(s.Pod.UID)},
		},
	}
}

// SandboxPod is the Pod object of a sandbox: bound to node (a kubelet, if any, would run it, so
// tests use simulated Nodes or a sandbox of their own), asking for networks (the
// k8s.v1.cni.cncf.io/networks annotation, none when empty).
func SandboxPod(node, namespace, name, networks string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{NodeName: node, AutomountServiceAccountToken: new(false),
			Containers: []corev1.Container{{Name: "c", Image: "none"}}},
	}
	if networks != "" {
		pod.Annotations = map[string]string{nadv1.NetworkAttachmentAnnot: networks}
	}
	return pod
}

// NewPodNetNS creates a network namespace as a runtime does for a sandbox: loopback up, IPv6 off
// (so that no DAD or router solicitation runs during a test or a measurement).
func NewPodNetNS(ctx context.Context, name string) error {
	for _, args := range [][]string{
		{"netns", "add", name},
		{"netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"},
		{"-n", name, "link", "set", "lo", "up"},
	} {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// InNetNS runs f in the named network namespace, or in the caller's when netns is empty: plugins
// libcni execs from f run where a Node's OVS and agent live, as they would on that Node.
func InNetNS(netns string, f func() error) error {
	if netns == "" {
		return f()
	}
	return ns.WithNetNSPath("/var/run/netns/"+netns, func(ns.NetNS) error { return f() })
}

// PrimaryChain is a Node's primary network (bridge + host-local) with antrea chained after it, as
// the agent's install step writes it.
type PrimaryChain struct {
	Name         string // the list's name
	CNIVersion   string
	Bridge       string // the bridge plugin's bridge
	Subnet       string // host-local's subnet
	HostLocalDir string // host-local's dataDir
	Socket       string // the agent's CNI socket
	// DefaultRoute makes host-local give the Pod a default route through the subnet's first
	// address, as a real primary network does.
	DefaultRoute bool
	// PodAnnotations makes the antrea entry declare the pod-annotations capability, as the install
	// step does; without it the shim asks the agent for every Pod, as under a runtime that passes
	// no annotations.
	PodAnnotations bool
}

// ConfList returns the chain as libcni loads it from a .conflist file.
func (p PrimaryChain) ConfList() (*libcni.NetworkConfigList, error) {
	routes, capabilities := "", ""
	if p.DefaultRoute {
		routes = `, "routes": [{"dst": "0.0.0.0/0"}]`
	}
	if p.PodAnnotations {
		capabilities = fmt.Sprintf(`, "capabilities": {%q: true}`, PodAnnotationsCapability)
	}
	conf := fmt.Sprintf(`{"cniVersion": %q, "name": %q, "plugins": [
	  {"type": "bridge", "bridge": %q, "isGateway": false, "ipMasq": false,
	   "ipam": {"type": "host-local", "subnet": %q, "dataDir": %q%s}},
	  {"type": "antrea", "cniSocket": %q%s}]}`,
		p.CNIVersion, p.Name, p.Bridge, p.Subnet, p.HostLocalDir, routes, p.Socket, capabilities)
	return libcni.ConfListFromBytes([]byte(conf))
}

// StatusConfList is the single antrea entry a runtime asks CNI STATUS with.
func StatusConfList(socket string) (*libcni.NetworkConfigList, error) {
	conf, err := libcni.NetworkPluginConfFromBytes([]byte(fmt.Sprintf(
		`{"cniVersion":"1.1.0","name":"status","type":"antrea","cniSocket":%q}`, socket)))
	if err != nil {
		return nil, err
	}
	//nolint:staticcheck // SA1019: a single .conf is what a runtime still converts, as containerd does
	return libcni.ConfListFromConf(conf)
}
