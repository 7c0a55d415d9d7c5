package teststack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Env is the local cluster's env file (_output/local-cluster/env), the contract between
// hack/local-cluster.sh, which knows where it put everything, and the tests, bench programs and
// scripts that use the cluster. The file is always written by Env.Write (the script pipes its
// KEY=value lines through `go run ./hack/clusterenv`, which parses them with ParseEnv first), so a
// key the script forgets or misspells fails `up`, not a test an hour later. The format stays
// KEY=value lines without quotes because shell scripts read single keys of it with sed.
type Env struct {
	Dir         string       // CLUSTER_DIR: _output/local-cluster
	Kubeconfig  string       // KUBECONFIG: the admin kubeconfig
	APIServer   string       // APISERVER: https://host:port
	MgmtBridge  string       // MGMT_BRIDGE: the management network's bridge in the root namespace
	MgmtCIDR    netip.Prefix // MGMT_CIDR: the management network's prefix
	MgmtGateway netip.Addr   // MGMT_GATEWAY: simulated Nodes' default gateway (node-1)
	Kubectl     string       // KUBECTL
	ToolsBin    string       // TOOLS_BIN: the built Kubernetes tools, Multus, ovs-cni, Whereabouts
	Nodes       []EnvNode    // NODE_COUNT, NODES and NODE_<k>_*; Nodes[0] is node-1, the real one

	// WorkloadControllers lists kube-controller-manager's controllers (WORKLOAD_CONTROLLERS).
	WorkloadControllers []string
	SimulatedNodeTaint  string         // SIMULATED_NODE_TAINT: key=value:Effect
	KubernetesService   netip.AddrPort // KUBERNETES_SERVICE: the `kubernetes` Service's address
	OVSRunLink          string         // OVS_RUN_LINK: where node-1's OVS run directory is linked

	CNIConfDir  string // CNI_CONF_DIR
	CNIConflist string // CNI_CONFLIST: node-1's primary config list
	CNINetwork  string // CNI_NETWORK: the primary network's name
	CNIBinDir   string // CNI_BIN_DIR
	CNIBridge   string // CNI_BRIDGE: the primary bridge plugin's bridge

	ContainerdSock      string // CONTAINERD_SOCK
	ContainerdNamespace string // CONTAINERD_NAMESPACE
	KubeletLog          string // KUBELET_LOG
	ContainerdLog       string // CONTAINERD_LOG

	FabricNetNS  string // FABRIC_NETNS: the namespace of the "top-of-rack switch"
	FabricBridge string // FABRIC_BRIDGE
	FabricOVSDir string // FABRIC_OVS_DIR
	FabricOVSDB  string // FABRIC_OVSDB

	// External holds the external hosts on the fabric's access ports (EXT<vlan>_*), by VLAN.
	External []EnvExternalHost

	PauseImage string // PAUSE_IMAGE: the sandbox image node-1's containerd has
	TestImage  string // TEST_IMAGE: the test Pods' image node-1's containerd has
}

// EnvNode is one Node of the local cluster.
type EnvNode struct {
	Index      int          // k of NODE_<k>_*, from 1
	Name       string       // NAME
	Real       bool         // REAL: a kubelet and containerd run for it (node-1 only)
	NetNS      string       // NETNS: its network namespace, empty for node-1 (the root namespace)
	IP         netip.Addr   // IP: its management address
	MgmtIf     string       // MGMT_IF: the interface holding IP
	Kubeconfig string       // KUBECONFIG: system:node:<name> at the management address
	PodCIDR    netip.Prefix // POD_CIDR
	OVSDir     string       // OVS_DIR: its private Open vSwitch's directory
	OVSDB      string       // OVSDB: that OVS's database endpoint (unix:...)
	Uplink     string       // UPLINK: its trunk link to the fabric
	FabricPort string       // FABRIC_PORT: the uplink's peer, a port of the fabric bridge
}

// EnvExternalHost is a host on an access port of the fabric.
type EnvExternalHost struct {
	VLAN       int          // <vlan> of EXT<vlan>_* and EXT<vlan>_VLAN
	NetNS      string       // NETNS
	IP         netip.Addr   // IP
	CIDR       netip.Prefix // CIDR: IP with its prefix length
	FabricPort string       // FABRIC_PORT
}

// ExternalHost returns the external host on the given VLAN.
func (e *Env) ExternalHost(vlan int) (EnvExternalHost, bool) {
	for _, h := range e.External {
		if h.VLAN == vlan {
			return h, true
		}
	}
	return EnvExternalHost{}, false
}

