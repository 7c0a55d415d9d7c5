package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/podvlan/podvlan/pkg/cni/server"
	"github.com/podvlan/podvlan/pkg/cni/shim"
)

// The tests run the real `antrea` binary the way containerd does, through libcni, against
// pkg/cni/server with a fake handler standing in for the agent.

var (
	// binDir holds the `antrea` binary built for these tests (the runtime's CNI bin dir).
	binDir string
	// supportedVersions are the spec versions the plugin must serve.
	supportedVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}
)

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "antrea-cni-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "antrea"), ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build the antrea binary: %v\n", err)
		return 1
	}
	binDir = dir
	// The binary inherits this process's environment: make the socket come from the configs.
	_ = os.Unsetenv(shim.SocketEnv)
	return m.Run()
}

// fakeAgent is the Handler standing in for antrea-agent: it records every request and answers
// with a fixed result, or with the error the test set for a command.
type fakeAgent struct {
	mu       sync.Mutex
	requests []*server.Request
	errs     map[string]error
}

func (a *fakeAgent) record(req *server.Request) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, req)
	return a.errs[req.Command]
}

func (a *fakeAgent) Add(_ context.Context, req *server.Request) (types.Result, error) {
	if err := a.record(req); err != nil {
		return nil, err
	}
	return &types100.Result{
		CNIVersion: "1.1.0",
		Interfaces: []*types100.Interface{{Name: req.IfName, Mac: "0a:58:0a:0a:01:02", Sandbox: req.Netns}},
		IPs: []*types100.IPConfig{{
			Interface: types100.Int(0),
			Address:   net.IPNet{IP: net.ParseIP("10.10.1.2").To4(), Mask: net.CIDRMask(24, 32)},
			Gateway:   net.ParseIP("10.10.1.1"),
		}},
	}, nil
}

func (a *fakeAgent) Check(_ context.Context, req *server.Request) error  { return a.record(req) }
func (a *fakeAgent) Del(_ context.Context, req *server.Request) error    { return a.record(req) }
func (a *fakeAgent) GC(_ context.Context, req *server.Request) error     { return a.record(req) }
func (a *fakeAgent) Status(_ context.Context, req *server.Request) error { return a.record(req) }

func (a *fakeAgent) seen() []*server.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*server.Request(nil), a.requests...)
}

// socketPath is a socket path in a fresh directory, short enough for a unix socket.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "antrea-cni-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "run", "cni.sock")
}

func startAgent(t *testing.T, agent *fakeAgent) string {
	t.Helper()
	socket := socketPath(t)
	s := server.New(socket, agent)
	if err := s.Start(); err != nil {
		t.Fatalf("start the CNI server: %v", err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	return socket
}

// runtime is libcni set up as containerd sets it up, with the plugin's stderr captured.
type runtime struct {
	cni    *libcni.CNIConfig
	stderr *bytes.Buffer
}

func newRuntime(t *testing.T) *runtime {
	stderr := &bytes.Buffer{}
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: stderr}, PluginDecoder: version.PluginDecoder{}}
	return &runtime{cni: libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), exec), stderr: stderr}
}

