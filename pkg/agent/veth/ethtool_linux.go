package veth

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue is the kernel's struct ethtool_value, the argument of the simple get/set commands.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqPointer is struct ifreq with its union holding a pointer (ifr_data), which is how
// SIOCETHTOOL receives its command. Keeping the pointer typed as unsafe.Pointer (rather than bytes)
// keeps the garbage collector aware of it during the call.
type ifreqPointer struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte // the rest of the 24-byte union
}

// ethtool runs one ETHTOOL_* get/set command on the interface ifName of the calling thread's
// network namespace and returns the value the kernel left in the data field.
func ethtool(ifName string, cmd, data uint32) (uint32, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	return ethtoolAt(fd, ifName, cmd, data)
}

// ethtoolAt runs one ETHTOOL_* get/set command through the socket fd, on the interface ifName of
// the network namespace the socket was created in (whatever the calling thread's is).
func ethtoolAt(fd int, ifName string, cmd, data uint32) (uint32, error) {
	value := ethtoolValue{cmd: cmd, data: data}
	var req ifreqPointer
	if len(ifName) >= len(req.name) {
		return 0, fmt.Errorf("interface name %q too long", ifName)
	}
	copy(req.name[:], ifName)
	req.data = unsafe.Pointer(&value)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req))); errno != 0 {
		return 0, errno
	}
	return value.data, nil
}

// setTXChecksum turns TX checksum offload of ifName on or off (what `ethtool -K ifName tx off`
// does), in the calling thread's network namespace.
func setTXChecksum(ifName string, on bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	return setTXChecksumAt(fd, ifName, on)
}

// setTXChecksumAt is setTXChecksum through the socket fd, in the namespace fd was created in.
func setTXChecksumAt(fd int, ifName string, on bool) error {
	var data uint32
	if on {
		data = 1
	}
	if _, err := ethtoolAt(fd, ifName, unix.ETHTOOL_STXCSUM, data); err != nil {
		return fmt.Errorf("set TX checksum offload of %s to %v: %w", ifName, on, err)
	}
	return nil
}

// txChecksum reports whether TX checksum offload is on for ifName, in the calling thread's
// network namespace.
func txChecksum(ifName string) (bool, error) {
	data, err := ethtool(ifName, unix.ETHTOOL_GTXCSUM, 0)
	if err != nil {
		return false, fmt.Errorf("read TX checksum offload of %s: %w", ifName, err)
	}
	return data != 0, nil
}
