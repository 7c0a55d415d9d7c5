// Package podvlanctl is the logic of the kubectl-podvlan plugin: read-only views of Pods'
// secondary interfaces, IPPools, Nodes, and a check of the whole installation (doctor).
//
// It is split the usual way: pure builders (BuildPodReport, BuildPoolReport, BuildNodeReport,
// RunChecks) turn API objects into reports and have table tests; a thin client layer (Client)
// fetches those objects with client-go, the IPPool clientset and the NetworkAttachmentDefinition
// clientset, and nothing else. Nothing here writes to the API server.
//
// Allocations are read through HolderSource, so that where they are recorded (an IPPool's
// status.ipAddresses, its IPPoolBlocks) can change without touching the views.
package podvlanctl
