package delspool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/podvlan/podvlan/pkg/cni/nodestate/spool"
	"github.com/podvlan/podvlan/pkg/cni/server"
)

// recordingDeleter records the DELs it runs and fails those of the containers in failing.
type recordingDeleter struct {
	mu      sync.Mutex
	ran     []*server.Request
	failing map[string]bool
}

func (r *recordingDeleter) Del(_ context.Context, req *server.Request) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, req)
	if r.failing[req.ContainerID] {
		return errors.New("OVSDB transaction failed")
	}
	return nil
}

func spoolOne(t *testing.T, dir, containerID string, at time.Time) {
	t.Helper()
	e := spool.Entry{ContainerID: containerID, Netns: "/var/run/netns/cni-" + containerID, IfName: "eth0",
		Args: "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0", Path: "/opt/cni/bin",
		Config: []byte(`{"cniVersion":"0.4.0","name":"cbr0","type":"antrea"}`), CNIVersion: "0.4.0", Spooled: at}
	if err := spool.Write(dir, e); err != nil {
		t.Fatal(err)
	}
}

func left(t *testing.T, dir string) int {
	t.Helper()
	entries, _, err := spool.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestDrainRunsEachDELThroughTheHandlerAndRemovesIt(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	spoolOne(t, dir, "c2", t0.Add(time.Second))
	spoolOne(t, dir, "c1", t0)
	del := &recordingDeleter{}
	d := New(dir, del, func() error { return nil })
	if n := d.Drain(context.Background()); n != 0 {
		t.Errorf("Drain left %d, want 0", n)
	}
	if len(del.ran) != 2 || del.ran[0].ContainerID != "c1" || del.ran[1].ContainerID != "c2" {
		t.Fatalf("ran %+v, want c1 then c2 (oldest first)", del.ran)
	}
	got := del.ran[0]
	want := &server.Request{Command: server.CommandDel, ContainerID: "c1", Netns: "/var/run/netns/cni-c1", IfName: "eth0",
		Args: "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0", Path: "/opt/cni/bin", CNIVersion: "0.4.0"}
	if got.Command != want.Command || got.ContainerID != want.ContainerID || got.Netns != want.Netns || got.IfName != want.IfName ||
		got.Args != want.Args || got.Path != want.Path || got.CNIVersion != want.CNIVersion || string(got.Config) != `{"cniVersion":"0.4.0","name":"cbr0","type":"antrea"}` {
		t.Errorf("request = %+v, want the DEL as the shim would have forwarded it", got)
	}
	if n := left(t, dir); n != 0 {
		t.Errorf("%d entries left after they ran", n)
	}
}

func TestDrainWaitsUntilDELCanBeServed(t *testing.T) {
	dir := t.TempDir()
	spoolOne(t, dir, "c1", time.Now())
	del := &recordingDeleter{}
	notYet := errors.New("caches not synced")
	ready := notYet
	d := New(dir, del, func() error { return ready })
	if n := d.Drain(context.Background()); n != -1 || len(del.ran) != 0 {
		t.Fatalf("Drain before ready: %d, ran %d; want nothing run", n, len(del.ran))
	}
	ready = nil
	if n := d.Drain(context.Background()); n != 0 || len(del.ran) != 1 {
		t.Errorf("Drain once ready: %d left, ran %d; want the DEL run", n, len(del.ran))
	}
}

func TestAFailedDELStaysAndIsRetriedLater(t *testing.T) {
	dir := t.TempDir()
	spoolOne(t, dir, "c1", time.Now())
	del := &recordingDeleter{failing: map[string]bool{"c1": true}}
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	d := New(dir, del, func() error { return nil })
	d.now = func() time.Time { return now }
	if n := d.Drain(context.Background()); n != 1 || left(t, dir) != 1 {
		t.Fatalf("a failed DEL: left %d, want it kept", n)
	}
	d.Drain(context.Background())
	if len(del.ran) != 1 {
		t.Errorf("retried at once (%d runs), want a delay", len(del.ran))
	}
	now = now.Add(PollInterval + time.Millisecond)
	del.failing = nil
	if n := d.Drain(context.Background()); n != 0 || len(del.ran) != 2 || left(t, dir) != 0 {
		t.Errorf("after the delay: left %d, runs %d; want the DEL run again and removed", n, len(del.ran))
	}
}

func TestUndecodableEntriesAndOldTemporariesAreRemoved(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "0bad.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".x.json.1")
	if err := os.WriteFile(tmp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, ".y.json.2")
	if err := os.WriteFile(fresh, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	New(dir, &recordingDeleter{}, func() error { return nil }).Drain(context.Background())
	for path, wantGone := range map[string]bool{filepath.Join(dir, "0bad.json"): true, tmp: true, fresh: false} {
		_, err := os.Stat(path)
		if gone := os.IsNotExist(err); gone != wantGone {
			t.Errorf("%s gone = %v, want %v", filepath.Base(path), gone, wantGone)
		}
	}
}

func TestDepthIsReportedAfterEveryPassAlsoBeforeDELCanBeServed(t *testing.T) {
	dir := t.TempDir()
	spoolOne(t, dir, "c1", time.Now())
	spoolOne(t, dir, "c2", time.Now())
	del := &recordingDeleter{failing: map[string]bool{"c2": true}}
	ready := errors.New("caches not synced")
	d := New(dir, del, func() error { return ready })
	var depths []int
	d.OnDepth(func(n int) { depths = append(depths, n) })
	var results []error
	d.OnResult(func(_ spool.Entry, _ time.Duration, err error) { results = append(results, err) })
	d.Drain(context.Background())
	ready = nil
	d.Drain(context.Background())
	if len(depths) != 2 || depths[0] != 2 || depths[1] != 1 {
		t.Errorf("depths %v, want [2 1]: both waiting before ready, the failing one after the pass", depths)
	}
	if len(results) != 2 || (results[0] == nil) == (results[1] == nil) {
		t.Errorf("results %v, want one success and one failure", results)
	}
}
