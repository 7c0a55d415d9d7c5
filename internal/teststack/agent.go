package teststack

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/libcni"
)

// The one antrea-agent launcher of the project: the e2e tests and the bench harness run agents for
// their Nodes with what is here.

// SecondaryBridge is the secondary bridge the tests' and benchmarks' agents create.
const SecondaryBridge = "br-secondary"

// AgentConfig is antrea-agent.conf as the tests and benchmarks write it.
type AgentConfig struct {
	FeatureGates     map[string]bool `json:"featureGates,omitempty"`
	OVSDatapathType  string          `json:"ovsDatapathType,omitempty"`
	CNISocket        string          `json:"cniSocket,omitempty"`
	SecondaryNetwork struct {
		OVSBridges []AgentBridge `json:"ovsBridges,omitempty"`
	} `json:"secondaryNetwork"`
}

// AgentBridge is one entry of secondaryNetwork.ovsBridges.
type AgentBridge struct {
	BridgeName         string   `json:"bridgeName"`
	PhysicalInterfaces []string `json:"physicalInterfaces,omitempty"`
}

// DefaultAgentConfig has both feature gates on, the userspace datapath (no kernel module here) and
// SecondaryBridge with the given uplinks.
func DefaultAgentConfig(uplinks ...string) AgentConfig {
	var cfg AgentConfig
	cfg.FeatureGates = map[string]bool{"SecondaryNetwork": true, "AntreaIPAM": true}
	cfg.OVSDatapathType = "netdev"
	cfg.SecondaryNetwork.OVSBridges = []AgentBridge{{BridgeName: SecondaryBridge, PhysicalInterfaces: uplinks}}
	return cfg
}

// AgentSpec says how to run one antrea-agent for one Node.
type AgentSpec struct {
	Binary     string // antrea-agent
	ShimDir    string // holds the antrea shim, through which readiness (CNI STATUS) is asked
	Dir        string // the agent's configuration, socket and log go here
	NetNS      string // the Node's network namespace; empty: the caller's
	NodeName   string
	Kubeconfig string
	OVSDB      string
	Config     AgentConfig // CNISocket is set to Dir/cni.sock
	Args       []string    // more flags (verbosity, reconcile interval, metrics address)
}

// Agent is an antrea-agent process, in its own process group so that a kill reaches `ip netns
// exec` and the agent alike.
type Agent struct {
	Socket  string
	LogPath string
	// Started is when the current process was started.
	Started time.Time
	shimDir string
	args    []string
	log     *os.File
	cmd     *exec.Cmd
	done    chan struct{}
}

// NewAgent writes the agent's configuration and log file; Start runs it.
func NewAgent(spec AgentSpec) (*Agent, error) {
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return nil, err
	}
	spec.Config.CNISocket = filepath.Join(spec.Dir, "cni.sock")
	data, err := json.Marshal(spec.Config)
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(spec.Dir, "antrea-agent.conf")
	if err := os.WriteFile(confPath, data, 0o600); err != nil {
		return nil, err
	}
	a := &Agent{Socket: spec.Config.CNISocket, LogPath: filepath.Join(spec.Dir, "agent.log"), shimDir: spec.ShimDir}
	a.args = []string{spec.Binary, "--config", confPath, "--node-name", spec.NodeName,
		"--kubeconfig", spec.Kubeconfig, "--ovsdb", spec.OVSDB}
	a.args = append(a.args, spec.Args...)
	if spec.NetNS != "" {
		a.args = append([]string{"ip", "netns", "exec", spec.NetNS}, a.args...)
	}
	if a.log, err = os.Create(a.LogPath); err != nil {
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

// Status runs CNI STATUS through the shim, as a runtime asks a plugin whether it is ready.
func (a *Agent) Status(ctx context.Context) error {
	list, err := StatusConfList(a.Socket)
	if err != nil {
		return err
	}
	return libcni.NewCNIConfig([]string{a.shimDir}, nil).GetStatusNetworkList(ctx, list)
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

// Close stops the agent and closes its log.
func (a *Agent) Close() {
	a.Stop()
	_ = a.log.Close()
}

// Log returns the agent's whole log.
func (a *Agent) Log() string {
	data, _ := os.ReadFile(a.LogPath)
	return string(data)
}

// LogTail returns the last lines of the agent's log.
func (a *Agent) LogTail(lines int) string { return Tail(a.Log(), lines) }

// Tail returns the last lines of s.
func Tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// WarningsAndErrors keeps klog's W and E lines of a log: the ones a failure is most often
// explained by, which the tail of a busy log has long scrolled past.
func WarningsAndErrors(log string) string {
	var kept []string
	for line := range strings.Lines(log) {
		if strings.HasPrefix(line, "W") || strings.HasPrefix(line, "E") {
			kept = append(kept, strings.TrimSuffix(line, "\n"))
		}
	}
	return strings.Join(kept, "\n")
}

// BuildBinaries builds the project's commands (name → package, as "antrea": "./cmd/antrea-cni")
// from the working tree at root into dir, static (CGO_ENABLED=0) as the images ship them.
func BuildBinaries(ctx context.Context, root, dir string, commands map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for out, pkg := range commands {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, out), pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	return nil
}