// networkList is a conflist with the antrea plugin; socket "" leaves cniSocket out.
func networkList(t *testing.T, cniVersion, socket string) *libcni.NetworkConfigList {
	t.Helper()
	plugin := map[string]any{"type": "antrea"}
	if socket != "" {
		plugin["cniSocket"] = socket
	}
	raw, err := json.Marshal(map[string]any{"cniVersion": cniVersion, "name": "vlan100", "plugins": []any{plugin}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.NetworkConfFromBytes(raw)
	if err != nil {
		t.Fatalf("parse conflist %s: %v", raw, err)
	}
	return list
}

func podRuntimeConf(containerID string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: containerID,
		NetNS:       "/var/run/netns/cni-" + containerID,
		IfName:      "net1",
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", "ns1"},
			{"K8S_POD_NAME", "web-0"},
			{"K8S_POD_INFRA_CONTAINER_ID", containerID},
			{"K8S_POD_UID", "6b5d3c1e-0000-4000-8000-" + containerID[:12]},
		},
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func atLeast(t *testing.T, cniVersion, minimum string) bool {
	t.Helper()
	ok, err := version.GreaterThanOrEqualTo(cniVersion, minimum)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func requireCNIError(t *testing.T, err error, wantCode uint, wantMsgPrefix, wantDetails string) {
	t.Helper()
	var cniErr *types.Error
	if !errors.As(err, &cniErr) {
		t.Fatalf("error = %v, want a CNI error with code %d", err, wantCode)
	}
	if cniErr.Code != wantCode || !strings.HasPrefix(cniErr.Msg, wantMsgPrefix) || cniErr.Details != wantDetails {
		t.Errorf("CNI error = {%d %q %q}, want code %d, a message starting with %q, details %q",
			cniErr.Code, cniErr.Msg, cniErr.Details, wantCode, wantMsgPrefix, wantDetails)
	}
}

func TestVersionListsTheSupportedVersions(t *testing.T) {
	info, err := newRuntime(t).cni.GetVersionInfo(testContext(t), "antrea")
	if err != nil {
		t.Fatalf("VERSION: %v", err)
	}
	if got := info.SupportedVersions(); !reflect.DeepEqual(got, supportedVersions) {
		t.Errorf("VERSION lists %v, want %v", got, supportedVersions)
	}
}

func TestEveryCommandReachesTheAgent(t *testing.T) {
	for _, cniVersion := range supportedVersions {
		t.Run(cniVersion, func(t *testing.T) {
			agent := &fakeAgent{}
			socket := startAgent(t, agent)
			if info, err := os.Lstat(socket); err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("agent socket mode = %v (stat error %v), want 0600", info.Mode(), err)
			}
			rt := newRuntime(t)
			list := networkList(t, cniVersion, socket)
			containerID := "a1b2c3d4e5f6a7b8c9d0" + strings.ReplaceAll(cniVersion, ".", "")
			pod := podRuntimeConf(containerID)
			ctx := testContext(t)

			result, err := rt.cni.AddNetworkList(ctx, list, pod)
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			if result.Version() != cniVersion {
				t.Errorf("ADD result version = %s, want %s", result.Version(), cniVersion)
			}
			current, err := types100.NewResultFromResult(result)
			if err != nil {
				t.Fatalf("convert the ADD result: %v", err)
			}
			if len(current.Interfaces) != 1 || current.Interfaces[0].Name != "net1" || current.Interfaces[0].Mac != "0a:58:0a:0a:01:02" ||
				len(current.IPs) != 1 || current.IPs[0].Address.String() != "10.10.1.2/24" || current.IPs[0].Gateway.String() != "10.10.1.1" {
				t.Errorf("ADD result = %s, want interface net1 with 10.10.1.2/24 via 10.10.1.1", current)
			}

			wantCommands := []string{server.CommandAdd}
			if atLeast(t, cniVersion, "0.4.0") {
				if err := rt.cni.CheckNetworkList(ctx, list, pod); err != nil {
					t.Errorf("CHECK: %v", err)
				}
				wantCommands = append(wantCommands, server.CommandCheck)
			} else if err := rt.cni.CheckNetworkList(ctx, list, pod); err == nil {
				t.Errorf("CHECK with cniVersion %s succeeded, want libcni to refuse it", cniVersion)
			}
			gcArgs := &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: containerID, IfName: "net1"}}}
			if err := rt.cni.GCNetworkList(ctx, list, gcArgs); err != nil {
				t.Errorf("GC: %v", err)
			}
			if err := rt.cni.GetStatusNetworkList(ctx, list); err != nil {
				t.Errorf("STATUS: %v", err)
			}
			if atLeast(t, cniVersion, "1.1.0") {
				wantCommands = append(wantCommands, server.CommandGC, server.CommandStatus)
			}
			if err := rt.cni.DelNetworkList(ctx, list, pod); err != nil {
				t.Errorf("DEL: %v", err)
			}
			wantCommands = append(wantCommands, server.CommandDel)

			seen := agent.seen()
			var gotCommands []string
			for _, req := range seen {
				gotCommands = append(gotCommands, req.Command)
			}
			if !reflect.DeepEqual(gotCommands, wantCommands) {
				t.Fatalf("the agent saw %v, want %v (CHECK needs 0.4.0, GC and STATUS need 1.1.0)", gotCommands, wantCommands)
			}
			for _, req := range seen {
				checkRequest(t, req, cniVersion, socket, pod)
			}
		})
	}
}

