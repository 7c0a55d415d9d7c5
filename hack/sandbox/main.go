// Command sandbox plays the container runtime for the local cluster's simulated Nodes, which have
// no kubelet: it creates a Pod's network namespace and runs CNI ADD or DEL through libcni with a
// configuration list that chains `antrea` after the primary plugins, as containerd would.
//
//	sandbox add -node-netns podvlan-node-2 -socket /path/cni.sock -pod ns/name -uid UID -netns pv-demo-a
//	sandbox del ... (same flags)
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podvlan/podvlan/internal/teststack"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "add" && os.Args[1] != "del") {
		fmt.Fprintln(os.Stderr, "usage: sandbox add|del -node-netns NS -socket PATH -pod NS/NAME -uid UID -netns NAME [-bin DIR] [-subnet CIDR]")
		os.Exit(2)
	}
	verb := os.Args[1]
	fs := flag.NewFlagSet(verb, flag.ExitOnError)
	nodeNetNS := fs.String("node-netns", "", "network namespace of the simulated Node (empty: this one)")
	socket := fs.String("socket", "", "the Node agent's CNI socket")
	pod := fs.String("pod", "", "the Pod as namespace/name")
	uid := fs.String("uid", "", "the Pod's UID")
	netns := fs.String("netns", "", "name of the sandbox network namespace (created on add, deleted on del)")
	bin := fs.String("bin", "bin", "directory holding the antrea binary")
	subnet := fs.String("subnet", "10.252.0.0/24", "primary network subnet on this Node")
	state := fs.String("state", filepath.Join(os.TempDir(), "podvlan-sandbox"), "directory for the primary IPAM and libcni state")
	_ = fs.Parse(os.Args[2:])
	podNS, podName, ok := strings.Cut(*pod, "/")
	if !ok || *socket == "" || *netns == "" {
		fmt.Fprintln(os.Stderr, "sandbox: -pod namespace/name, -socket and -netns are required")
		os.Exit(2)
	}
	if err := run(verb, *nodeNetNS, *socket, podNS, podName, *uid, *netns, *bin, *subnet, *state); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

func run(verb, nodeNetNS, socket, podNS, podName, uid, netns, bin, subnet, state string) error {
	ctx := context.Background()
	absBin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	list, err := teststack.PrimaryChain{Name: "sandbox-primary", CNIVersion: "1.0.0", Bridge: "pvsbx0", Subnet: subnet,
		HostLocalDir: filepath.Join(state, "host-local"), Socket: socket}.ConfList()
	if err != nil {
		return err
	}
	// The same container ID for the same Pod and namespace, so that del finds what add made.
	sum := sha256.Sum256([]byte(podNS + "/" + podName + "/" + uid + "/" + netns))
	sb := &teststack.Sandbox{
		Pod:         &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: podNS, Name: podName, UID: types.UID(uid)}},
		NetNS:       netns,
		ContainerID: hex.EncodeToString(sum[:]),
	}
	rt := sb.RuntimeConf("eth0")
	cni := libcni.NewCNIConfigWithCacheDir([]string{absBin, teststack.ReferencePlugins, "/opt/cni/bin"}, filepath.Join(state, "cache"), nil)
	del := func() error {
		return teststack.InNetNS(nodeNetNS, func() error { return cni.DelNetworkList(ctx, list, rt) })
	}
	if verb == "del" {
		err := del()
		_ = exec.Command("ip", "netns", "del", netns).Run()
		return err
	}
	if err := teststack.NewPodNetNS(ctx, netns); err != nil {
		return err
	}
	err = teststack.InNetNS(nodeNetNS, func() error {
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err == nil {
			return res.Print()
		}
		return err
	})
	if err != nil {
		_ = del()
		_ = exec.Command("ip", "netns", "del", netns).Run()
	}
	return err
}
