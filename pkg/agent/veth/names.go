package veth

import (
	"crypto/sha256"
	"encoding/hex"
)

// hostNamePrefix starts the name of every host-side veth this package creates, so that an operator
// reading `ip link` can tell them apart from other interfaces.
const hostNamePrefix = "pvl"

// hostVethHashLen is how many hex digits of the hash follow the prefix: 3+12 = 15 characters, the
// longest name Linux accepts (IFNAMSIZ-1), giving 48 bits so that collisions between the few
// hundred attachments of one Node are practically impossible.
const hostVethHashLen = 12

// HostName returns the name of the host-side veth of the attachment (containerID, ifName).
// It is a pure function of its arguments, so DEL, CHECK and reconciliation find the host end
// again without the Pod's network namespace and without any stored state.
func HostName(containerID, ifName string) string {
	// A NUL separator keeps ("ab", "c") and ("a", "bc") apart; neither part can contain NUL.
	sum := sha256.Sum256([]byte(containerID + "\x00" + ifName))
	return hostNamePrefix + hex.EncodeToString(sum[:])[:hostVethHashLen]
}
