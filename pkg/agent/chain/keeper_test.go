package chain

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/podvlan/podvlan/pkg/cniinstall"
)

// calicoList is laid out as Calico's install-cni writes 10-calico.conflist.
const calicoList = `{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "datastore_type": "kubernetes",
      "ipam": {"type": "calico-ipam"},
      "policy": {"type": "k8s"}
    },
    {
      "type": "portmap",
      "snat": true,
      "capabilities": {"portMappings": true}
    }
  ]
}
`

type fakeMetrics struct {
	mu               sync.Mutex
	missing, problem bool
	restored         int
}

func (m *fakeMetrics) CNIChainMissing(missing bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.missing = missing
}

func (m *fakeMetrics) CNIChainProblem(problem bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.problem = problem
}

func (m *fakeMetrics) CNIChainRestored() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.restored++
}

// get returns whether antrea is chained (not missing), whether there is a problem, and the restores.
func (m *fakeMetrics) get() (chained, problem bool, restored int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.missing, m.problem, m.restored
}

type keeperEnv struct {
	dir      string
	file     string
	recorder *record.FakeRecorder
	metrics  *fakeMetrics
	keeper   *Keeper
}

func newKeeperEnv(t *testing.T, want Want, resync time.Duration) *keeperEnv {
	t.Helper()
	e := &keeperEnv{dir: t.TempDir(), recorder: record.NewFakeRecorder(100), metrics: &fakeMetrics{}}
	e.file = filepath.Join(e.dir, "10-calico.conflist")
	if err := os.WriteFile(e.file, []byte(calicoList), 0o644); err != nil {
		t.Fatal(err)
	}
	e.keeper = New(Options{ConfDir: e.dir, Want: want, Resync: resync, Recorder: e.recorder,
		Node: &corev1.ObjectReference{Kind: "Node", Name: "node-1"}, Metrics: e.metrics})
	return e
}

// run runs the keeper until the test ends.
func (e *keeperEnv) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.keeper.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (e *keeperEnv) entries(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile(e.file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), string(cniinstall.Entry("")))
}

// waitEvent waits for an Event whose text has want.
func (e *keeperEnv) waitEvent(t *testing.T, within time.Duration, want string) string {
	t.Helper()
	deadline := time.After(within)
	var seen []string
	for {
		select {
		case ev := <-e.recorder.Events:
			if strings.Contains(ev, want) {
				return ev
			}
			seen = append(seen, ev)
		case <-deadline:
			t.Fatalf("no Event with %q within %v; saw %q", want, within, seen)
		}
	}
}

