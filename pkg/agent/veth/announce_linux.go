package veth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"golang.org/x/sys/unix"
)

// sendAnnouncements sends the announcements of ips out of ifName, in the calling thread's network
// namespace, through a packet socket (the frames are complete; the kernel adds nothing).
func sendAnnouncements(ifName string, ips []net.IP) error {
	if len(ips) == 0 {
		return nil
	}
	link, err := netlinksafe.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("look up %s: %w", ifName, err)
	}
	// Protocol 0: the socket only sends, so it never queues the traffic it would otherwise see.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open packet socket: %w", err)
	}
	defer unix.Close(fd)
	return sendAnnouncementsOn(fd, link.Attrs().Index, link.Attrs().HardwareAddr, ips)
}

// sendAnnouncementsOn sends the announcements of ips, from mac, out of the interface ifIndex of
// the namespace the packet socket fd was created in.
func sendAnnouncementsOn(fd, ifIndex int, mac net.HardwareAddr, ips []net.IP) error {
	var errs []error
	for _, ip := range ips {
		frame, err := announcement(mac, ip)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		to := &unix.SockaddrLinklayer{
			Protocol: htons(binary.BigEndian.Uint16(frame[12:14])),
			Ifindex:  ifIndex,
			Halen:    6,
		}
		copy(to.Addr[:], frame[0:6])
		if err := unix.Sendto(fd, frame, 0, to); err != nil {
			errs = append(errs, fmt.Errorf("send announcement of %s: %w", ip, err))
		}
	}
	return errors.Join(errs...)
}

// htons converts a 16-bit value to network byte order, as sockaddr_ll's protocol field wants it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
