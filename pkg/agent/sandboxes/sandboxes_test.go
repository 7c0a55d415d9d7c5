package sandboxes

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/podvlan/podvlan/pkg/cni/nodestate/sandbox"
)

func TestIsNetworkNamespace(t *testing.T) {
	if !IsNetworkNamespace("/proc/self/ns/net") {
		t.Error("/proc/self/ns/net is not seen as a network namespace")
	}
	plain := filepath.Join(t.TempDir(), "cni-1234")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{plain, filepath.Join(t.TempDir(), "gone"), ""} {
		if IsNetworkNamespace(path) {
			t.Errorf("%q is seen as a live network namespace", path)
		}
	}
}

func TestStore(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	records := []sandbox.Record{
		{ContainerID: "old", Netns: "/ns/old", PodNamespace: "ns1", PodName: "web-0", PodUID: "u1", IfName: "eth0", Chained: true, Added: t0},
		{ContainerID: "new", Netns: "/ns/new", PodNamespace: "ns1", PodName: "web-0", PodUID: "u1", IfName: "eth0", Chained: true, Added: t0.Add(time.Minute)},
		{ContainerID: "gone", Netns: "/ns/gone", PodNamespace: "ns1", PodName: "db-0", PodUID: "u2", IfName: "eth0", Chained: true, Added: t0.Add(2 * time.Minute)},
		{ContainerID: "other", Netns: "/ns/other", PodNamespace: "ns2", PodName: "web-0", PodUID: "u3", IfName: "eth0", Chained: true, Added: t0},
	}
	for _, r := range records {
		if err := sandbox.Write(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{"/ns/old": true, "/ns/new": true, "/ns/other": true}
	s := &Store{dir: dir, alive: func(netns string) bool { return live[netns] }}

	all, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Errorf("List = %+v, want the 3 sandboxes whose netns is alive", all)
	}
	if _, err := os.Stat(filepath.Join(dir, sandbox.Name("gone"))); !os.IsNotExist(err) {
		t.Errorf("the record of a sandbox whose netns is gone was kept (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "broken.json")); !os.IsNotExist(err) {
		t.Errorf("an unreadable record was kept (%v)", err)
	}

	if sb, ok := s.Lookup("u1"); !ok || sb.ContainerID != "new" || sb.Netns != "/ns/new" || sb.PodName != "web-0" || sb.IfName != "eth0" {
		t.Errorf("Lookup(u1) = %+v, %v; want the newest sandbox of the Pod", sb, ok)
	}
	if sb, ok := s.LookupPod("ns2", "web-0"); !ok || sb.ContainerID != "other" {
		t.Errorf("LookupPod(ns2/web-0) = %+v, %v; want the sandbox of that namespace's Pod", sb, ok)
	}
	for _, uid := range []string{"u2", "", "nope"} {
		if sb, ok := s.Lookup(uid); ok {
			t.Errorf("Lookup(%q) = %+v, want nothing", uid, sb)
		}
	}
	// The new sandbox goes away: the Pod's older live one is what is left.
	delete(live, "/ns/new")
	if sb, ok := s.Lookup("u1"); !ok || sb.ContainerID != "old" {
		t.Errorf("Lookup(u1) after the newest sandbox went = %+v, %v; want the other live one", sb, ok)
	}
	if all, err := New(filepath.Join(dir, "missing")).List(); err != nil || len(all) != 0 {
		t.Errorf("List of a missing directory = %v, %v; want nothing", all, err)
	}
}

func TestPruneForgetsTheRecordsOfSandboxesThatAreGone(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"live", "gone1", "gone2"} {
		if err := sandbox.Write(dir, sandbox.Record{ContainerID: id, Netns: "/ns/" + id, IfName: "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
	s := &Store{dir: dir, alive: func(netns string) bool { return netns == "/ns/live" }}
	if n, err := s.Prune(); err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want the 2 records of sandboxes that are gone forgotten", n, err)
	}
	if n, err := s.Prune(); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v; want nothing left to forget", n, err)
	}
	if all, err := s.List(); err != nil || len(all) != 1 || all[0].ContainerID != "live" {
		t.Errorf("List after Prune = %+v, %v; want the live sandbox", all, err)
	}
}