// checkRequest verifies that the agent got the runtime's environment and configuration.
func checkRequest(t *testing.T, req *server.Request, cniVersion, socket string, pod *libcni.RuntimeConf) {
	t.Helper()
	if req.CNIVersion != cniVersion || req.Path != binDir {
		t.Errorf("%s: CNIVersion %q, Path %q; want %q, %q", req.Command, req.CNIVersion, req.Path, cniVersion, binDir)
	}
	var config map[string]any
	if err := json.Unmarshal(req.Config, &config); err != nil {
		t.Fatalf("%s: config %s: %v", req.Command, req.Config, err)
	}
	if config["name"] != "vlan100" || config["type"] != "antrea" || config["cniVersion"] != cniVersion || config["cniSocket"] != socket {
		t.Errorf("%s: config %s lacks the network's name, type, version or socket", req.Command, req.Config)
	}
	switch req.Command {
	case server.CommandGC:
		if _, ok := config["cni.dev/valid-attachments"]; !ok {
			t.Errorf("GC: config %s has no cni.dev/valid-attachments", req.Config)
		}
		return
	case server.CommandStatus:
		return
	case server.CommandCheck:
		if _, ok := config["prevResult"]; !ok {
			t.Errorf("CHECK: config %s has no prevResult", req.Config)
		}
	}
	if req.ContainerID != pod.ContainerID || req.Netns != pod.NetNS || req.IfName != pod.IfName {
		t.Errorf("%s: container %q netns %q ifname %q, want %q %q %q", req.Command,
			req.ContainerID, req.Netns, req.IfName, pod.ContainerID, pod.NetNS, pod.IfName)
	}
	for _, kv := range pod.Args {
		if !strings.Contains(";"+req.Args+";", ";"+kv[0]+"="+kv[1]+";") {
			t.Errorf("%s: CNI_ARGS %q lack %s=%s", req.Command, req.Args, kv[0], kv[1])
		}
	}
}

func TestAgentErrorsReachTheRuntime(t *testing.T) {
	tests := []struct {
		name        string
		command     string
		minVersion  string
		err         error
		wantCode    uint
		wantMsg     string
		wantDetails string
	}{
		{name: "ADD: an invalid network config keeps code 7", command: server.CommandAdd, minVersion: "0.3.0",
			err:      types.NewError(types.ErrInvalidNetworkConfig, "unknown network ns1/vlan300", "NetworkAttachmentDefinition not found"),
			wantCode: 7, wantMsg: "unknown network ns1/vlan300", wantDetails: "NetworkAttachmentDefinition not found"},
		{name: "ADD: a plain agent error is an internal error", command: server.CommandAdd, minVersion: "0.3.0",
			err: errors.New("create veth net1: file exists"), wantCode: 999, wantMsg: "create veth net1: file exists"},
		{name: "DEL: try again later stays try again later", command: server.CommandDel, minVersion: "0.3.0",
			err: types.NewError(types.ErrTryAgainLater, "IPPool cache not synced", ""), wantCode: 11, wantMsg: "IPPool cache not synced"},
		{name: "STATUS: a plain agent error means not available", command: server.CommandStatus, minVersion: "1.1.0",
			err: errors.New("OVSDB not connected"), wantCode: 50, wantMsg: "OVSDB not connected"},
	}
	for _, cniVersion := range supportedVersions {
		for _, tt := range tests {
			if !atLeast(t, cniVersion, tt.minVersion) {
				continue
			}
			t.Run(cniVersion+"/"+tt.name, func(t *testing.T) {
				socket := startAgent(t, &fakeAgent{errs: map[string]error{tt.command: tt.err}})
				rt := newRuntime(t)
				list := networkList(t, cniVersion, socket)
				pod := podRuntimeConf("e1e2e3e4e5e6e7e8e9e0")
				ctx := testContext(t)
				var err error
				switch tt.command {
				case server.CommandAdd:
					_, err = rt.cni.AddNetworkList(ctx, list, pod)
				case server.CommandDel:
					err = rt.cni.DelNetworkList(ctx, list, pod)
				case server.CommandStatus:
					err = rt.cni.GetStatusNetworkList(ctx, list)
				}
				requireCNIError(t, err, tt.wantCode, tt.wantMsg, tt.wantDetails)
			})
		}
	}
}

