// Package cniinstall puts the antrea CNI plugin on a Node and takes it away again: the `antrea`
// binary into the CNI bin directory, and a {"type": "antrea"} entry chained as the last plugin of
// the Node's primary network configuration list, the file the container runtime uses (the
// lexically first *.conf, *.conflist or *.json of the configuration directory).
//
// It must never break the Node's primary network: every write is a new file renamed into place
// (readers see the old or the new content, never a part), edits splice our entry in and out and
// leave every other byte alone, running twice changes nothing, and a configuration the runtime
// could not load is refused with an error, untouched. A single-plugin .conf is converted into a
// .conflist of the same name; the original is kept beside it (name + ".antrea-backup", which the
// runtime ignores) and put back on uninstall.
package cniinstall

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/klog/v2"
)

// Options say where things go.
type Options struct {
	// ConfDir is the CNI configuration directory (/etc/cni/net.d on the host).
	ConfDir string
	// BinDir is the CNI plugin directory (/opt/cni/bin on the host).
	BinDir string
	// PluginBinary is the `antrea` shim to copy into BinDir; empty skips the copy on install.
	PluginBinary string
	// CNISocket is written into the entry when it is not empty (a non-default agent socket).
	CNISocket string
}

// Result says what was done.
type Result struct {
	// ConfigFile is the configuration file that holds (install) or held (uninstall) the entry.
	ConfigFile string
	// ConfigChanged is false when the configuration already was as wanted.
	ConfigChanged bool
	// ConvertedFrom is the single-plugin file converted into ConfigFile (install) or restored
	// from it (uninstall); empty when there was none.
	ConvertedFrom string
	// BinaryChanged is true when the binary was written (install) or removed (uninstall).
	BinaryChanged bool
	// NotChained says why the entry was not chained (install): the primary configuration is a
	// meta plugin such as Multus, which calls antrea itself for the networks that are antrea's.
	NotChained string
}

// metaPlugins are primary plugins that attach a Pod's networks themselves by calling other
// plugins (antrea among them, for NetworkAttachmentDefinitions of type antrea); chaining antrea
// after them would attach those networks a second time.
var metaPlugins = map[string]bool{"multus": true, "multus-shim": true}

// primaryType returns the type of the first plugin of a configuration (list or single plugin).
func primaryType(data []byte, isList bool) string {
	if isList {
		var l struct {
			Plugins []struct {
				Type string `json:"type"`
			} `json:"plugins"`
		}
		if json.Unmarshal(data, &l) == nil && len(l.Plugins) > 0 {
			return l.Plugins[0].Type
		}
		return ""
	}
	var c struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &c)
	return c.Type
}

// ErrNoConfig is returned when the configuration directory holds no network configuration: the
// primary network plugin has not installed itself yet (retry later).
var ErrNoConfig = errors.New("no CNI network configuration yet")

// Install copies the plugin binary, then chains the entry into the primary configuration. Both
// are decided before anything is written, so that a configuration that cannot be chained into
// leaves the Node as it was; the binary goes first, so that the runtime never calls a plugin that
// is not there.
func Install(o Options) (Result, error) {
	var res Result
	p, err := planInstall(o)
	if err != nil {
		return res, err
	}
	if o.PluginBinary != "" {
		changed, err := copyBinary(o.PluginBinary, filepath.Join(o.BinDir, PluginType))
		if err != nil {
			return res, err
		}
		res.BinaryChanged = changed
	}
	res.ConfigFile = filepath.Join(o.ConfDir, p.target)
	res.NotChained = p.notChained
	if p.out == nil {
		logResult("Installed", res)
		return res, nil
	}
	if err := writeFileAtomic(res.ConfigFile, p.out, p.mode); err != nil {
		return res, err
	}
	res.ConfigChanged = true
	if p.target != p.primary {
		// The list is in place; the original, which sorts first, still is what the runtime uses
		// until it is renamed away.
		from := filepath.Join(o.ConfDir, p.primary)
		if err := renameSynced(from, filepath.Join(o.ConfDir, backupName(p.primary))); err != nil {
			return res, err
		}
		res.ConvertedFrom = from
	}
	logResult("Installed", res)
	return res, nil
}

// InstallBinary copies the plugin binary (o.PluginBinary into o.BinDir) and leaves the
// configuration alone: the agent's chain keeper edits it.
func InstallBinary(o Options) (Result, error) {
	var res Result
	if o.PluginBinary == "" || o.BinDir == "" {
		return res, errors.New("installing the binary needs the plugin binary and the CNI bin directory")
	}
	changed, err := copyBinary(o.PluginBinary, filepath.Join(o.BinDir, PluginType))
	if err != nil {
		return res, err
	}
	res.BinaryChanged = changed
	klog.InfoS("Installed the antrea CNI plugin binary", "dir", o.BinDir, "binaryChanged", changed)
	return res, nil
}

// installPlan is what Install will write: out (nil: nothing) as target, which is the primary file
// itself or, for a single-plugin primary, the list it is converted into.
type installPlan struct {
	primary, target string
	out             []byte
	mode            os.FileMode
	notChained      string
}

