package spool

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteListRemove(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	older := Entry{ContainerID: "c1", IfName: "eth0", Config: []byte(`{"name":"cbr0","type":"antrea"}`), Spooled: t0}
	newer := Entry{ContainerID: "c2", IfName: "net1", Config: []byte(`{"name":"vlan100","type":"antrea","networkType":"vlan"}`), Spooled: t0.Add(time.Second)}
	for _, e := range []Entry{newer, older} {
		if err := Write(dir, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "0bad.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	entries, bad, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Entry.ContainerID != "c1" || entries[1].Entry.ContainerID != "c2" {
		t.Fatalf("List = %+v, want c1 then c2 (oldest first)", entries)
	}
	if string(entries[1].Entry.Config) != string(newer.Config) {
		t.Errorf("config = %s, want it unchanged", entries[1].Entry.Config)
	}
	if _, ok := bad["0bad.json"]; !ok || len(bad) != 1 {
		t.Errorf("bad = %v, want the undecodable entry", bad)
	}
	if err := Remove(dir, entries[0].Name); err != nil {
		t.Fatal(err)
	}
	if entries, _, _ := List(dir); len(entries) != 1 || entries[0].Entry.ContainerID != "c2" {
		t.Errorf("after Remove: %+v, want c2 only", entries)
	}
}

func TestNameIdentifiesTheInvocation(t *testing.T) {
	base := Name("c1", "eth0", "cbr0")
	if Name("c1", "eth0", "cbr0") != base {
		t.Error("the same DEL gets another name")
	}
	for _, other := range []string{Name("c2", "eth0", "cbr0"), Name("c1", "net1", "cbr0"), Name("c1", "eth0", "vlan100"), Name("c1e", "th0", "cbr0")} {
		if other == base {
			t.Errorf("two different DELs share the name %s", base)
		}
	}
}

func TestWriteIsBounded(t *testing.T) {
	defer func(old int) { limit = old }(limit)
	limit = 2
	dir := t.TempDir()
	for _, id := range []string{"c1", "c2"} {
		if err := Write(dir, Entry{ContainerID: id, IfName: "eth0", Config: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := Write(dir, Entry{ContainerID: "c3", IfName: "eth0", Config: []byte(`{}`)}); !errors.Is(err, ErrFull) {
		t.Errorf("third entry: %v, want ErrFull", err)
	}
	if err := Write(dir, Entry{ContainerID: "c1", IfName: "eth0", Config: []byte(`{}`), Reason: "again"}); err != nil {
		t.Errorf("replacing an entry of a full spool: %v, want success", err)
	}
	if err := Write(dir, Entry{ContainerID: "c4", Config: make([]byte, MaxEntryBytes)}); err == nil {
		t.Error("an entry above MaxEntryBytes was written")
	}
	if err := Write(dir, Entry{IfName: "eth0"}); err == nil {
		t.Error("an entry without container ID was written")
	}
}
