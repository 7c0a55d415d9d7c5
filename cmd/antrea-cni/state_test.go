package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/podvlan/podvlan/pkg/agent/delspool"
	"github.com/podvlan/podvlan/pkg/agent/sandboxes"
	"github.com/podvlan/podvlan/pkg/cni/nodestate"
	"github.com/podvlan/podvlan/pkg/cni/nodestate/sandbox"
	"github.com/podvlan/podvlan/pkg/cni/server"
)

// primaryPlugin writes a stand-in for the primary plugin (bridge in a real Node): a script that
// answers ADD with a fixed result and every other command with nothing.
func primaryPlugin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
cat >/dev/null
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"10.244.0.7/24","interface":0}]}'
fi
`
	if err := os.WriteFile(filepath.Join(dir, "primary"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chainedList is the primary plugin followed by the chained antrea entry declaring the
// pod-annotations capability, as the install step writes it.
func chainedList(t *testing.T, socket string) *libcni.NetworkConfigList {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"cniVersion": "0.4.0", "name": "cbr0", "plugins": []any{
		map[string]any{"type": "primary"},
		map[string]any{"type": "antrea", "cniSocket": socket, "capabilities": map[string]bool{"io.kubernetes.cri.pod-annotations": true}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.NetworkConfFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestTheAgentRunsWhatTheShimSpooled: the real binary, run by libcni with the agent away, answers
// the ADD of a Pod without networks from the annotations libcni passes through the declared
// capability (the primary result, in the list's version), records the sandbox, and spools the
// DEL; the agent's drainer then runs that DEL through the agent's handler exactly as the shim
// would have forwarded it, and the record is gone.
func TestTheAgentRunsWhatTheShimSpooled(t *testing.T) {
	socket := socketPath(t) // no agent
	stderr := &bytes.Buffer{}
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: stderr}, PluginDecoder: version.PluginDecoder{}}
	cni := libcni.NewCNIConfigWithCacheDir([]string{binDir, primaryPlugin(t)}, t.TempDir(), exec)
	list := chainedList(t, socket)
	pod := podRuntimeConf("a1a2a3a4a5a6a7a8a9a0")
	pod.CapabilityArgs = map[string]any{"io.kubernetes.cri.pod-annotations": map[string]string{"app": "web"}}
	ctx := testContext(t)

	result, err := cni.AddNetworkList(ctx, list, pod)
	if err != nil {
		t.Fatalf("ADD of a Pod without networks, agent away: %v (stderr %s)", err, stderr)
	}
	if result.Version() != "0.4.0" {
		t.Errorf("result version %s, want the list's 0.4.0", result.Version())
	}
	dirs := nodestate.ForSocket(socket)
	store := sandboxes.New(dirs.Sandboxes)
	records, _, err := sandbox.List(dirs.Sandboxes)
	if err != nil || len(records) != 1 || records[0].Record.PodUID != "6b5d3c1e-0000-4000-8000-a1a2a3a4a5a6" || records[0].Record.IfName != "net1" {
		t.Errorf("sandbox records %+v (%v), want the Pod's", records, err)
	}

	// With annotations asking for a network, the agent is needed.
	annotated := podRuntimeConf("b1b2b3b4b5b6b7b8b9b0")
	annotated.CapabilityArgs = map[string]any{"io.kubernetes.cri.pod-annotations": map[string]string{"k8s.v1.cni.cncf.io/networks": "vlan100"}}
	if _, err := cni.AddNetworkList(ctx, list, annotated); err == nil {
		t.Error("ADD of an annotated Pod succeeded with the agent away")
	}

	if err := cni.DelNetworkList(ctx, list, pod); err != nil {
		t.Fatalf("DEL with the agent away: %v", err)
	}
	agent := &fakeAgent{}
	drainer := delspool.New(dirs.Spool, agent, func() error { return nil })
	if left := drainer.Drain(context.Background()); left != 0 {
		t.Fatalf("%d spooled DELs left after draining", left)
	}
	seen := agent.seen()
	if len(seen) != 1 {
		t.Fatalf("the agent ran %d DELs, want the one spooled", len(seen))
	}
	del := seen[0]
	if del.Command != server.CommandDel || del.ContainerID != pod.ContainerID || del.Netns != pod.NetNS || del.IfName != pod.IfName ||
		del.CNIVersion != "0.4.0" {
		t.Errorf("spooled DEL ran as %+v, want the runtime's DEL", del)
	}
	var conf map[string]any
	if err := json.Unmarshal(del.Config, &conf); err != nil || conf["type"] != "antrea" || conf["runtimeConfig"] == nil {
		t.Errorf("spooled DEL's configuration %s, want the one libcni passed (with runtimeConfig): %v", del.Config, err)
	}
	if all, err := store.List(); err != nil || len(all) != 0 {
		t.Errorf("live sandboxes after DEL: %+v, %v; want none", all, err)
	}
	if records, _, _ := sandbox.List(dirs.Sandboxes); len(records) != 0 {
		t.Errorf("sandbox records after DEL: %+v, want none", records)
	}
}
