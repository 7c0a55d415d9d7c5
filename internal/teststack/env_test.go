package teststack

import (
	"bytes"
	"strings"
	"testing"
)

// sampleEnv is an env file as hack/local-cluster.sh writes it for two Nodes.
const sampleEnv = `CLUSTER_DIR=/r/_output/local-cluster
KUBECONFIG=/r/_output/local-cluster/control-plane/kubeconfig
APISERVER=https://198.18.0.1:6443
MGMT_BRIDGE=pv-mgmt
MGMT_CIDR=198.18.0.0/24
MGMT_GATEWAY=198.18.0.1
KUBECTL=/c/tools/kubectl
TOOLS_BIN=/c/tools
NODES=node-1 node-2
NODE_COUNT=2
NODE_1_NAME=node-1
NODE_1_REAL=true
NODE_1_NETNS=
NODE_1_IP=198.18.0.1
NODE_1_MGMT_IF=pv-mgmt
NODE_1_KUBECONFIG=/r/_output/local-cluster/node-1/agent.kubeconfig
NODE_1_POD_CIDR=10.244.1.0/24
NODE_1_OVS_DIR=/r/_output/local-cluster/node-1/ovs
NODE_1_OVSDB=unix:/r/_output/local-cluster/node-1/ovs/run/db.sock
NODE_1_UPLINK=eth1
NODE_1_FABRIC_PORT=fab-node-1
NODE_2_NAME=node-2
NODE_2_REAL=false
NODE_2_NETNS=podvlan-node-2
NODE_2_IP=198.18.0.2
NODE_2_MGMT_IF=eth0
NODE_2_KUBECONFIG=/r/_output/local-cluster/node-2/agent.kubeconfig
NODE_2_POD_CIDR=10.244.2.0/24
NODE_2_OVS_DIR=/r/_output/local-cluster/node-2/ovs
NODE_2_OVSDB=unix:/r/_output/local-cluster/node-2/ovs/run/db.sock
NODE_2_UPLINK=eth1
NODE_2_FABRIC_PORT=fab-node-2
WORKLOAD_CONTROLLERS=daemonset-controller,deployment-controller
SIMULATED_NODE_TAINT=podvlan.dev/simulated=true:NoSchedule
KUBERNETES_SERVICE=10.96.0.1:443
OVS_RUN_LINK=/var/run/openvswitch
CNI_CONF_DIR=/etc/cni/net.d
CNI_CONFLIST=/etc/cni/net.d/10-podvlan.conflist
CNI_NETWORK=podvlan
CNI_BIN_DIR=/opt/cni/bin
CNI_BRIDGE=cni0
CONTAINERD_SOCK=/r/_output/local-cluster/node-1/containerd/containerd.sock
CONTAINERD_NAMESPACE=k8s.io
KUBELET_LOG=/r/_output/local-cluster/node-1/kubelet/kubelet.log
CONTAINERD_LOG=/r/_output/local-cluster/node-1/containerd/containerd.log
FABRIC_NETNS=podvlan-fabric
FABRIC_BRIDGE=br-fabric
FABRIC_OVS_DIR=/r/_output/local-cluster/fabric/ovs
FABRIC_OVSDB=unix:/r/_output/local-cluster/fabric/ovs/run/db.sock
EXT100_NETNS=podvlan-ext100
EXT100_IP=198.18.100.254
EXT100_CIDR=198.18.100.254/24
EXT100_VLAN=100
EXT100_FABRIC_PORT=ext100
EXT200_NETNS=podvlan-ext200
EXT200_IP=198.18.200.254
EXT200_CIDR=198.18.200.254/24
EXT200_VLAN=200
EXT200_FABRIC_PORT=ext200
PAUSE_IMAGE=podvlan.local/pause:3.10
TEST_IMAGE=podvlan.local/test:dev
`

func TestParseEnvReadsWhatTheScriptWritesAndWritesItBackUnchanged(t *testing.T) {
	env, err := ParseEnv(strings.NewReader(sampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Nodes) != 2 || !env.Nodes[0].Real || env.Nodes[0].NetNS != "" || env.Nodes[1].Real ||
		env.Nodes[1].NetNS != "podvlan-node-2" || env.Nodes[1].IP.String() != "198.18.0.2" || env.Nodes[1].Index != 2 {
		t.Errorf("nodes: %+v", env.Nodes)
	}
	if h, ok := env.ExternalHost(200); !ok || h.IP.String() != "198.18.200.254" || h.CIDR.Bits() != 24 || h.NetNS != "podvlan-ext200" {
		t.Errorf("external host on VLAN 200: %+v %v", h, ok)
	}
	if env.KubernetesService.Port() != 443 || len(env.WorkloadControllers) != 2 || env.TestImage != "podvlan.local/test:dev" {
		t.Errorf("env: %+v", env)
	}
	if got := string(env.Format()); got != sampleEnv {
		t.Errorf("Format does not give back the script's file:\n%s", got)
	}
}

func TestParseEnvNamesTheKeyThatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		name, edit, want string
	}{
		{"missing", "drop:NODE_2_OVSDB", "missing key NODE_2_OVSDB"},
		{"empty", "set:KUBECONFIG=", "KUBECONFIG: empty"},
		{"unknown", "add:NODE_2_ADMIN_KUBECONFIG=/x", "unknown key NODE_2_ADMIN_KUBECONFIG"},
		{"not an address", "set:NODE_1_IP=node-1", "NODE_1_IP"},
		{"node list", "set:NODES=node-1", "NODES is"},
		{"vlan", "set:EXT100_VLAN=101", "EXT100_VLAN is 101, not the 100 of its name"},
		{"twice", "add:TEST_IMAGE=x", "TEST_IMAGE is set twice"},
		{"count", "set:NODE_COUNT=3", "missing key NODE_3_NAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEnv(strings.NewReader(editEnv(sampleEnv, tc.edit)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// editEnv applies "drop:KEY", "set:KEY=value" or "add:KEY=value" to an env file.
func editEnv(env, edit string) string {
	op, arg, _ := strings.Cut(edit, ":")
	key, _, _ := strings.Cut(arg, "=")
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(env, "\n") {
		switch {
		case op == "drop" && strings.HasPrefix(line, key+"="):
		case op == "set" && strings.HasPrefix(line, key+"="):
			b.WriteString(arg + "\n")
		default:
			b.WriteString(line)
		}
	}
	if op == "add" {
		b.WriteString(arg + "\n")
	}
	return b.String()
}
