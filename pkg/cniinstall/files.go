package cniinstall

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Extensions of the files the container runtime reads network configurations from (containerd's
// CRI plugin through go-cni, CRI-O through ocicni): a .conflist holds a list, a .conf or .json a
// single plugin.
const (
	ListExt = ".conflist"
	// backupSuffix marks the original single-plugin file while its converted list is installed;
	// the runtime ignores it (it reads only the extensions above).
	backupSuffix = ".antrea-backup"
)

var configExts = []string{".conf", ListExt, ".json"}

// isConfigName reports whether the runtime would read a file of this name.
func isConfigName(name string) bool { return slices.Contains(configExts, filepath.Ext(name)) }

// PrimaryConfig returns the file the runtime uses as the Node's network configuration among the
// file names of the configuration directory: the lexically first one with a configuration extension.
func PrimaryConfig(names []string) (string, bool) {
	var candidates []string
	for _, n := range names {
		if isConfigName(n) {
			candidates = append(candidates, n)
		}
	}
	if len(candidates) == 0 {
		return "", false
	}
	slices.Sort(candidates)
	return candidates[0], true
}

// IsList reports whether a configuration file of this name holds a list (the runtime decides by
// the extension, not by the content).
func IsList(name string) bool { return filepath.Ext(name) == ListExt }

// ListName is the name a single-plugin file gets once converted into a list: 10-x.conf -> 10-x.conflist.
func ListName(name string) string { return strings.TrimSuffix(name, filepath.Ext(name)) + ListExt }

// backupName is where the original of a converted file is kept while the list is installed.
func backupName(name string) string { return name + backupSuffix }

// configNames lists the non-directory entries of dir (every name, configuration or not).
func configNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read CNI configuration directory %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// writeFileAtomic replaces path with data: a temporary file in the same directory (so the rename
// cannot cross file systems), written, synced and renamed over path, then the directory synced.
// Readers see the old content or the new one, never a part. The temporary name has no
// configuration extension, so that the runtime never reads it.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(path)
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp.Name(), path, err)
	}
	done = true
	return syncDir(dir)
}

// renameSynced renames within one directory and makes the rename durable.
func renameSynced(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("rename %s to %s: %w", from, to, err)
	}
	return syncDir(filepath.Dir(to))
}

// removeSynced removes path (absent is fine) and makes the removal durable.
func removeSynced(path string) (bool, error) {
	if err := os.Remove(path); err != nil {
		if os.IsNotExist(err) {
			return false, nil
		}
		return false, fmt.Errorf("remove %s: %w", path, err)
	}
	return true, syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// fileMode returns path's permission bits, or def when it does not exist.
func fileMode(path string, def os.FileMode) os.FileMode {
	if st, err := os.Stat(path); err == nil {
		return st.Mode().Perm()
	}
	return def
}

// copyBinary installs src as dst (mode 0755) atomically; changed is false when dst already has
// the same content. Replacing a binary by rename is safe while the old one runs.
func copyBinary(src, dst string) (changed bool, err error) {
	in, err := os.Open(src)
	if err != nil {
		return false, fmt.Errorf("open plugin binary: %w", err)
	}
	defer in.Close()
	data, err := io.ReadAll(in)
	if err != nil {
		return false, fmt.Errorf("read plugin binary %s: %w", src, err)
	}
	if len(data) == 0 {
		return false, fmt.Errorf("plugin binary %s is empty", src)
	}
	if cur, err := os.ReadFile(dst); err == nil && bytes.Equal(cur, data) {
		if st, err := os.Stat(dst); err == nil && st.Mode().Perm() == 0o755 {
			return false, nil
		}
	}
	if err := writeFileAtomic(dst, data, 0o755); err != nil {
		return false, err
	}
	return true, nil
}
