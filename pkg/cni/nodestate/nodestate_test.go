package nodestate

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestForSocket(t *testing.T) {
	got := ForSocket("/var/run/antrea/cni.sock")
	want := Dirs{Sandboxes: "/var/run/antrea/sandboxes", Spool: "/var/run/antrea/spool"}
	if got != want {
		t.Errorf("ForSocket = %+v, want %+v", got, want)
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := WriteAtomic(dir, "a.json", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteDurable(dir, "a.json", []byte("two")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "a.json"))
	if err != nil || string(data) != "two" {
		t.Errorf("content = %q (%v), want the last write", data, err)
	}
	info, err := os.Stat(filepath.Join(dir, "a.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v (%v), want 0600", info.Mode().Perm(), err)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("directory mode = %v (%v), want 0700", info.Mode().Perm(), err)
	}
	// An interrupted write (a leftover temporary file) is not an entry.
	if err := os.WriteFile(filepath.Join(dir, ".b.json.123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	names, err := Entries(dir)
	if err != nil || !slices.Equal(names, []string{"a.json"}) {
		t.Errorf("Entries = %v (%v), want only the complete entry", names, err)
	}
	for _, bad := range []string{"", ".hidden", "a/b"} {
		if err := WriteAtomic(dir, bad, nil); err == nil {
			t.Errorf("WriteAtomic(%q) succeeded, want an invalid name error", bad)
		}
	}
	if err := Remove(dir, "a.json"); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir, "a.json"); err != nil {
		t.Errorf("removing a file already gone: %v", err)
	}
	if names, err := Entries(filepath.Join(dir, "missing")); err != nil || len(names) != 0 {
		t.Errorf("Entries of a missing directory = %v, %v; want none", names, err)
	}
}