// LoadEnv reads and parses the env file at path.
func LoadEnv(path string) (*Env, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env, err := ParseEnv(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return env, nil
}

// envField is one key of the env file and the Env field it fills; the lists below are the
// contract, read by ParseEnv and written by Format in the same order.
type envField struct {
	key string
	get func() string
	set func(string) error
}

func (e *Env) general() []envField {
	return []envField{
		text("CLUSTER_DIR", &e.Dir), text("KUBECONFIG", &e.Kubeconfig), text("APISERVER", &e.APIServer),
		text("MGMT_BRIDGE", &e.MgmtBridge), parsed("MGMT_CIDR", &e.MgmtCIDR, netip.ParsePrefix),
		parsed("MGMT_GATEWAY", &e.MgmtGateway, netip.ParseAddr), text("KUBECTL", &e.Kubectl),
		text("TOOLS_BIN", &e.ToolsBin),
	}
}

func (e *Env) services() []envField {
	return []envField{
		list("WORKLOAD_CONTROLLERS", ",", &e.WorkloadControllers), text("SIMULATED_NODE_TAINT", &e.SimulatedNodeTaint),
		parsed("KUBERNETES_SERVICE", &e.KubernetesService, netip.ParseAddrPort), text("OVS_RUN_LINK", &e.OVSRunLink),
		text("CNI_CONF_DIR", &e.CNIConfDir), text("CNI_CONFLIST", &e.CNIConflist), text("CNI_NETWORK", &e.CNINetwork),
		text("CNI_BIN_DIR", &e.CNIBinDir), text("CNI_BRIDGE", &e.CNIBridge),
		text("CONTAINERD_SOCK", &e.ContainerdSock), text("CONTAINERD_NAMESPACE", &e.ContainerdNamespace),
		text("KUBELET_LOG", &e.KubeletLog), text("CONTAINERD_LOG", &e.ContainerdLog),
		text("FABRIC_NETNS", &e.FabricNetNS), text("FABRIC_BRIDGE", &e.FabricBridge),
		text("FABRIC_OVS_DIR", &e.FabricOVSDir), text("FABRIC_OVSDB", &e.FabricOVSDB),
	}
}

func (e *Env) images() []envField {
	return []envField{text("PAUSE_IMAGE", &e.PauseImage), text("TEST_IMAGE", &e.TestImage)}
}

func (n *EnvNode) fields() []envField {
	p := fmt.Sprintf("NODE_%d_", n.Index)
	return []envField{
		text(p+"NAME", &n.Name), parsed(p+"REAL", &n.Real, strconv.ParseBool), optional(p+"NETNS", &n.NetNS),
		parsed(p+"IP", &n.IP, netip.ParseAddr), text(p+"MGMT_IF", &n.MgmtIf), text(p+"KUBECONFIG", &n.Kubeconfig),
		parsed(p+"POD_CIDR", &n.PodCIDR, netip.ParsePrefix), text(p+"OVS_DIR", &n.OVSDir), text(p+"OVSDB", &n.OVSDB),
		text(p+"UPLINK", &n.Uplink), text(p+"FABRIC_PORT", &n.FabricPort),
	}
}

func (h *EnvExternalHost) fields() []envField {
	p := fmt.Sprintf("EXT%d_", h.VLAN)
	return []envField{
		text(p+"NETNS", &h.NetNS), parsed(p+"IP", &h.IP, netip.ParseAddr), parsed(p+"CIDR", &h.CIDR, netip.ParsePrefix),
		parsed(p+"VLAN", &h.VLAN, strconv.Atoi), text(p+"FABRIC_PORT", &h.FabricPort),
	}
}

// ParseEnv parses KEY=value lines into an Env. Every key of the contract must be there, every
// value must parse, and a key the contract does not know is an error: a typo on either side shows.
func ParseEnv(r io.Reader) (*Env, error) {
	vars, err := readKeyValues(r)
	if err != nil {
		return nil, err
	}
	take := func(fields []envField) error {
		for _, f := range fields {
			v, ok := vars[f.key]
			if !ok {
				return fmt.Errorf("missing key %s", f.key)
			}
			delete(vars, f.key)
			if err := f.set(v); err != nil {
				return fmt.Errorf("%s: %w", f.key, err)
			}
		}
		return nil
	}
	env := &Env{}
	var count int
	var names []string
	if err := take(append(env.general(), parsed("NODE_COUNT", &count, strconv.Atoi), list("NODES", " ", &names))); err != nil {
		return nil, err
	}
	for k := 1; k <= count; k++ {
		env.Nodes = append(env.Nodes, EnvNode{Index: k})
		if err := take(env.Nodes[k-1].fields()); err != nil {
			return nil, err
		}
	}
	if !slices.Equal(names, env.nodeNames()) {
		return nil, fmt.Errorf("NODES is %q, the NODE_<k>_NAME keys say %q", names, env.nodeNames())
	}
	if len(env.Nodes) == 0 || !env.Nodes[0].Real {
		return nil, fmt.Errorf("node-1 (NODE_1_*) must be there and real")
	}
	for _, vlan := range externalVLANs(vars) {
		h := EnvExternalHost{VLAN: vlan}
		if err := take(h.fields()); err != nil {
			return nil, err
		}
		if h.VLAN != vlan {
			return nil, fmt.Errorf("EXT%d_VLAN is %d, not the %d of its name", vlan, h.VLAN, vlan)
		}
		env.External = append(env.External, h)
	}
	if err := take(append(env.services(), env.images()...)); err != nil {
		return nil, err
	}
	for key := range vars {
		return nil, fmt.Errorf("unknown key %s", key)
	}
	return env, nil
}

// Write writes the env file atomically, as Format gives it.
func (e *Env) Write(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, e.Format(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Format returns the env as KEY=value lines: general keys, the Nodes, the services, the external
// hosts, the images.
func (e *Env) Format() []byte {
	var b bytes.Buffer
	write := func(fields []envField) {
		for _, f := range fields {
			fmt.Fprintf(&b, "%s=%s\n", f.key, f.get())
		}
	}
	count, names := len(e.Nodes), e.nodeNames()
	write(append(e.general(), list("NODES", " ", &names), parsed("NODE_COUNT", &count, strconv.Atoi)))
	for i := range e.Nodes {
		write(e.Nodes[i].fields())
	}
	write(e.services())
	for i := range e.External {
		write(e.External[i].fields())
	}
	write(e.images())
	return b.Bytes()
}

func (e *Env) nodeNames() []string {
	names := make([]string, 0, len(e.Nodes))
	for _, n := range e.Nodes {
		names = append(names, n.Name)
	}
	return names
}

// text is a key whose value must not be empty.
func text(key string, p *string) envField {
	return envField{key, func() string { return *p }, func(v string) error {
		if v == "" {
			return errors.New("empty")
		}
		*p = v
		return nil
	}}
}

// optional is a key whose value may be empty.
func optional(key string, p *string) envField {
	return envField{key, func() string { return *p }, func(v string) error { *p = v; return nil }}
}

// list is a key whose value is a list joined by sep.
func list(key, sep string, p *[]string) envField {
	return envField{key, func() string { return strings.Join(*p, sep) }, func(v string) error {
		if v == "" {
			return errors.New("empty")
		}
		*p = strings.Split(v, sep)
		return nil
	}}
}

// parsed is a key whose value parse reads; fmt's %v writes it back.
func parsed[T any](key string, p *T, parse func(string) (T, error)) envField {
	return envField{key, func() string { return fmt.Sprint(*p) }, func(v string) error {
		x, err := parse(v)
		if err != nil {
			return err
		}
		*p = x
		return nil
	}}
}

// readKeyValues reads KEY=value lines; blank lines and # comments are skipped, a repeated key is an
// error.
func readKeyValues(r io.Reader) (map[string]string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: %q is not KEY=value", n, line)
		}
		if _, dup := vars[k]; dup {
			return nil, fmt.Errorf("line %d: %s is set twice", n, k)
		}
		vars[k] = v
	}
	return vars, sc.Err()
}

// externalVLANs returns the VLANs named by EXT<vlan>_VLAN keys, in order.
func externalVLANs(vars map[string]string) []int {
	var vlans []int
	for key := range vars {
		rest, isExt := strings.CutPrefix(key, "EXT")
		digits, isVLAN := strings.CutSuffix(rest, "_VLAN")
		if vlan, err := strconv.Atoi(digits); isExt && isVLAN && err == nil {
			vlans = append(vlans, vlan)
		}
	}
	slices.Sort(vlans)
	return vlans
}

// EnvFile returns the path of the local cluster's env file: $PODVLAN_CLUSTER_ENV, or
// _output/local-cluster/env of the repository.
func EnvFile() (string, error) {
	if path := os.Getenv(EnvFileVar); path != "" {
		return path, nil
	}
	root, err := FindRepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "_output", "local-cluster", "env"), nil
}

// LoadLocalEnv loads the env file EnvFile names.
func LoadLocalEnv() (*Env, error) {
	path, err := EnvFile()
	if err != nil {
		return nil, err
	}
	return LoadEnv(path)
}
