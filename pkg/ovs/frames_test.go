package ovs_test

// Raw Ethernet frames for the data-plane tests: this kernel has no 8021q module, so tagged frames
// are written and read with AF_PACKET sockets opened inside the test's network namespaces.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"
)

// etherTypeExperimental is IEEE's "local experimental" EtherType, which no stack answers.
const etherTypeExperimental = 0x88b5

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// packetSocket opens an AF_PACKET socket bound to ifName inside the named network namespace.
// The socket stays in that namespace after the thread leaves it.
func packetSocket(t *testing.T, netns, ifName string) (fd int, iface *net.Interface) {
	t.Helper()
	err := ns.WithNetNSPath(netnsPath(netns), func(ns.NetNS) error {
		var err error
		if iface, err = net.InterfaceByName(ifName); err != nil {
			return err
		}
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL))); err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: iface.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("AF_PACKET socket on %s in %s: %v", ifName, netns, err)
	}
	return fd, iface
}

// ethernetFrame builds a broadcast frame from src carrying marker; with vlan set it carries an
// 802.1Q header for that VLAN ID.
func ethernetFrame(src net.HardwareAddr, vlan *uint16, marker string) []byte {
	var b bytes.Buffer
	b.Write(broadcastMAC)
	b.Write(src)
	if vlan != nil {
		_ = binary.Write(&b, binary.BigEndian, uint16(unix.ETH_P_8021Q))
		_ = binary.Write(&b, binary.BigEndian, *vlan&0x0fff)
	}
	_ = binary.Write(&b, binary.BigEndian, uint16(etherTypeExperimental))
	b.WriteString(marker)
	for b.Len() < 60 {
		b.WriteByte(0)
	}
	return b.Bytes()
}

// sendFrame writes one frame, built for the pod interface's MAC, out of it.
func sendFrame(t *testing.T, p pod, vlan *uint16, marker string) {
	t.Helper()
	fd, iface := packetSocket(t, p.netns, p.ifName)
	defer unix.Close(fd)
	frame := ethernetFrame(iface.HardwareAddr, vlan, marker)
	to := &unix.SockaddrLinklayer{Ifindex: iface.Index, Halen: 6}
	copy(to.Addr[:], broadcastMAC)
	if err := unix.Sendto(fd, frame, 0, to); err != nil {
		t.Fatalf("send frame from %s: %v", p.netns, err)
	}
}

// seenFrame is a received frame carrying a marker: its VLAN ID, or -1 when it was untagged.
type seenFrame struct {
	marker string
	vlan   int
}

// capture records every marked frame arriving on one interface. The kernel moves a received
// 802.1Q header into packet metadata, so the VLAN is read from PACKET_AUXDATA (and from the
// frame itself, should a tag stay in-band).
type capture struct {
	fd      int
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	seen    []seenFrame
	arrived chan struct{}
}

func startCapture(t *testing.T, netns, ifName string) *capture {
	t.Helper()
	fd, _ := packetSocket(t, netns, ifName)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		t.Fatalf("PACKET_AUXDATA: %v", err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100_000}); err != nil {
		t.Fatalf("SO_RCVTIMEO: %v", err)
	}
	c := &capture{fd: fd, stop: make(chan struct{}), done: make(chan struct{}), arrived: make(chan struct{}, 1)}
	go c.run()
	t.Cleanup(c.close)
	return c
}

func (c *capture) run() {
	defer close(c.done)
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		frame := buf[:n]
		vlan := vlanFromAuxdata(oob[:oobn])
		if len(frame) >= 18 && binary.BigEndian.Uint16(frame[12:14]) == unix.ETH_P_8021Q {
			vlan = int(binary.BigEndian.Uint16(frame[14:16]) & 0x0fff)
			frame = append(append([]byte{}, frame[:12]...), frame[16:]...)
		}
		if len(frame) < 14 || binary.BigEndian.Uint16(frame[12:14]) != etherTypeExperimental {
			continue
		}
		marker := string(bytes.TrimRight(frame[14:], "\x00"))
		c.mu.Lock()
		c.seen = append(c.seen, seenFrame{marker: marker, vlan: vlan})
		c.mu.Unlock()
		select {
		case c.arrived <- struct{}{}:
		default:
		}
	}
}

func vlanFromAuxdata(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA {
			continue
		}
		var aux unix.TpacketAuxdata
		if len(m.Data) < binary.Size(aux) {
			continue
		}
		if err := binary.Read(bytes.NewReader(m.Data), binary.NativeEndian, &aux); err != nil {
			continue
		}
		if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
			return int(aux.Vlan_tci & 0x0fff)
		}
	}
	return -1
}

// find returns the frames seen so far that carry marker.
func (c *capture) find(marker string) []seenFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []seenFrame
	for _, f := range c.seen {
		if f.marker == marker {
			out = append(out, f)
		}
	}
	return out
}

// waitFor waits until a frame carrying marker has arrived, or the timeout passed.
func (c *capture) waitFor(marker string, timeout time.Duration) []seenFrame {
	deadline := time.After(timeout)
	for {
		if f := c.find(marker); len(f) > 0 {
			return f
		}
		select {
		case <-c.arrived:
		case <-deadline:
			return nil
		}
	}
}

func (c *capture) close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	<-c.done
	unix.Close(c.fd)
}
