// Package sandbox records the Pod sandboxes the `antrea` shim sees ADDed on the Node, so that
// antrea-agent can reach a running Pod's network namespace without a CNI call (to attach the
// networks of an annotation added after the Pod started). The shim writes a record on every ADD,
// also for Pods without secondary networks, without asking the agent, and removes it on DEL.
//
// One record is one small JSON file named after the container ID. Records are hints: a reader
// re-checks each one against the Node (its network namespace still exists) before trusting it.
package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/podvlan/podvlan/pkg/cni/nodestate"
)

// suffix ends every record's name.
const suffix = ".json"

// Record is one sandbox as its CNI ADD described it.
type Record struct {
	// ContainerID is CNI_CONTAINERID, the sandbox's ID.
	ContainerID string `json:"containerID"`
	// Netns is CNI_NETNS, the path of the sandbox's network namespace.
	Netns string `json:"netns"`
	// PodNamespace, PodName and PodUID come from CNI_ARGS (K8S_POD_*); PodUID is empty when the
	// runtime does not pass it.
	PodNamespace string `json:"podNamespace,omitempty"`
	PodName      string `json:"podName,omitempty"`
	PodUID       string `json:"podUID,omitempty"`
	// IfName is CNI_IFNAME of the ADD that wrote the record: the Pod's primary interface when
	// the call was the chained one.
	IfName string `json:"ifName"`
	// Chained says the record was written by the chained call (prevResult present), whose
	// IfName is the primary interface; such a record is not replaced by a delegate's.
	Chained bool `json:"chained,omitempty"`
	// Added is when the shim wrote the record.
	Added time.Time `json:"added"`
}

// Name returns the file name of the record of containerID: the ID itself when it is a plain
// name (runtimes use hex IDs), else a hash of it, so that no two containers share a file.
func Name(containerID string) string {
	for _, r := range containerID {
		plain := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		if !plain || len(containerID) > 128 {
			sum := sha256.Sum256([]byte(containerID))
			return "sha256-" + hex.EncodeToString(sum[:16]) + suffix
		}
	}
	return containerID + suffix
}

// Write records r in dir. A record written by the chained call is not replaced by one written
// by another call for the same container (a Multus delegate's), so IfName stays the primary
// interface.
func Write(dir string, r Record) error {
	if r.ContainerID == "" {
		return errors.New("record a sandbox: no container ID")
	}
	name := Name(r.ContainerID)
	if !r.Chained {
		if old, err := read(filepath.Join(dir, name)); err == nil && old.Chained && old.ContainerID == r.ContainerID {
			return nil
		}
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode sandbox record of container %s: %w", r.ContainerID, err)
	}
	return nodestate.WriteAtomic(dir, name, data)
}

// Remove forgets the sandbox of containerID; a record already gone is not an error.
func Remove(dir, containerID string) error {
	if containerID == "" {
		return nil
	}
	return nodestate.Remove(dir, Name(containerID))
}

func read(path string) (Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Record{}, err
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("sandbox record %s: %w", path, err)
	}
	if r.ContainerID == "" {
		return Record{}, fmt.Errorf("sandbox record %s: no containerID", path)
	}
	return r, nil
}

// Stored is a record read back with its file name.
type Stored struct {
	// Name is the record's file name.
	Name string
	// Record is its content.
	Record Record
}

// List returns every record in dir. Records that cannot be read are returned in bad by name.
func List(dir string) (records []Stored, bad map[string]error, err error) {
	names, err := nodestate.Entries(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, name := range names {
		if !strings.HasSuffix(name, suffix) {
			continue
		}
		r, err := read(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			continue // removed meanwhile
		}
		if err != nil {
			if bad == nil {
				bad = map[string]error{}
			}
			bad[name] = err
			continue
		}
		records = append(records, Stored{Name: name, Record: r})
	}
	return records, bad, nil
}

// RemoveName deletes the record file name (a stale or unreadable one).
func RemoveName(dir, name string) error { return nodestate.Remove(dir, name) }
