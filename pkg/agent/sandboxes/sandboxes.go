// Package sandboxes is the agent's view of the Pod sandboxes on its Node, read from the records
// the `antrea` shim writes at every CNI ADD (package cni/nodestate/sandbox). It answers "where is
// this running Pod's network namespace?" without a CNI call, for attaching networks to Pods that
// are already running.
//
// Records are hints written by another process: every answer re-reads the directory and re-checks
// each record against the Node (its netns path is still a mounted network namespace) before
// trusting it, and forgets (deletes) records whose sandbox is gone, so the directory stays as
// small as the Node's live sandboxes. Nothing is cached, so an agent restart loses nothing.
package sandboxes

import (
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/cni/nodestate/sandbox"
)

// Sandbox is one live Pod sandbox on the Node.
type Sandbox struct {
	// ContainerID is the sandbox's container ID (CNI_CONTAINERID).
	ContainerID string
	// Netns is the path of its network namespace (CNI_NETNS).
	Netns string
	// PodNamespace, PodName and PodUID identify the Pod; PodUID is empty when the runtime did
	// not pass K8S_POD_UID.
	PodNamespace string
	PodName      string
	PodUID       string
	// IfName is the interface of the ADD that recorded it: the primary interface (eth0) for the
	// chained call.
	IfName string
	// Added is when the shim recorded it.
	Added time.Time
}

// Store reads the sandbox records of one directory. Create it with New.
type Store struct {
	dir   string
	alive func(netns string) bool
}

// New returns a store over dir (nodestate.ForSocket(socket).Sandboxes).
func New(dir string) *Store {
	return &Store{dir: dir, alive: IsNetworkNamespace}
}

// IsNetworkNamespace reports whether path is a live network namespace: a bind mount of one (the
// runtime's /var/run/netns/cni-...) or a /proc/<pid>/ns/net link. A path whose namespace was
// unmounted, or that no longer exists, is not.
func IsNetworkNamespace(path string) bool {
	if path == "" {
		return false
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return false
	}
	return fs.Type == unix.NSFS_MAGIC
}

// List returns every live sandbox on the Node, and forgets the records whose sandbox is gone.
func (s *Store) List() ([]Sandbox, error) {
	live, _, err := s.list()
	return live, err
}

// Prune forgets the records whose sandbox is gone (and unreadable ones) and returns how many it
// forgot. Reconciliation calls it: the shim removes a record at DEL, but a sandbox that vanished
// without one (a runtime that crashed, a DEL that never came) would otherwise keep its record
// until somebody looks its Pod up.
func (s *Store) Prune() (int, error) {
	_, forgotten, err := s.list()
	return forgotten, err
}

func (s *Store) list() ([]Sandbox, int, error) {
	records, bad, err := sandbox.List(s.dir)
	if err != nil {
		return nil, 0, err
	}
	forgotten := 0
	for name, why := range bad {
		klog.ErrorS(why, "Forgetting an unreadable sandbox record", "record", name)
		if s.forget(name) {
			forgotten++
		}
	}
	live := make([]Sandbox, 0, len(records))
	for _, r := range records {
		if !s.alive(r.Record.Netns) {
			klog.V(2).InfoS("Forgetting the record of a sandbox that is gone", "container", r.Record.ContainerID,
				"netns", r.Record.Netns, "pod", klog.KRef(r.Record.PodNamespace, r.Record.PodName))
			if s.forget(r.Name) {
				forgotten++
			}
			continue
		}
		live = append(live, fromRecord(r.Record))
	}
	return live, forgotten, nil
}

func (s *Store) forget(name string) bool {
	if err := sandbox.RemoveName(s.dir, name); err != nil {
		klog.ErrorS(err, "Cannot remove a sandbox record", "record", name)
		return false
	}
	return true
}

// Lookup returns the live sandbox of the Pod with this UID; when there are several (a sandbox
// being replaced), the newest.
func (s *Store) Lookup(podUID string) (Sandbox, bool) {
	if podUID == "" {
		return Sandbox{}, false
	}
	return s.newest(func(sb Sandbox) bool { return sb.PodUID == podUID })
}

// LookupPod returns the newest live sandbox of the Pod namespace/name. Prefer Lookup: a Pod
// recreated under the same name is another Pod.
func (s *Store) LookupPod(namespace, name string) (Sandbox, bool) {
	return s.newest(func(sb Sandbox) bool { return sb.PodNamespace == namespace && sb.PodName == name })
}

func (s *Store) newest(match func(Sandbox) bool) (Sandbox, bool) {
	all, err := s.List()
	if err != nil {
		klog.ErrorS(err, "Cannot list the sandboxes recorded by the CNI shim")
		return Sandbox{}, false
	}
	var best Sandbox
	found := false
	for _, sb := range all {
		if match(sb) && (!found || sb.Added.After(best.Added)) {
			best, found = sb, true
		}
	}
	return best, found
}

func fromRecord(r sandbox.Record) Sandbox {
	return Sandbox{ContainerID: r.ContainerID, Netns: r.Netns, PodNamespace: r.PodNamespace, PodName: r.PodName,
		PodUID: r.PodUID, IfName: r.IfName, Added: r.Added}
}
