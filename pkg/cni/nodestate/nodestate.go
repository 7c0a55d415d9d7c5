// Package nodestate is the small root-only directory on the Node where the `antrea` CNI shim
// records what it must not lose while antrea-agent is away, and where the agent reads it back:
// the sandboxes seen at ADD (package sandbox) and the DELs the agent could not take (package
// spool). This package names the directories and writes their files; each sub-package owns the
// format of its entries.
//
// The directories sit next to the agent's CNI socket, so that the shim and the agent agree on
// them from the one path they already share, and so that several agents on one machine (the
// test stack's simulated Nodes) never read each other's entries. For the default socket
// /var/run/antrea/cni.sock they are /var/run/antrea/sandboxes and /var/run/antrea/spool.
//
// /var/run is a tmpfs: both directories are emptied by a Node reboot, together with every network
// namespace and sandbox their entries name. That is the right lifetime for sandbox records; for
// spooled DELs it means a reboot drops them, and what they would have released is released by the
// agent's reconciliation (ports whose Pod is gone) and the controller's IPPool garbage collection
// (allocations whose Pod is gone).
//
// Every file is written to a temporary file in the same directory, then renamed over the final
// name, so a reader sees the whole entry or none of it; readers skip the temporary files (names
// starting with "."). Spooled DELs are also synced to disk (WriteDurable); sandbox records, which
// are re-checked against the Node before use and die with the sandbox anyway, are not
// (WriteAtomic), which keeps the ADD of Pods without networks cheap where /var/run is on disk.
package nodestate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Dirs are the state directories of one agent.
type Dirs struct {
	// Sandboxes holds one record per sandbox the shim saw ADDed and not yet DELeted.
	Sandboxes string
	// Spool holds the DELs the shim could not hand to the agent.
	Spool string
}

// ForSocket returns the state directories that belong to the agent serving socket.
func ForSocket(socket string) Dirs {
	dir := filepath.Dir(socket)
	return Dirs{Sandboxes: filepath.Join(dir, "sandboxes"), Spool: filepath.Join(dir, "spool")}
}

// dirMode keeps the entries root-only (os.CreateTemp makes the files 0600): they carry network
// configurations and Pod identities.
const dirMode = 0o700

// IsTemporary reports whether name is a file WriteAtomic has not finished (or was interrupted in).
func IsTemporary(name string) bool { return strings.HasPrefix(name, ".") }

// WriteAtomic writes data as dir/name: readers see the old content or the new, never a part. It
// creates dir (mode 0700) when missing; the file gets mode 0600. name must be a plain file name
// not starting with ".". The write is not synced to disk: use WriteDurable for what must survive a
// crash of the Node.
func WriteAtomic(dir, name string, data []byte) error { return write(dir, name, data, false) }

// WriteDurable is WriteAtomic, and the file and its directory entry are synced to disk before it
// returns.
func WriteDurable(dir, name string, data []byte) error { return write(dir, name, data, true) }

func write(dir, name string, data []byte, durable bool) error {
	if name == "" || IsTemporary(name) || strings.ContainsRune(name, filepath.Separator) {
		return fmt.Errorf("invalid state file name %q", name)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create state directory %s: %w", dir, err)
	}
	// CreateTemp makes the file with mode 0600 (fileMode).
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("create a temporary file in %s: %w", dir, err)
	}
	tmpName := tmp.Name()
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmpName, err)
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", tmpName, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmpName, err)
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(tmpName, final); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmpName, final, err)
	}
	done = true
	if durable {
		// The rename is durable once the directory is synced; a failure here leaves the entry
		// in place, which is what the caller wanted, so it is not reported.
		if d, err := os.Open(dir); err == nil {
			_ = d.Sync()
			_ = d.Close()
		}
	}
	return nil
}

// Remove deletes dir/name; a file already gone is not an error.
func Remove(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// Entries returns the names of the complete entries in dir (none when dir does not exist).
func Entries(dir string) ([]string, error) {
	list, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state directory %s: %w", dir, err)
	}
	names := make([]string, 0, len(list))
	for _, e := range list {
		if e.Type().IsRegular() && !IsTemporary(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
