//go:build tools

// Package tools pins the etcd command built by hack/build-tools.sh.
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
