package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteListRemove(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	chained := Record{ContainerID: "4f1a", Netns: "/var/run/netns/cni-1", PodNamespace: "ns1", PodName: "web-0", PodUID: "u1", IfName: "eth0", Chained: true, Added: now}
	if err := Write(dir, chained); err != nil {
		t.Fatal(err)
	}
	// A Multus delegate's ADD for the same sandbox does not replace the chained record.
	if err := Write(dir, Record{ContainerID: "4f1a", Netns: "/var/run/netns/cni-1", IfName: "net1", Added: now}); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, Record{ContainerID: "77", Netns: "/var/run/netns/cni-2", IfName: "net1", Added: now}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	records, bad, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Record{}
	for _, r := range records {
		got[r.Record.ContainerID] = r.Record
	}
	if len(records) != 2 || got["4f1a"] != chained || got["77"].IfName != "net1" {
		t.Errorf("List = %+v, want the chained record of 4f1a and the delegate's of 77", records)
	}
	if len(bad) != 1 || bad["broken.json"] == nil {
		t.Errorf("bad = %v, want broken.json", bad)
	}
	if err := Remove(dir, "4f1a"); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir, "4f1a"); err != nil {
		t.Errorf("removing twice: %v", err)
	}
	if records, _, _ := List(dir); len(records) != 1 || records[0].Record.ContainerID != "77" {
		t.Errorf("after Remove: %+v, want 77 only", records)
	}
}

func TestName(t *testing.T) {
	if got := Name("4f1acafe"); got != "4f1acafe.json" {
		t.Errorf("Name of a hex ID = %q, want it unchanged", got)
	}
	for _, id := range []string{"../../etc/passwd", "a/b", ".hidden", strings.Repeat("a", 200)} {
		got := Name(id)
		if strings.ContainsAny(got, "/") || strings.HasPrefix(got, ".") || len(got) > 64 {
			t.Errorf("Name(%q) = %q, want a plain file name", id, got)
		}
	}
	if Name("a/b") == Name("a_b") {
		t.Error("two container IDs share a record")
	}
}
