// Package spool keeps the CNI DELs that the `antrea` shim could not hand to antrea-agent (no
// agent, or an agent too slow to answer), so that DEL never blocks a Pod's deletion and never
// loses work: the shim writes the DEL here and reports success; the agent drains the directory at
// start and continuously, runs each entry through its ordinary DEL handler, and removes the entry
// only once that succeeded.
//
// One entry is one file, named after the invocation it stands for (container ID, interface and
// network name), so a DEL the runtime repeats overwrites its own entry instead of adding one. The
// spool is bounded: at most MaxEntries entries of at most MaxEntryBytes each; beyond that Write
// refuses, and the shim reports "try again later" (the runtime retries the DEL; nothing is lost,
// the Node's disk is not filled).
package spool

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/podvlan/podvlan/pkg/cni/nodestate"
)

const (
	// MaxEntries bounds the number of spooled DELs on a Node: far more than the Pods a Node runs,
	// so only an agent gone for very long reaches it.
	MaxEntries = 4096
	// MaxEntryBytes bounds one entry (the network configuration is most of it).
	MaxEntryBytes = 256 << 10
	// suffix ends every entry's name.
	suffix = ".json"
)

// limit is MaxEntries; tests lower it.
var limit = MaxEntries

// ErrFull is returned by Write when the spool holds MaxEntries entries.
var ErrFull = errors.New("the DEL spool is full")

// Entry is one DEL as the runtime invoked the shim.
type Entry struct {
	// ContainerID is CNI_CONTAINERID.
	ContainerID string `json:"containerID"`
	// Netns is CNI_NETNS (may be empty: the sandbox may already be gone).
	Netns string `json:"netns,omitempty"`
	// IfName is CNI_IFNAME.
	IfName string `json:"ifName"`
	// Args is CNI_ARGS, unparsed.
	Args string `json:"args,omitempty"`
	// Path is CNI_PATH.
	Path string `json:"path,omitempty"`
	// Config is the network configuration from stdin, unchanged.
	Config json.RawMessage `json:"config"`
	// CNIVersion is the configuration's cniVersion, as the shim read it (empty in entries of
	// versions before it was recorded; a DEL has no result to encode in it).
	CNIVersion string `json:"cniVersion,omitempty"`
	// Spooled is when the shim wrote the entry.
	Spooled time.Time `json:"spooled"`
	// Reason says why the agent did not take the DEL, for logs.
	Reason string `json:"reason,omitempty"`
}

// Name returns the file name of the entry for (containerID, ifName, network): stable, so a
// repeated DEL replaces its entry.
func Name(containerID, ifName, network string) string {
	sum := sha256.Sum256([]byte(containerID + "\x00" + ifName + "\x00" + network))
	return hex.EncodeToString(sum[:16]) + suffix
}

// networkName reads the "name" of a network configuration; an unreadable configuration has none.
func networkName(config []byte) string {
	var conf struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(config, &conf)
	return conf.Name
}

// Write records e in dir. It fails with ErrFull when the spool already holds MaxEntries other
// entries.
func Write(dir string, e Entry) error {
	if e.ContainerID == "" {
		return errors.New("spool a DEL: no container ID")
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode DEL of container %s: %w", e.ContainerID, err)
	}
	if len(data) > MaxEntryBytes {
		return fmt.Errorf("DEL of container %s is %d bytes, more than the spool's limit of %d", e.ContainerID, len(data), MaxEntryBytes)
	}
	name := Name(e.ContainerID, e.IfName, networkName(e.Config))
	names, err := nodestate.Entries(dir)
	if err != nil {
		return err
	}
	if len(names) >= limit {
		for _, n := range names {
			if n == name {
				return nodestate.WriteDurable(dir, name, data) // replacing is not growing
			}
		}
		return fmt.Errorf("%w (%d entries in %s)", ErrFull, len(names), dir)
	}
	return nodestate.WriteDurable(dir, name, data)
}

// Pending is one entry read back from the spool.
type Pending struct {
	// Name is the entry's file name, for Remove.
	Name string
	// Entry is its content.
	Entry Entry
}

// List returns the spooled entries, oldest first. An entry that cannot be read or decoded is
// returned in bad by name (the caller logs and removes it: it can never be executed).
func List(dir string) (entries []Pending, bad map[string]error, err error) {
	names, err := nodestate.Entries(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, name := range names {
		if !strings.HasSuffix(name, suffix) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			continue // drained meanwhile
		}
		var e Entry
		if err == nil {
			err = json.Unmarshal(data, &e)
		}
		if err == nil && e.ContainerID == "" {
			err = errors.New("no containerID")
		}
		if err != nil {
			if bad == nil {
				bad = map[string]error{}
			}
			bad[name] = fmt.Errorf("spooled DEL %s: %w", filepath.Join(dir, name), err)
			continue
		}
		entries = append(entries, Pending{Name: name, Entry: e})
	}
	sortOldestFirst(entries)
	return entries, bad, nil
}

func sortOldestFirst(entries []Pending) {
	slices.SortStableFunc(entries, func(a, b Pending) int { return a.Entry.Spooled.Compare(b.Entry.Spooled) })
}

// Remove deletes a drained entry.
func Remove(dir, name string) error { return nodestate.Remove(dir, name) }
