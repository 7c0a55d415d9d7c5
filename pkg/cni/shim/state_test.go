package shim

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/pkg/cni/cnipb"
	"github.com/podvlan/podvlan/pkg/cni/nodestate"
	"github.com/podvlan/podvlan/pkg/cni/nodestate/sandbox"
	"github.com/podvlan/podvlan/pkg/cni/nodestate/spool"
)

// chainedArgs is the chained antrea entry as containerd runs it for a Pod, with the Pod's
// annotations in runtimeConfig (nil: the runtime passes none).
func chainedArgs(annotations map[string]string) *skel.CmdArgs {
	conf := map[string]any{
		"cniVersion": "0.4.0", "name": "cbr0", "type": "antrea",
		"prevResult": map[string]any{"cniVersion": "1.0.0",
			"interfaces": []any{map[string]any{"name": "eth0", "sandbox": "/var/run/netns/cni-1234"}},
			"ips":        []any{map[string]any{"address": "10.244.0.5/24", "interface": 0}}},
	}
	if annotations != nil {
		conf["runtimeConfig"] = map[string]any{PodAnnotationsCapability: annotations}
	}
	stdin, _ := json.Marshal(conf)
	return &skel.CmdArgs{ContainerID: "4f1a", Netns: "/var/run/netns/cni-1234", IfName: "eth0",
		Args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0;K8S_POD_UID=0c2d", Path: "/opt/cni/bin", StdinData: stdin}
}

func readRecord(t *testing.T, socket, containerID string) (sandbox.Record, bool) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(nodestate.ForSocket(socket).Sandboxes, sandbox.Name(containerID)))
	if os.IsNotExist(err) {
		return sandbox.Record{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var r sandbox.Record
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r, true
}

func spooled(t *testing.T, socket string) []spool.Pending {
	t.Helper()
	entries, bad, err := spool.List(nodestate.ForSocket(socket).Spool)
	if err != nil || len(bad) != 0 {
		t.Fatalf("list the spool: %v %v", err, bad)
	}
	return entries
}

func TestAddWithoutNetworksNeedsNoAgent(t *testing.T) {
	socket := socketInTempDir(t) // nothing listens: any dial would fail the ADD
	err, stdout, _ := runCommand(t, commandAdd, socket, chainedArgs(map[string]string{"app": "web"}))
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	var printed map[string]any
	if err := json.Unmarshal([]byte(stdout), &printed); err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	if printed["cniVersion"] != "0.4.0" {
		t.Errorf("printed cniVersion %v, want the configuration's 0.4.0 (prevResult converted)", printed["cniVersion"])
	}
	if !strings.Contains(stdout, "10.244.0.5/24") {
		t.Errorf("stdout %q lacks the previous result's address", stdout)
	}
	rec, ok := readRecord(t, socket, "4f1a")
	want := sandbox.Record{ContainerID: "4f1a", Netns: "/var/run/netns/cni-1234", PodNamespace: "ns1", PodName: "web-0",
		PodUID: "0c2d", IfName: "eth0", Chained: true, Added: rec.Added}
	if !ok || rec != want || time.Since(rec.Added) > time.Minute {
		t.Errorf("sandbox record = %+v (present %v), want %+v written now", rec, ok, want)
	}
	if err, _, _ := runCommand(t, commandCheck, socket, chainedArgs(map[string]string{})); err != nil {
		t.Errorf("CHECK without networks and without agent: %v", err)
	}
}

func TestAddWithNetworksAsksTheAgent(t *testing.T) {
	for name, annotations := range map[string]map[string]string{
		"annotated Pod":                     {"k8s.v1.cni.cncf.io/networks": "vlan100"},
		"runtime that passes no annotation": nil,
	} {
		t.Run(name, func(t *testing.T) {
			agent, socket := startRawAgent(t, &cnipb.CniCmdResponse{Result: []byte(`{"cniVersion":"0.4.0"}`)})
			if err, stdout, _ := runCommand(t, commandAdd, socket, chainedArgs(annotations)); err != nil || stdout != `{"cniVersion":"0.4.0"}` {
				t.Fatalf("ADD = %v, stdout %q; want the agent's result", err, stdout)
			}
			if len(agent.seen()) != 1 {
				t.Errorf("agent saw %d calls, want 1", len(agent.seen()))
			}
			if _, ok := readRecord(t, socket, "4f1a"); !ok {
				t.Errorf("no sandbox record for an ADD the agent answered")
			}
		})
	}
	t.Run("annotated Pod without agent", func(t *testing.T) {
		socket := socketInTempDir(t)
		err, _, _ := runCommand(t, commandAdd, socket, chainedArgs(map[string]string{"k8s.v1.cni.cncf.io/networks": "vlan100"}))
		var cniErr *types.Error
		if !errors.As(err, &cniErr) || cniErr.Code != types.ErrTryAgainLater || !strings.Contains(cniErr.Msg, "antrea-agent is not running on this Node") {
			t.Errorf("ADD = %v, want code 11 saying the agent is not running", err)
		}
		if rec, ok := readRecord(t, socket, "4f1a"); ok {
			t.Errorf("a failed ADD left its sandbox record %+v: the agent would attach a sandbox that never runs", rec)
		}
	})
	t.Run("annotated Pod whose ADD the agent fails", func(t *testing.T) {
		_, socket := startRawAgent(t, &cnipb.CniCmdResponse{Error: &cnipb.CniError{Code: 7, Msg: "IPPool vlan100-ipv4 is exhausted"}})
		err, _, _ := runCommand(t, commandAdd, socket, chainedArgs(map[string]string{"k8s.v1.cni.cncf.io/networks": "vlan100"}))
		var cniErr *types.Error
		if !errors.As(err, &cniErr) || cniErr.Code != 7 {
			t.Fatalf("ADD = %v, want the agent's error", err)
		}
		if rec, ok := readRecord(t, socket, "4f1a"); ok {
			t.Errorf("a failed ADD left its sandbox record %+v: the agent would attach a sandbox that never runs", rec)
		}
	})
}

func TestDelWithoutAgentIsSpooled(t *testing.T) {
	socket := socketInTempDir(t)
	args := chainedArgs(map[string]string{})
	if err, _, _ := runCommand(t, commandAdd, socket, args); err != nil {
		t.Fatal(err)
	}
	args.StdinData = []byte(`{"cniVersion":"0.4.0","name":"cbr0","type":"antrea"}`)
	err, stdout, stderr := runCommand(t, commandDel, socket, args)
	if err != nil || stdout != "" {
		t.Fatalf("DEL = %v, stdout %q; want success", err, stdout)
	}
	if !strings.Contains(stderr, "DEL spooled") {
		t.Errorf("stderr %q does not say the DEL was spooled", stderr)
	}
	entries := spooled(t, socket)
	if len(entries) != 1 {
		t.Fatalf("spool holds %d entries, want 1", len(entries))
	}
	e := entries[0].Entry
	if e.ContainerID != "4f1a" || e.IfName != "eth0" || e.Netns != args.Netns || e.Args != args.Args || e.Path != args.Path ||
		!bytes.Equal(e.Config, args.StdinData) || !strings.Contains(e.Reason, "not running") {
		t.Errorf("spooled %+v, want the DEL as invoked", e)
	}
	if _, ok := readRecord(t, socket, "4f1a"); ok {
		t.Errorf("the sandbox record survived its spooled DEL")
	}
	// The runtime repeating the DEL replaces the entry instead of adding one.
	if err, _, _ := runCommand(t, commandDel, socket, args); err != nil {
		t.Fatal(err)
	}
	if n := len(spooled(t, socket)); n != 1 {
		t.Errorf("a repeated DEL left %d entries, want 1", n)
	}
	if info, err := os.Stat(nodestate.ForSocket(socket).Spool); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("spool directory mode = %v (%v), want 0700", info.Mode().Perm(), err)
	}
}

