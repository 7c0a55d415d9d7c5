// Package v1beta1 holds the IPPool API (crd.antrea.io/v1beta1), the user-facing contract for
// address pools that secondary networks allocate from.
//
// +k8s:deepcopy-gen=package
// +groupName=crd.antrea.io
package v1beta1
