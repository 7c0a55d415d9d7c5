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
	"github.com/containernetworking/plugins/pkg/ns"
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
	absBin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "sandbox-primary", "plugins": [
	  {"type": "bridge", "bridge": "pvsbx0", "isGateway": false, "ipMasq": false,
	   "ipam": {"type": "host-local", "subnet": %q, "dataDir": %q}},
	  {"type": "antrea", "cniSocket": %q}]}`, subnet, filepath.Join(state, "host-local"), socket)
	list, err := libcni.ConfListFromBytes([]byte(conf))
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(podNS + "/" + podName + "/" + uid + "/" + netns))
	rt := &libcni.RuntimeConf{
		ContainerID: hex.EncodeToString(sum[:]),
		NetNS:       "/var/run/netns/" + netns,
		IfName:      "eth0",
		Args: [][2]string{{"IgnoreUnknown", "true"}, {"K8S_POD_NAMESPACE", podNS}, {"K8S_POD_NAME", podName},
			{"K8S_POD_INFRA_CONTAINER_ID", hex.EncodeToString(sum[:])}, {"K8S_POD_UID", uid}},
	}
	cni := libcni.NewCNIConfigWithCacheDir([]string{absBin, "/usr/lib/cni", "/opt/cni/bin"}, filepath.Join(state, "cache"), nil)
	inNode := func(f func() error) error {
		if nodeNetNS == "" {
			return f()
		}
		return ns.WithNetNSPath("/var/run/netns/"+nodeNetNS, func(ns.NetNS) error { return f() })
	}
	if verb == "add" {
		if out, err := exec.Command("ip", "netns", "add", netns).CombinedOutput(); err != nil {
			return fmt.Errorf("create netns %s: %v: %s", netns, err, out)
		}
		_ = exec.Command("ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1").Run()
		_ = exec.Command("ip", "-n", netns, "link", "set", "lo", "up").Run()
		err := inNode(func() error {
			res, err := cni.AddNetworkList(context.Background(), list, rt)
			if err == nil {
				return res.Print()
			}
			return err
		})
		if err != nil {
			_ = inNode(func() error { return cni.DelNetworkList(context.Background(), list, rt) })
			_ = exec.Command("ip", "netns", "del", netns).Run()
		}
		return err
	}
	err = inNode(func() error { return cni.DelNetworkList(context.Background(), list, rt) })
	_ = exec.Command("ip", "netns", "del", netns).Run()
	return err
}
