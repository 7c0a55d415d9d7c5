package cniinstall

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// State is what a configuration directory says about the chained entry, read the way Install and
// Uninstall read it; it is what the agent's chain keeper decides from.
type State struct {
	// Primary is the name of the primary configuration file; empty when the directory holds none
	// (or does not exist): the primary network plugin has not installed itself yet.
	Primary string
	// MetaPlugin is the type of the primary's first plugin when that is a meta plugin (Multus),
	// which calls antrea itself and after which antrea is never chained.
	MetaPlugin string
	// Entries counts the antrea entries of the primary (0 for a single-plugin file).
	Entries int
	// Current is true when the primary holds exactly one antrea entry and it equals the wanted one.
	Current bool
	// ChainedLists are the names of the configuration lists that hold an antrea entry, the
	// primary among them; Uninstall edits each of them.
	ChainedLists []string
	// Invalid says why the primary cannot be edited safely (the runtime could not load it); nil
	// when it can.
	Invalid error
}

// Inspect reads the configuration directory of o and reports its State for the entry Install
// would write (o.CNISocket). Only a directory that exists but cannot be read, or a file that
// cannot be read, is an error: a configuration that does not load is reported in State.Invalid.
func Inspect(o Options) (State, error) {
	var s State
	names, err := configNames(o.ConfDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return s, nil
		}
		return s, err
	}
	primary, ok := PrimaryConfig(names)
	if !ok {
		return s, nil
	}
	s.Primary = primary
	entry := Entry(o.CNISocket)
	for _, name := range names {
		if !isConfigName(name) || (!IsList(name) && name != primary) {
			continue
		}
		path := filepath.Join(o.ConfDir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since the listing; the next look sees the directory anew
			}
			return s, fmt.Errorf("read %s: %w", path, err)
		}
		if name == primary {
			if t := primaryType(data, IsList(name)); metaPlugins[t] {
				s.MetaPlugin = t
			}
			if !IsList(name) {
				if _, err := ConfToList(data); err != nil {
					s.Invalid = refusal(path, err)
				}
				continue
			}
		}
		l, err := parseList(data)
		if err != nil {
			if name == primary {
				s.Invalid = refusal(path, err)
			}
			continue
		}
		idx := l.ours()
		if len(idx) > 0 {
			s.ChainedLists = append(s.ChainedLists, name)
		}
		if name == primary {
			s.Entries = len(idx)
			s.Current = len(idx) == 1 && sameJSON(l.element(idx[0]), entry)
		}
	}
	return s, nil
}