func TestDelTheAgentAnswersIsNotSpooled(t *testing.T) {
	agent, socket := startRawAgent(t, &cnipb.CniCmdResponse{})
	args := chainedArgs(map[string]string{})
	if err, _, _ := runCommand(t, commandAdd, socket, args); err != nil {
		t.Fatal(err)
	}
	if err, _, _ := runCommand(t, commandDel, socket, args); err != nil {
		t.Fatal(err)
	}
	if len(agent.seen()) != 1 || agent.seen()[0].Command != commandDel {
		t.Errorf("agent saw %v, want the DEL only (the ADD needed no agent)", agent.seen())
	}
	if n := len(spooled(t, socket)); n != 0 {
		t.Errorf("spool holds %d entries, want none", n)
	}
	if _, ok := readRecord(t, socket, "4f1a"); ok {
		t.Errorf("the sandbox record survived its DEL")
	}
}

func TestDelTheAgentDoesNotAnswerInTimeIsSpooled(t *testing.T) {
	socket := socketInTempDir(t)
	listener, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listener.Close() })
	go func() { // accepts and never answers
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()
	var stdout, stderr bytes.Buffer
	p := New(&stdout, &stderr, func(key string) string {
		if key == SocketEnv {
			return socket
		}
		return ""
	})
	p.delTimeout = 300 * time.Millisecond
	start := time.Now()
	if err := p.Funcs().Del(chainedArgs(nil)); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("DEL took %s, want about the DEL timeout", took)
	}
	if entries := spooled(t, socket); len(entries) != 1 || !strings.Contains(entries[0].Entry.Reason, "did not answer DEL within 300ms") {
		t.Errorf("spool = %+v, want the DEL with the timeout as reason", entries)
	}
}

func TestDelFailsOnlyWhenItCannotBeSpooled(t *testing.T) {
	socket := socketInTempDir(t)
	// A file where the spool directory should be: nothing can be written there.
	if err := os.WriteFile(nodestate.ForSocket(socket).Spool, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err, _, _ := runCommand(t, commandDel, socket, chainedArgs(nil))
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != types.ErrTryAgainLater || !strings.Contains(cniErr.Msg, "could not be spooled") {
		t.Errorf("DEL = %v, want code 11 saying the DEL could not be spooled", err)
	}
}
