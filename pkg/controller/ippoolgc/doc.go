// Package ippoolgc releases IPPool allocations whose owner Pod is gone: the cleanup for owners that
// disappeared without a CNI DEL (a Node that crashed, a force-deleted Pod, an agent that was down).
//
// The rule, per entry of status.ipAddresses with a Pod owner (JudgeOwner):
//   - no Pod of that namespace/name exists: orphan;
//   - the owner records a Pod UID and the Pod of that name has another one (a StatefulSet Pod
//     recreated under the same name): orphan, the new Pod gets its own allocation;
//   - the Pod has terminated (phase Succeeded or Failed): orphan, its sandbox is gone for good;
//   - otherwise the entry is kept. An owner without a recorded UID is matched by name only while a
//     Pod of that name exists, so it is kept: the controller cannot tell sandboxes apart.
//
// The API does not expose a Pod's sandbox (container) ID, so the controller cannot judge container
// IDs; a stale sandbox of a live Pod (the runtime recreated the sandbox and the DEL of the old one
// was lost) is the agent's to reconcile, on the Node, where sandbox IDs are known. Entries without
// a Pod owner are never touched.
//
// Two guards keep the collector from racing an agent that allocates for a Pod the controller's
// cache does not have yet: an orphan is released only after it has been seen orphaned continuously
// for the grace period (first-seen times are kept in memory; a restart starts the clock again, which
// only delays a release), and right before the release the Pod is read from the API server, not
// from the cache.
//
// Releases are status writes with optimistic concurrency: a conflict re-reads the pool from the API
// server, removes the same entries (only those still recorded exactly as judged, so an address
// handed out again meanwhile is never touched) and retries after a jittered backoff.
//
// Collection runs every interval, on Pod deletion (and on a Pod turning Succeeded or Failed), and
// when the grace period of a pending orphan ends.
package ippoolgc