func TestAgentDown(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, socket string)
		wantMsg string
	}{
		{
			name:    "no socket",
			prepare: func(*testing.T, string) {},
			wantMsg: "antrea-agent is not running on this Node: dial unix %s: connect: no such file or directory",
		},
		{
			name: "stale socket",
			prepare: func(t *testing.T, socket string) {
				if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
					t.Fatal(err)
				}
				l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				l.SetUnlinkOnClose(false)
				_ = l.Close()
				if info, err := os.Lstat(socket); err != nil || info.Mode().Type() != fs.ModeSocket {
					t.Fatalf("stale socket not left behind: %v", err)
				}
			},
			wantMsg: "antrea-agent is not running on this Node: dial unix %s: connect: connection refused",
		},
	}
	for _, cniVersion := range supportedVersions {
		for _, tt := range tests {
			t.Run(cniVersion+"/"+tt.name, func(t *testing.T) {
				socket := socketPath(t)
				tt.prepare(t, socket)
				wantMsg := fmt.Sprintf(tt.wantMsg, socket)
				rt := newRuntime(t)
				list := networkList(t, cniVersion, socket)
				pod := podRuntimeConf("d1d2d3d4d5d6d7d8d9d0")
				ctx := testContext(t)

				_, err := rt.cni.AddNetworkList(ctx, list, pod)
				requireCNIError(t, err, types.ErrTryAgainLater, wantMsg, "")

				rt.stderr.Reset()
				if err := rt.cni.DelNetworkList(ctx, list, pod); err != nil {
					t.Errorf("DEL with the agent down: %v, want success", err)
				}
				if note := rt.stderr.String(); !strings.Contains(note, wantMsg) || !strings.Contains(note, "DEL spooled in "+filepath.Join(filepath.Dir(socket), "spool")) {
					t.Errorf("DEL with the agent down wrote %q to stderr, want a note saying why it reported success and where the DEL was spooled", note)
				}

				if atLeast(t, cniVersion, "1.1.0") {
					requireCNIError(t, rt.cni.GetStatusNetworkList(ctx, list), types.ErrPluginNotAvailable, wantMsg, "")
				}
			})
		}
	}
}

func TestSocketFromTheEnvironment(t *testing.T) {
	agent := &fakeAgent{}
	socket := startAgent(t, agent)
	t.Setenv(shim.SocketEnv, socket) // the binary inherits the runtime's environment
	rt := newRuntime(t)
	list := networkList(t, "1.0.0", "")
	if _, err := rt.cni.AddNetworkList(testContext(t), list, podRuntimeConf("f1f2f3f4f5f6f7f8f9f0")); err != nil {
		t.Fatalf("ADD with the socket named by $%s: %v", shim.SocketEnv, err)
	}
	if seen := agent.seen(); len(seen) != 1 || seen[0].Command != server.CommandAdd {
		t.Errorf("the agent saw %d requests, want the ADD", len(seen))
	}
}
