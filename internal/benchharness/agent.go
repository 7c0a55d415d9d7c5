package benchharness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/podvlan/podvlan/internal/teststack"
)

// Binaries are the project's programs built for a benchmark run, and the peers' plugins.
type Binaries struct {
	// Dir holds antrea-agent, the shim (antrea), the exec floor and links to the peers' plugins
	// (ovs, whereabouts) that hack/build-tools.sh builds.
	Dir string
}

// ExecFloor returns the path of the exec floor (internal/benchharness/execfloor).
func (b Binaries) ExecFloor() string { return filepath.Join(b.Dir, "execfloor") }

// OVSCNI returns the path of ovs-cni's plugin.
func (b Binaries) OVSCNI() string { return filepath.Join(b.Dir, "ovs") }

// Whereabouts returns the path of the Whereabouts IPAM plugin.
func (b Binaries) Whereabouts() string { return filepath.Join(b.Dir, "whereabouts") }

// Agent returns the path of antrea-agent.
func (b Binaries) Agent() string { return filepath.Join(b.Dir, "antrea-agent") }

// Shim returns the path of the CNI shim.
func (b Binaries) Shim() string { return filepath.Join(b.Dir, "antrea") }

// BuildBinaries builds antrea-agent, the shim and the exec floor from the working tree into
// _output/bench/bin (the same way, so that the shim and the exec floor compare), and links the
// peers' plugins there from hack/build-tools.sh's cache (which builds them when missing).
func (c *Cluster) BuildBinaries(ctx context.Context) (Binaries, error) {
	b := Binaries{Dir: filepath.Join(c.Root, "_output", "bench", "bin")}
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return b, err
	}
	tools, err := Run(ctx, "bash", filepath.Join(c.Root, "hack", "build-tools.sh"))
	if err != nil {
		return b, fmt.Errorf("build the peers' plugins: %w", err)
	}
	toolsDir := strings.TrimSpace(tools)
	if i := strings.LastIndexByte(toolsDir, '\n'); i >= 0 {
		toolsDir = toolsDir[i+1:]
	}
	for _, peer := range []string{"ovs", "whereabouts"} {
		link := filepath.Join(b.Dir, peer)
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join(toolsDir, peer), link); err != nil {
			return b, fmt.Errorf("link %s: %w", peer, err)
		}
	}
	if err := teststack.BuildBinaries(ctx, c.Root, b.Dir, map[string]string{"antrea-agent": "./cmd/antrea-agent",
		"antrea": "./cmd/antrea-cni", "execfloor": "./internal/benchharness/execfloor"}); err != nil {
		return b, err
	}
	// An experiment may run another build of the agent against the same harness.
	if other := os.Getenv("BENCH_AGENT_BINARY"); other != "" {
		if err := copyFile(other, b.Agent()); err != nil {
			return b, fmt.Errorf("BENCH_AGENT_BINARY: %w", err)
		}
	}
	return b, nil
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

// Agent is an antrea-agent process running for a bench Node, inside its namespace.
type Agent struct {
	*teststack.Agent
	Node *Node
}

// StartAgent writes the agent's configuration (both gates on, the userspace datapath, no uplink:
// the benchmarks measure the Node, not the fabric), starts it and waits until it serves CNI STATUS.
func (n *Node) StartAgent(ctx context.Context, bins Binaries) (*Agent, error) {
	// Verbosity 2 logs each ADD's duration and the engine's phases, which ReadBreakdowns reads: a
	// handful of lines per ADD, nothing measurable next to its work.
	verbosity := "2"
	if v := os.Getenv("BENCH_AGENT_V"); v != "" {
		verbosity = v
	}
	agent, err := teststack.NewAgent(teststack.AgentSpec{Binary: bins.Agent(), ShimDir: bins.Dir,
		Dir: filepath.Join(n.Dir, "agent"), NetNS: n.NetNS, NodeName: n.Name, Kubeconfig: n.cluster.Kubeconfig,
		OVSDB: n.OVSDB, Config: teststack.DefaultAgentConfig(), Args: []string{"-v", verbosity}})
	if err != nil {
		return nil, err
	}
	a := &Agent{Agent: agent, Node: n}
	if err := a.Start(); err != nil {
		return nil, err
	}
	if _, err := a.WaitReady(ctx, time.Minute); err != nil {
		a.Stop()
		return nil, err
	}
	return a, nil
}

// Memory is a process's resident memory, in MiB.
type Memory struct {
	// RSS is the current resident set (VmRSS).
	RSS float64 `json:"rss_mib"`
	// Peak is the highest resident set so far (VmHWM).
	Peak float64 `json:"peak_rss_mib"`
	// Anon and File split the current resident set (RssAnon, RssFile): File is the binary's
	// pages the kernel mapped, Anon the heap, stacks and runtime.
	Anon float64 `json:"rss_anon_mib"`
	File float64 `json:"rss_file_mib"`
}

// Memory reads the agent's resident memory from /proc.
func (a *Agent) Memory() (Memory, error) {
	return ProcessMemory(a.PID())
}

// ProcessMemory reads VmRSS and VmHWM of a process.
func ProcessMemory(pid int) (Memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	found := 0
	for _, line := range strings.Split(string(data), "\n") {
		key, value, ok := strings.Cut(line, ":")
		fields := map[string]*float64{"VmRSS": &m.RSS, "VmHWM": &m.Peak, "RssAnon": &m.Anon, "RssFile": &m.File}
		target, wanted := fields[key]
		if !ok || !wanted {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return Memory{}, fmt.Errorf("/proc/%d/status: unexpected %s line %q", pid, key, line)
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return Memory{}, fmt.Errorf("/proc/%d/status: %s: %w", pid, key, err)
		}
		*target = round2(kb / 1024)
		found++
	}
	if found != 4 {
		return Memory{}, errors.New("VmRSS, VmHWM, RssAnon or RssFile missing from /proc/" + strconv.Itoa(pid) + "/status")
	}
	return m, nil
}