func poll(t *testing.T, within time.Duration, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("after %v: %v", within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// writeAsCalico replaces the file the way installers do: a temporary file renamed over it.
func writeAsCalico(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestKeeperChainsOnceAndRechainsWithinTwoSecondsOfARewrite(t *testing.T) {
	// A resync far beyond the test: only the directory watch can make the deadline.
	e := newKeeperEnv(t, on, time.Hour)
	e.run(t)
	e.waitEvent(t, 2*time.Second, "Normal "+ReasonChained)
	if n := e.entries(t); n != 1 {
		t.Fatalf("antrea chained %d times, want once", n)
	}

	for _, how := range []struct {
		name  string
		write func()
	}{
		{"renamed over", func() { writeAsCalico(t, e.file, calicoList) }},
		{"written in place", func() {
			if err := os.WriteFile(e.file, []byte(calicoList), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(how.name, func(t *testing.T) {
			_, _, before := e.metrics.get()
			how.write()
			took := poll(t, 2*time.Second, func() error {
				if n := e.entries(t); n != 1 {
					return fmt.Errorf("antrea chained %d times", n)
				}
				return nil
			})
			t.Logf("re-chained %v after the rewrite", took)
			e.waitEvent(t, time.Second, "Normal "+ReasonRestored)
			poll(t, time.Second, func() error {
				if chained, problem, restored := e.metrics.get(); !chained || problem || restored != before+1 {
					return fmt.Errorf("metrics: chained %v problem %v restored %d (was %d)", chained, problem, restored, before)
				}
				return nil
			})
		})
	}

	t.Run("a copy of the entry added by someone else is removed", func(t *testing.T) {
		data, err := os.ReadFile(e.file)
		if err != nil {
			t.Fatal(err)
		}
		twice, _, err := cniinstall.Chain([]byte(calicoList), cniinstall.Entry(""))
		if err != nil {
			t.Fatal(err)
		}
		entry := string(cniinstall.Entry(""))
		doubled := strings.Replace(string(twice), entry, entry+", "+entry, 1)
		if doubled == string(twice) {
			t.Fatalf("the entry %s is not in the chained list:\n%s", entry, twice)
		}
		writeAsCalico(t, e.file, doubled)
		poll(t, 2*time.Second, func() error {
			if n := e.entries(t); n != 1 {
				return fmt.Errorf("antrea chained %d times", n)
			}
			return nil
		})
		e.waitEvent(t, time.Second, ReasonRepaired)
		if after, _ := os.ReadFile(e.file); string(after) != string(data) {
			t.Errorf("after the repair:\n%s\nwant\n%s", after, data)
		}
	})
}

func TestKeeperUnchainsWhenUnwantedAndLeavesOtherFilesAlone(t *testing.T) {
	e := newKeeperEnv(t, off, time.Hour)
	chained, _, err := cniinstall.Chain([]byte(calicoList), cniinstall.Entry(""))
	if err != nil {
		t.Fatal(err)
	}
	writeAsCalico(t, e.file, string(chained))
	other := filepath.Join(e.dir, "99-other.conf")
	if err := os.WriteFile(other, []byte(`{"cniVersion":"1.0.0","name":"o","type":"bridge"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := e.keeper.Sync()
	if err != nil || d.Action != Unchain {
		t.Fatalf("Sync = %v, %v; want unchain", d.Action, err)
	}
	if data, _ := os.ReadFile(e.file); string(data) != calicoList {
		t.Errorf("after unchaining:\n%s\nwant the original\n%s", data, calicoList)
	}
	e.waitEvent(t, time.Second, ReasonUnchained)
	if d, err := e.keeper.Sync(); err != nil || d.Action != Nothing {
		t.Errorf("second Sync = %v, %v; want nothing", d.Action, err)
	}
}

func TestKeeperWaitsForThePrimaryPluginAndChainsWhenItArrives(t *testing.T) {
	e := newKeeperEnv(t, on, time.Hour)
	if err := os.Remove(e.file); err != nil {
		t.Fatal(err)
	}
	e.run(t)
	e.waitEvent(t, 2*time.Second, "Warning "+ReasonFailed)
	if _, problem, _ := e.metrics.get(); !problem {
		t.Error("no problem reported while there is no configuration")
	}
	writeAsCalico(t, e.file, calicoList)
	poll(t, 2*time.Second, func() error {
		if n := e.entries(t); n != 1 {
			return fmt.Errorf("antrea chained %d times", n)
		}
		return nil
	})
	poll(t, time.Second, func() error {
		if chained, problem, _ := e.metrics.get(); !chained || problem {
			return fmt.Errorf("metrics: chained %v problem %v", chained, problem)
		}
		return nil
	})
}

func TestKeeperNeverChainsUnderMultus(t *testing.T) {
	e := newKeeperEnv(t, on, time.Hour)
	multus := filepath.Join(e.dir, "00-multus.conf")
	if err := os.WriteFile(multus, []byte(`{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus","kubeconfig":"/x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := e.keeper.Sync()
	if err != nil || d.Action != Nothing {
		t.Fatalf("Sync = %v, %v; want nothing", d.Action, err)
	}
	e.waitEvent(t, time.Second, ReasonNotChained)
	if data, _ := os.ReadFile(multus); strings.Contains(string(data), "antrea") {
		t.Errorf("antrea chained after multus: %s", data)
	}
	if n := e.entries(t); n != 0 {
		t.Errorf("antrea chained into the non-primary %s", e.file)
	}
}

func TestKeeperUninstallRemovesEntryAndBinary(t *testing.T) {
	e := newKeeperEnv(t, on, time.Hour)
	if _, err := e.keeper.Sync(); err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	bin := filepath.Join(binDir, cniinstall.PluginType)
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.keeper.Uninstall(binDir); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(e.file); string(data) != calicoList {
		t.Errorf("after the uninstall:\n%s\nwant the original", data)
	}
	if _, err := os.Stat(bin); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", bin, err)
	}
}
