// Package teststack gives tests access to the real components the project's scripts start: the
// local cluster described by _output/local-cluster/env, and private Open vSwitch daemons.
// Tests that need them skip with a message saying how to get them; `make test` provides them all.
package teststack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// EnvFileVar names the variable that overrides where the local cluster's env file is read from.
const EnvFileVar = "PODVLAN_CLUSTER_ENV"

// FindRepoRoot returns the module root, found by walking up from the working directory to go.mod.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.HasPrefix(string(data), "module github.com/podvlan/podvlan\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of github.com/podvlan/podvlan above the working directory")
		}
		dir = parent
	}
}

// RepoRoot is FindRepoRoot for tests: it fails the test when there is no module root.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// RequireRoot skips the test unless it runs as root (netns, veths and OVS need it).
func RequireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("real-stack test skipped in -short mode (`make test-unit`); `make test` runs it")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, veths, Open vSwitch); run `make test` as root")
	}
}

// Cluster is the local cluster started by hack/local-cluster.sh.
type Cluster struct {
	*Env
}

// LocalCluster loads the env file written by `hack/local-cluster.sh up`, or skips the test when no
// cluster is up.
func LocalCluster(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("real-stack test skipped in -short mode (`make test-unit`); `make test` runs it")
	}
	path, err := EnvFile()
	if err != nil {
		t.Fatal(err)
	}
	env, err := LoadEnv(path)
	if err != nil {
		if os.IsNotExist(err) {
			t.Skipf("no local cluster (%s missing): start one with `hack/local-cluster.sh up`, or run `make test`", path)
		}
		t.Fatalf("read the local cluster's env file (a cluster started by an older hack/local-cluster.sh? take it down and up again): %v", err)
	}
	return &Cluster{Env: env}
}

// RestConfig returns an admin client configuration for the cluster's kube-apiserver.
func (c *Cluster) RestConfig(t testing.TB) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	return cfg
}

// OVS is a private ovsdb-server + ovs-vswitchd started by hack/ovs.sh for one test.
type OVS struct {
	Dir    string
	NetNS  string
	Socket string // the OVSDB endpoint, "unix:<dir>/run/db.sock"
	script string
}

// StartOVS starts private OVS daemons inside a new network namespace (one userspace vswitchd per
// namespace is all OVS allows) and stops them, and the namespace, when the test ends.
func StartOVS(t testing.TB) *OVS {
	t.Helper()
	RequireRoot(t)
	if _, err := exec.LookPath("ovs-vswitchd"); err != nil {
		t.Skip("Open vSwitch is not installed: apt-get install openvswitch-switch (`make test` does)")
	}
	o := &OVS{
		Dir:    t.TempDir(),
		NetNS:  fmt.Sprintf("pvt-ovs-%d-%d", os.Getpid(), nextID()),
		script: filepath.Join(RepoRoot(t), "hack", "ovs.sh"),
	}
	o.Socket = "unix:" + filepath.Join(o.Dir, "run", "db.sock")
	run(t, "ip", "netns", "add", o.NetNS)
	run(t, "ip", "-n", o.NetNS, "link", "set", "lo", "up")
	t.Cleanup(func() {
		_ = exec.Command("bash", o.script, "down", o.Dir).Run()
		_ = exec.Command("ip", "netns", "del", o.NetNS).Run()
	})
	run(t, "bash", o.script, "up", o.Dir, o.NetNS)
	return o
}

// RestartDB restarts ovsdb-server, keeping its database.
func (o *OVS) RestartDB(t testing.TB) { run(t, "bash", o.script, "restart-db", o.Dir) }

// RestartSwitch restarts ovs-vswitchd.
func (o *OVS) RestartSwitch(t testing.TB) { run(t, "bash", o.script, "restart-switch", o.Dir) }

// Vsctl runs ovs-vsctl against this OVS for assertions (the product itself never uses ovs-vsctl).
func (o *OVS) Vsctl(t testing.TB, args ...string) string {
	t.Helper()
	return run(t, "ovs-vsctl", append([]string{"--db=" + o.Socket, "--timeout=10"}, args...)...)
}

// Exec runs a command inside the OVS namespace and returns its combined output.
func (o *OVS) Exec(t testing.TB, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", o.NetNS}, args...)...)
}

var idCounter = make(chan int, 1)

func init() { idCounter <- 0 }

func nextID() int {
	id := <-idCounter
	idCounter <- id + 1
	return id
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
