package attach

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// HostVethPrefix starts the name of every host-side veth this package creates, so that an operator
// reading `ip link` (and the reconciler listing links) can tell them apart from other interfaces.
const HostVethPrefix = "pvl"

// hostVethHashLen is how many hex digits of the hash follow the prefix: 3+12 = 15 characters, the
// longest name Linux accepts (IFNAMSIZ-1), giving 48 bits so that collisions between the few
// hundred attachments of one Node are practically impossible.
const hostVethHashLen = 12

// HostVethName returns the name of the host-side veth of the attachment (containerID, ifName).
// It is a pure function of its arguments, so DEL, CHECK and reconciliation find the host end
// again without the Pod's network namespace and without any stored state.
func HostVethName(containerID, ifName string) string {
	// A NUL separator keeps ("ab", "c") and ("a", "bc") apart; neither part can contain NUL.
	sum := sha256.Sum256([]byte(containerID + "\x00" + ifName))
	return HostVethPrefix + hex.EncodeToString(sum[:])[:hostVethHashLen]
}

// IsHostVethName reports whether name has the shape of a name returned by HostVethName, which is
// how the reconciler recognises host-side veths that belong to this package.
func IsHostVethName(name string) bool {
	hash, ok := strings.CutPrefix(name, HostVethPrefix)
	if !ok || len(hash) != hostVethHashLen {
		return false
	}
	for _, c := range hash {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
