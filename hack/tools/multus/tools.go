//go:build tools

// Package tools pins the Multus thin plugin built by hack/build-tools.sh for the e2e tests.
package tools

import _ "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus"
