package benchharness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
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
	for out, pkg := range map[string]string{"antrea-agent": "./cmd/antrea-agent", "antrea": "./cmd/antrea-cni",
		"execfloor": "./internal/benchharness/execfloor"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(b.Dir, out), pkg)
		cmd.Dir = c.Root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
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

// BridgeName is the secondary bridge of every bench agent.
const BridgeName = "br-secondary"

// agentConfig is antrea-agent.conf as the benchmarks write it: both gates on, the userspace
// datapath, no uplink (the benchmarks measure the Node, not the fabric).
type agentConfig struct {
	FeatureGates     map[string]bool `json:"featureGates"`
	OVSDatapathType  string          `json:"ovsDatapathType"`
	CNISocket        string          `json:"cniSocket"`
	SecondaryNetwork struct {
		OVSBridges []struct {
			BridgeName string `json:"bridgeName"`
		} `json:"ovsBridges"`
	} `json:"secondaryNetwork"`
}

// Agent is an antrea-agent process running for a bench Node, inside its namespace.
type Agent struct {
	Node   *Node
	Socket string
	bins   Binaries
	args   []string
	log    *os.File
	cmd    *exec.Cmd
	done   chan struct{}
	// Started is when the current process was started.
	Started time.Time
}

// StartAgent writes the agent's configuration, starts it and waits until it serves CNI STATUS.
func (n *Node) StartAgent(ctx context.Context, bins Binaries) (*Agent, error) {
	dir := filepath.Join(n.Dir, "agent")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var cfg agentConfig
	cfg.FeatureGates = map[string]bool{"SecondaryNetwork": true, "AntreaIPAM": true}
	cfg.OVSDatapathType = "netdev"
	cfg.CNISocket = filepath.Join(dir, "cni.sock")
	cfg.SecondaryNetwork.OVSBridges = append(cfg.SecondaryNetwork.OVSBridges, struct {
		BridgeName string `json:"bridgeName"`
	}{BridgeName})
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "antrea-agent.conf")
	if err := os.WriteFile(confPath, data, 0o600); err != nil {
		return nil, err
	}
	a := &Agent{Node: n, Socket: cfg.CNISocket, bins: bins}
	a.args = []string{"ip", "netns", "exec", n.NetNS, bins.Agent(), "--config", confPath,
		"--node-name", n.Name, "--kubeconfig", n.cluster.Kubeconfig, "--ovsdb", n.OVSDB}
	// Verbosity 2 logs each ADD's duration and the engine's phases, which ReadBreakdowns reads: a
	// handful of lines per ADD, nothing measurable next to its work.
	verbosity := "2"
	if v := os.Getenv("BENCH_AGENT_V"); v != "" {
		verbosity = v
	}
	a.args = append(a.args, "-v", verbosity)
	if a.log, err = os.Create(filepath.Join(dir, "agent.log")); err != nil {
		return nil, err
	}
	if err := a.Start(); err != nil {
		return nil, err
	}
	if _, err := a.WaitReady(ctx, time.Minute); err != nil {
		a.Stop()
		return nil, err
	}
	return a, nil
}

// Start starts the agent process (again) without waiting for it to be ready.
func (a *Agent) Start() error {
	a.cmd = exec.Command(a.args[0], a.args[1:]...)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	a.Started = time.Now()
	if err := a.cmd.Start(); err != nil {
		return fmt.Errorf("start antrea-agent: %w", err)
	}
	a.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(a.cmd, a.done)
	return nil
}

// WaitReady polls CNI STATUS every 10 ms until it succeeds and returns the time since Start.
func (a *Agent) WaitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		select {
		case <-a.done:
			return 0, fmt.Errorf("antrea-agent exited: %s; log: %s", a.cmd.ProcessState, a.LogTail(20))
		default:
		}
		if last = a.Status(ctx); last == nil {
			return time.Since(a.Started), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("antrea-agent not ready after %s: %w; log: %s", timeout, last, a.LogTail(20))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Status runs CNI STATUS through the shim.
func (a *Agent) Status(ctx context.Context) error {
	return NewCNI(a.bins, "").Status(ctx, a.Socket)
}

// PID is the agent's process ID (ip netns exec replaces itself with the agent).
func (a *Agent) PID() int { return a.cmd.Process.Pid }

// Kill ends the agent with SIGKILL, as a crash would, and waits for it to be gone.
func (a *Agent) Kill() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	<-a.done
}

// Stop ends the agent with SIGTERM (SIGKILL after 10 s). It is safe to call more than once.
func (a *Agent) Stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	select {
	case <-a.done:
		return
	default:
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		a.Kill()
	}
}

// LogTail returns the last lines of the agent's log.
func (a *Agent) LogTail(lines int) string {
	data, _ := os.ReadFile(a.log.Name())
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
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