func planInstall(o Options) (installPlan, error) {
	names, err := configNames(o.ConfDir)
	if err != nil {
		return installPlan{}, err
	}
	primary, ok := PrimaryConfig(names)
	if !ok {
		return installPlan{}, fmt.Errorf("%w in %s: the primary network plugin must be installed first", ErrNoConfig, o.ConfDir)
	}
	path := filepath.Join(o.ConfDir, primary)
	data, err := os.ReadFile(path)
	if err != nil {
		return installPlan{}, fmt.Errorf("read %s: %w", path, err)
	}
	p := installPlan{primary: primary, target: primary, mode: fileMode(path, 0o644)}
	if t := primaryType(data, IsList(primary)); metaPlugins[t] {
		p.notChained = fmt.Sprintf("the primary configuration %s is %s, which calls antrea itself for networks of type antrea; chaining would attach them twice", path, t)
		return p, nil
	}
	entry := Entry(o.CNISocket)
	if IsList(primary) {
		out, changed, err := Chain(data, entry)
		if err != nil {
			return installPlan{}, refusal(path, err)
		}
		if changed {
			p.out = out
		}
		return p, nil
	}
	list, err := ConfToList(data)
	if err != nil {
		return installPlan{}, refusal(path, err)
	}
	if p.out, _, err = Chain(list, entry); err != nil {
		return installPlan{}, refusal(path, err)
	}
	p.target = ListName(primary)
	targetPath := filepath.Join(o.ConfDir, p.target)
	// A list left by an interrupted conversion is ours to overwrite; anything else is not.
	if existing, err := os.ReadFile(targetPath); err == nil && !bytes.Equal(existing, p.out) {
		return installPlan{}, fmt.Errorf("cannot convert %s into a configuration list: %s exists already (left alone)", path, targetPath)
	}
	var after []string
	for _, n := range names {
		if n != primary {
			after = append(after, n)
		}
	}
	if next, _ := PrimaryConfig(append(after, p.target)); next != p.target {
		return installPlan{}, fmt.Errorf("cannot convert %s into a configuration list: %s would not be the primary configuration (%s would)", path, p.target, next)
	}
	return p, nil
}

// Uninstall removes the entry from every configuration list of the directory that has one
// (normally only the primary one), restores a converted single-plugin file when the list is
// otherwise as the conversion made it, then removes the binary. The configuration goes first, so
// that the runtime never calls a plugin that is gone. An unparsable primary configuration is an
// error and nothing is changed; an unparsable other file is skipped.
func Uninstall(o Options) (Result, error) {
	var res Result
	names, err := configNames(o.ConfDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	primary, _ := PrimaryConfig(names)
	type edit struct {
		name string
		out  []byte
	}
	var edits []edit
	for _, name := range names {
		if !IsList(name) {
			continue
		}
		path := filepath.Join(o.ConfDir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return res, fmt.Errorf("read %s: %w", path, err)
		}
		out, changed, err := Unchain(data)
		if err != nil {
			if name == primary {
				return res, refusal(path, err)
			}
			klog.InfoS("Skipping a CNI configuration list that does not load", "file", path, "err", err)
			continue
		}
		if changed {
			edits = append(edits, edit{name, out})
		}
	}
	for _, e := range edits {
		path := filepath.Join(o.ConfDir, e.name)
		res.ConfigFile, res.ConfigChanged = path, true
		restored, err := restoreConverted(o.ConfDir, e.name, e.out)
		if err != nil {
			return res, err
		}
		if restored != "" {
			res.ConvertedFrom = restored
			continue
		}
		if err := writeFileAtomic(path, e.out, fileMode(path, 0o644)); err != nil {
			return res, err
		}
	}
	if o.BinDir != "" {
		removed, err := removeSynced(filepath.Join(o.BinDir, PluginType))
		if err != nil {
			return res, err
		}
		res.BinaryChanged = removed
	}
	logResult("Uninstalled", res)
	return res, nil
}

// restoreConverted puts back the single-plugin file that list was converted from, when its backup
// is there and the unchained list is still exactly what the conversion made of it; it returns the
// restored path, or "" when the list is to be kept (a stale backup is then removed).
func restoreConverted(dir, list string, unchained []byte) (string, error) {
	base := list[:len(list)-len(ListExt)]
	for _, ext := range configExts {
		if ext == ListExt {
			continue
		}
		orig := base + ext
		backup := filepath.Join(dir, backupName(orig))
		data, err := os.ReadFile(backup)
		if err != nil {
			continue
		}
		if want, err := ConfToList(data); err != nil || !bytes.Equal(want, unchained) {
			klog.InfoS("Keeping the converted CNI configuration list: it changed since the conversion",
				"file", filepath.Join(dir, list), "staleBackup", backup)
			if _, err := removeSynced(backup); err != nil {
				return "", err
			}
			return "", nil
		}
		// The original sorts before the list, so it is the primary again as soon as it is back.
		if err := renameSynced(backup, filepath.Join(dir, orig)); err != nil {
			return "", err
		}
		if _, err := removeSynced(filepath.Join(dir, list)); err != nil {
			return "", err
		}
		return filepath.Join(dir, orig), nil
	}
	return "", nil
}

func refusal(path string, err error) error {
	return fmt.Errorf("refusing to change %s, left as it is: not a CNI configuration that can be edited safely (%w); "+
		"fix the primary network's configuration first", path, err)
}

func logResult(what string, r Result) {
	if r.NotChained != "" {
		klog.InfoS(what+" the antrea CNI plugin binary; not chained", "reason", r.NotChained, "binaryChanged", r.BinaryChanged)
		return
	}
	klog.InfoS(what+" the antrea CNI plugin", "configFile", r.ConfigFile, "configChanged", r.ConfigChanged,
		"convertedFrom", r.ConvertedFrom, "binaryChanged", r.BinaryChanged)
}
