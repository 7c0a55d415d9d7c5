package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// blockRecord is the Node-local record of one block the Node owns: the authoritative list of its
// holders. It is written before an allocation is answered.
type blockRecord struct {
	Block   string                   `json:"block"` // the IPPoolBlock's name
	Pool    string                   `json:"pool"`
	CIDR    string                   `json:"cidr"`
	Node    string                   `json:"node"`
	Holders []v1beta1.IPAddressState `json:"holders,omitempty"`
}

// recordStore keeps block records as one JSON file per block in a directory, each replaced by an
// atomic rename, so that a reader (the agent after a restart) sees either the old or the new
// record, never a torn one.
//
// The files are not fsynced: a record must outlive the agent process (kill -9, an upgrade), and
// the page cache does; it need not outlive the Node's kernel, because a reboot (or a crash of the
// kernel) ends every sandbox that held an address of the record. The directory is expected on a
// tmpfs that has the lifetime of those sandboxes (/var/run/antrea/ipam); after a reboot the agent
// starts from the holders the IPPoolBlock objects last reported, which the reconciler then
// releases as their sandboxes no longer exist.
type recordStore struct {
	dir string
}

const recordSuffix = ".json"

func (s *recordStore) path(block string) string { return filepath.Join(s.dir, block+recordSuffix) }

// save writes a record atomically.
func (s *recordStore) save(r *blockRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode the record of IPPoolBlock %s: %w", r.Block, err)
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-"+r.Block+"-")
	if err != nil {
		return fmt.Errorf("record IPPoolBlock %s in %s: %w", r.Block, s.dir, err)
	}
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path(r.Block))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("record IPPoolBlock %s in %s: %w", r.Block, s.dir, err)
	}
	return nil
}

// remove deletes a record; a missing one is no error.
func (s *recordStore) remove(block string) error {
	if err := os.Remove(s.path(block)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the record of IPPoolBlock %s: %w", block, err)
	}
	return nil
}

// load reads every record of the directory, creating the directory when missing. Leftover
// temporary files (a write interrupted by a crash) are removed: the record they would have
// replaced is still in place. A record that does not parse is an error naming the file: its
// addresses cannot be known, so none of the block may be handed out.
func (s *recordStore) load() ([]*blockRecord, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the IPAM state directory: %w", err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read the IPAM state directory: %w", err)
	}
	var out []*blockRecord
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") {
			os.Remove(filepath.Join(s.dir, name))
			continue
		}
		if !strings.HasSuffix(name, recordSuffix) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", name, err))
			continue
		}
		r := &blockRecord{}
		if err := json.Unmarshal(data, r); err != nil {
			errs = append(errs, fmt.Errorf("parse %s: %w", filepath.Join(s.dir, name), err))
			continue
		}
		if _, err := netip.ParsePrefix(r.CIDR); err != nil || r.Block == "" || r.Pool == "" {
			errs = append(errs, fmt.Errorf("%s: not a block record (block %q, pool %q, cidr %q)", filepath.Join(s.dir, name), r.Block, r.Pool, r.CIDR))
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}
