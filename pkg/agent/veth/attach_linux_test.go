package veth

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/podvlan/podvlan/internal/teststack"
)

// stage is one test's world: a network namespace standing in for the Node (the package treats
// the calling thread's namespace as the host, so every call runs inside host.Do) and one for a
// Pod. Nothing a test makes touches the real host.
type stage struct {
	t           *testing.T
	host, pod   ns.NetNS
	containerID string
}

func newStage(t *testing.T) *stage {
	t.Helper()
	teststack.RequireRoot(t)
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	return &stage{t: t, host: newNetNS(t), pod: newNetNS(t), containerID: "attach-test-" + hex.EncodeToString(id)}
}

func newNetNS(t *testing.T) ns.NetNS {
	t.Helper()
	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		_ = netns.Close()
		_ = testutils.UnmountNS(netns) // fails harmlessly when the test unmounted it already
	})
	return netns
}

// inHost and inPod run fn in the stage's namespaces and fail the test on error.
func (s *stage) inHost(fn func() error) {
	s.t.Helper()
	if err := s.host.Do(func(ns.NetNS) error { return fn() }); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stage) inPod(fn func() error) {
	s.t.Helper()
	if err := s.pod.Do(func(ns.NetNS) error { return fn() }); err != nil {
		s.t.Fatal(err)
	}
}

// removeNetNSPath does what a runtime does when it tears a sandbox down: it unmounts and removes
// the Pod's netns file. The namespace itself lives on while the test holds it open.
func (s *stage) removeNetNSPath() {
	s.t.Helper()
	path := s.pod.Path()
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
		s.t.Fatalf("unmount %s: %v", path, err)
	}
	if err := os.Remove(path); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stage) spec(ifName string) Spec {
	return Spec{NetNSPath: s.pod.Path(), IfName: ifName, HostIfName: HostName(s.containerID, ifName)}
}

func (s *stage) create(spec Spec) (iface *Interface, err error) {
	s.inHost(func() error {
		iface, err = create(s.t.Context(), spec)
		return nil
	})
	return iface, err
}

func (s *stage) mustCreate(spec Spec) *Interface {
	s.t.Helper()
	iface, err := s.create(spec)
	if err != nil {
		s.t.Fatalf("create() error: %v", err)
	}
	return iface
}

func (s *stage) delete(netnsPath, ifName, hostIfName string) (err error) {
	s.inHost(func() error {
		err = Delete(s.t.Context(), netnsPath, ifName, hostIfName)
		return nil
	})
	return err
}

func (s *stage) check(spec Spec) (err error) {
	s.inHost(func() error {
		err = Check(s.t.Context(), spec)
		return nil
	})
	return err
}

func linkNames() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names, nil
}

func (s *stage) podLinks() (names []string) {
	s.t.Helper()
	s.inPod(func() (err error) { names, err = linkNames(); return err })
	return names
}

func (s *stage) hostLinks() (names []string) {
	s.t.Helper()
	s.inHost(func() (err error) { names, err = linkNames(); return err })
	return names
}

// assertNothingLeft fails unless both namespaces hold only their loopback (plus keep).
func (s *stage) assertNothingLeft(keepInPod ...string) {
	s.t.Helper()
	if got := s.hostLinks(); !reflect.DeepEqual(got, []string{"lo"}) {
		s.t.Errorf("host namespace links = %v, want only lo", got)
	}
	want := append([]string{"lo"}, keepInPod...)
	slices.Sort(want)
	if got := s.podLinks(); !reflect.DeepEqual(got, want) {
		s.t.Errorf("Pod namespace links = %v, want %v", got, want)
	}
}

func prefix(t *testing.T, s string) net.IPNet { return mustPrefix(t, s) }

func TestCreateConfiguresTheInterface(t *testing.T) {
	tests := []struct {
		name    string
		spec    func(Spec) Spec
		wantMTU int
	}{
		{
			name: "IPv4 with the default MTU, a kernel-chosen MAC and a default route",
			spec: func(s Spec) Spec {
				s.IPs = []net.IPNet{prefix(t, "10.10.0.5/24")}
				s.Routes = []*types.Route{{Dst: prefix(t, "0.0.0.0/0"), GW: net.ParseIP("10.10.0.1")}}
				return s
			},
			wantMTU: 1500,
		},
		{
			name: "dual stack with MTU 9000, a given MAC and routes",
			spec: func(s Spec) Spec {
				s.MTU = 9000
				s.MAC = mustMAC(t, "02:50:76:00:00:01")
				s.IPs = []net.IPNet{
					prefix(t, "10.20.0.5/24"),
					prefix(t, "fd20::5/64"),
				}
				s.Routes = []*types.Route{
					{Dst: prefix(t, "10.21.0.0/16"), GW: net.ParseIP("10.20.0.1")},
					{Dst: prefix(t, "10.22.0.0/16")}, // on-link
					{Dst: prefix(t, "fd21::/64"), GW: net.ParseIP("fd20::2")},
				}
				return s
			},
			wantMTU: 9000,
		},
		{
			name: "IPv6 only with the IPv6 minimum MTU 1280",
			spec: func(s Spec) Spec {
				s.MTU = 1280
				s.IPs = []net.IPNet{prefix(t, "fd30::5/64")}
				s.Routes = []*types.Route{{Dst: prefix(t, "fd31::/64"), GW: net.ParseIP("fd30::1")}}
				return s
			},
			wantMTU: 1280,
		},
		{
			name: "TX checksum offload turned off",
			spec: func(s Spec) Spec {
				s.IPs = []net.IPNet{prefix(t, "10.40.0.5/24")}
				s.DisableTXChecksum = true
				return s
			},
			wantMTU: 1500,
		},
		{
			name:    "no addresses, a layer-2 only interface",
			spec:    func(s Spec) Spec { return s },
			wantMTU: 1500,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStage(t)
			spec := tt.spec(st.spec("eth1"))
			iface := st.mustCreate(spec)

			if iface.Name != "eth1" || iface.HostIfName != spec.HostIfName || iface.Sandbox != spec.NetNSPath || iface.MTU != tt.wantMTU {
				t.Errorf("create() = %+v, want name eth1, host end %s, sandbox %s, MTU %d", iface, spec.HostIfName, spec.NetNSPath, tt.wantMTU)
			}
			if spec.MAC != nil && !bytes.Equal(iface.ContainerMAC, spec.MAC) {
				t.Errorf("create() MAC = %s, want %s", iface.ContainerMAC, spec.MAC)
			}

			st.inPod(func() error {
				link, err := netlink.LinkByName("eth1")
				if err != nil {
					return err
				}
				attrs := link.Attrs()
				if link.Type() != "veth" || attrs.MTU != tt.wantMTU || attrs.Flags&net.FlagUp == 0 || attrs.Index != iface.ContainerIfIndex {
					t.Errorf("Pod eth1: type %s, MTU %d, flags %v, index %d; want an up veth, MTU %d, index %d",
						link.Type(), attrs.MTU, attrs.Flags, attrs.Index, tt.wantMTU, iface.ContainerIfIndex)
				}
				if !bytes.Equal(attrs.HardwareAddr, iface.ContainerMAC) {
					t.Errorf("Pod eth1 MAC = %s, create() said %s", attrs.HardwareAddr, iface.ContainerMAC)
				}
				addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
				if err != nil {
					return err
				}
				for _, ipc := range spec.IPs {
					found := slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == ipc.String() })
					if !found {
						t.Errorf("address %s missing in the Pod; addresses: %v", ipc.String(), addrs)
					}
				}
				for _, r := range spec.Routes {
					wantGW := r.GW
					family := netlink.FAMILY_V4
					if r.Dst.IP.To4() == nil {
						family = netlink.FAMILY_V6
					}
					routes, err := netlink.RouteListFiltered(family, &netlink.Route{LinkIndex: attrs.Index}, netlink.RT_FILTER_OIF)
					if err != nil {
						return err
					}
					found := slices.ContainsFunc(routes, func(got netlink.Route) bool {
						return got.Dst != nil && got.Dst.String() == r.Dst.String() && got.Gw.Equal(wantGW)
					})
					if !found {
						t.Errorf("route %s via %v missing in the Pod; routes: %v", r.Dst.String(), wantGW, routes)
					}
				}
				on, err := txChecksum("eth1")
				if err != nil {
					return err
				}
				if on == spec.DisableTXChecksum {
					t.Errorf("TX checksum offload on = %v, want %v", on, !spec.DisableTXChecksum)
				}
				return nil
			})

			st.inHost(func() error {
				link, err := netlink.LinkByName(spec.HostIfName)
				if err != nil {
					return err
				}
				attrs := link.Attrs()
				if link.Type() != "veth" || attrs.MTU != tt.wantMTU || attrs.Flags&net.FlagUp == 0 || attrs.Index != iface.HostIfIndex {
					t.Errorf("host end: type %s, MTU %d, flags %v, index %d; want an up veth, MTU %d, index %d",
						link.Type(), attrs.MTU, attrs.Flags, attrs.Index, tt.wantMTU, iface.HostIfIndex)
				}
				value, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + spec.HostIfName + "/disable_ipv6")
				if err != nil {
					return err
				}
				if strings.TrimSpace(string(value)) != "1" {
					t.Errorf("host end disable_ipv6 = %q, want 1", value)
				}
				return nil
			})

			if err := st.check(spec); err != nil {
				t.Errorf("Check() after create() = %v", err)
			}
		})
	}
}

func TestCreateIsIdempotent(t *testing.T) {
	st := newStage(t)
	spec := st.spec("net1")
	spec.MTU = 9000
	spec.IPs = []net.IPNet{prefix(t, "10.60.0.5/24"), prefix(t, "fd60::5/64")}
	spec.DisableTXChecksum = true

	first := st.mustCreate(spec)
	second := st.mustCreate(spec)
	if !reflect.DeepEqual(first, second) {
		t.Errorf("repeated create() = %+v, first one returned %+v", second, first)
	}
	if got := st.podLinks(); !reflect.DeepEqual(got, []string{"lo", "net1"}) {
		t.Errorf("Pod links = %v, want lo and net1 only", got)
	}
	if got := st.hostLinks(); !reflect.DeepEqual(got, []string{"lo", spec.HostIfName}) {
		t.Errorf("host links = %v, want lo and %s only", got, spec.HostIfName)
	}
}

func TestCreateRecreatesAnIncompleteInterface(t *testing.T) {
	st := newStage(t)
	spec := st.spec("eth1")
	spec.IPs = []net.IPNet{prefix(t, "10.61.0.5/24")}
	st.mustCreate(spec)
	st.inPod(func() error {
		link, err := netlink.LinkByName("eth1")
		if err != nil {
			return err
		}
		addr := spec.IPs[0]
		return netlink.AddrDel(link, &netlink.Addr{IPNet: &addr})
	})
	if err := st.check(spec); err == nil {
		t.Fatal("Check() = nil after the address was removed; the test would prove nothing")
	}

	st.mustCreate(spec)
	if err := st.check(spec); err != nil {
		t.Errorf("Check() after the repeated create() = %v", err)
	}
}

func TestCreateRefusesAForeignInterface(t *testing.T) {
	tests := []struct {
		name     string
		make     func() error
		wantKind string
		podLinks []string
	}{
		{
			name:     "a bridge named eth1",
			make:     func() error { return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}}) },
			wantKind: "bridge",
			podLinks: []string{"eth1"},
		},
		{
			name: "a veth named eth1 paired inside the Pod",
			make: func() error {
				return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}, PeerName: "other1"})
			},
			wantKind: "veth",
			podLinks: []string{"eth1", "other1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStage(t)
			st.inPod(tt.make)
			spec := st.spec("eth1")
			spec.IPs = []net.IPNet{prefix(t, "10.62.0.5/24")}

			_, err := st.create(spec)
			var exists *ExistsError
			if !errors.As(err, &exists) || exists.Kind != tt.wantKind {
				t.Fatalf("create() error = %v, want an *ExistsError for a %s", err, tt.wantKind)
			}
			if !strings.Contains(err.Error(), "interface eth1 already exists in the Pod") {
				t.Errorf("create() error = %q, want it to say the interface already exists in the Pod", err)
			}
			st.assertNothingLeft(tt.podLinks...)
			st.inPod(func() error {
				link, err := netlink.LinkByName("eth1")
				if err != nil {
					return err
				}
				addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
				if len(addrs) != 0 {
					t.Errorf("the foreign eth1 got addresses %v", addrs)
				}
				return err
			})
		})
	}
}

func TestCreateRollsBackOnFailure(t *testing.T) {
	tests := []struct {
		name    string
		spec    func(Spec) Spec
		wantErr string
	}{
		{
			name: "an IPv4 route through an unreachable gateway",
			spec: func(s Spec) Spec {
				s.IPs = []net.IPNet{prefix(t, "10.70.0.5/24")}
				s.Routes = []*types.Route{{Dst: prefix(t, "198.51.100.0/24"), GW: net.ParseIP("192.0.2.1")}}
				return s
			},
			wantErr: "network is unreachable",
		},
		{
			name: "an IPv6 route through a gateway on no link, after DAD of a dual-stack interface",
			spec: func(s Spec) Spec {
				s.MTU = 9000
				s.MAC = mustMAC(t, "02:50:76:00:00:02")
				s.IPs = []net.IPNet{prefix(t, "10.71.0.5/24"), prefix(t, "fd71::5/64")}
				s.Routes = []*types.Route{{Dst: prefix(t, "fd72::/64"), GW: net.ParseIP("fd73::1")}}
				s.DisableTXChecksum = true
				return s
			},
			wantErr: "no route to host",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStage(t)
			spec := tt.spec(st.spec("eth1"))
			_, err := st.create(spec)
			if err == nil {
				t.Fatal("create() succeeded, want an error")
			}
			if !strings.Contains(err.Error(), "create interface eth1") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("create() error = %q, want it to name eth1 and %q", err, tt.wantErr)
			}
			st.assertNothingLeft()
		})
	}
}

func TestCreateReplacesAStaleHostEnd(t *testing.T) {
	st := newStage(t)
	spec := st.spec("eth1")
	spec.IPs = []net.IPNet{prefix(t, "10.72.0.5/24")}
	// The host end of an earlier attempt whose container end is somewhere else.
	st.inHost(func() error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: spec.HostIfName}, PeerName: "stalepeer"})
	})

	st.mustCreate(spec)
	if err := st.check(spec); err != nil {
		t.Errorf("Check() = %v", err)
	}
	if got := st.hostLinks(); !reflect.DeepEqual(got, []string{"lo", spec.HostIfName}) {
		t.Errorf("host links = %v, want lo and the new host end only", got)
	}
}

func TestCreateLeavesANonVethHostInterfaceAlone(t *testing.T) {
	st := newStage(t)
	spec := st.spec("eth1")
	st.inHost(func() error {
		return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: spec.HostIfName}})
	})

	_, err := st.create(spec)
	if err == nil || !strings.Contains(err.Error(), "is a bridge, not a veth") {
		t.Fatalf("create() error = %v, want a refusal to touch the bridge", err)
	}
	if got := st.hostLinks(); !reflect.DeepEqual(got, []string{"lo", spec.HostIfName}) {
		t.Errorf("host links = %v, want lo and the untouched bridge", got)
	}
	if got := st.podLinks(); !reflect.DeepEqual(got, []string{"lo"}) {
		t.Errorf("Pod links = %v, want only lo", got)
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name string
		// before runs after Create and returns the netns path to pass to Delete.
		before func(st *stage) string
		// destroysPod tells that the Pod namespace cannot be inspected afterwards.
		destroysPod bool
	}{
		{
			name:   "removes both ends",
			before: func(st *stage) string { return st.pod.Path() },
		},
		{
			name: "succeeds when both ends are already gone",
			before: func(st *stage) string {
				if err := st.delete(st.pod.Path(), "eth1", st.spec("eth1").HostIfName); err != nil {
					st.t.Fatalf("first Delete() = %v", err)
				}
				return st.pod.Path()
			},
		},
		{
			name:   "with an empty netns path removes the pair through the host end",
			before: func(st *stage) string { return "" },
		},
		{
			name: "when the netns path is gone but the namespace still lives",
			before: func(st *stage) string {
				st.removeNetNSPath()
				return st.pod.Path()
			},
		},
		{
			name: "when the namespace was destroyed",
			before: func(st *stage) string {
				path := st.pod.Path()
				st.removeNetNSPath()
				if err := st.pod.Close(); err != nil {
					st.t.Fatal(err)
				}
				return path
			},
			destroysPod: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStage(t)
			spec := st.spec("eth1")
			spec.IPs = []net.IPNet{prefix(t, "10.80.0.5/24")}
			st.mustCreate(spec)
			path := tt.before(st)

			if err := st.delete(path, "eth1", spec.HostIfName); err != nil {
				t.Fatalf("Delete() = %v", err)
			}
			if got := st.hostLinks(); !reflect.DeepEqual(got, []string{"lo"}) {
				t.Errorf("host links = %v, want only lo", got)
			}
			if !tt.destroysPod {
				if got := st.podLinks(); !reflect.DeepEqual(got, []string{"lo"}) {
					t.Errorf("Pod links = %v, want only lo", got)
				}
			}
		})
	}
}

func TestDeleteLeavesAForeignInterfaceAlone(t *testing.T) {
	st := newStage(t)
	st.inPod(func() error {
		return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}})
	})
	if err := st.delete(st.pod.Path(), "eth1", st.spec("eth1").HostIfName); err != nil {
		t.Fatalf("Delete() = %v", err)
	}
	st.assertNothingLeft("eth1")
}

func TestCheckNamesWhatDiffers(t *testing.T) {
	tests := []struct {
		name    string
		change  func(st *stage, spec Spec)
		wantErr string // empty: Check succeeds
	}{
		{name: "an untouched interface passes", change: func(*stage, Spec) {}},
		{
			name: "an MTU changed in the Pod",
			change: func(st *stage, _ Spec) {
				st.inPod(func() error {
					link, err := netlink.LinkByName("eth1")
					if err != nil {
						return err
					}
					return netlink.LinkSetMTU(link, 1400)
				})
			},
			wantErr: "MTU of eth1 is 1400, want 9000",
		},
		{
			name: "an address removed in the Pod",
			change: func(st *stage, spec Spec) {
				st.inPod(func() error {
					link, err := netlink.LinkByName("eth1")
					if err != nil {
						return err
					}
					addr := spec.IPs[0]
					return netlink.AddrDel(link, &netlink.Addr{IPNet: &addr})
				})
			},
			wantErr: "address 10.90.0.5/24 is missing on eth1",
		},
		{
			name: "a route removed in the Pod",
			change: func(st *stage, spec Spec) {
				st.inPod(func() error {
					dst := spec.Routes[0].Dst
					return netlink.RouteDel(&netlink.Route{Dst: &dst})
				})
			},
			wantErr: "route 10.91.0.0/16 via 10.90.0.1 is missing on eth1",
		},
		{
			name: "TX checksum offload turned back on",
			change: func(st *stage, _ Spec) {
				st.inPod(func() error { return setTXChecksum("eth1", true) })
			},
			wantErr: "TX checksum offload is on for eth1",
		},
		{
			name: "IPv6 enabled again on the host end",
			change: func(st *stage, spec Spec) {
				st.inHost(func() error {
					return os.WriteFile("/proc/sys/net/ipv6/conf/"+spec.HostIfName+"/disable_ipv6", []byte("0"), 0o644)
				})
			},
			wantErr: "IPv6 is enabled on host interface",
		},
		{
			name: "the pair deleted",
			change: func(st *stage, spec Spec) {
				if err := st.delete("", "eth1", spec.HostIfName); err != nil {
					st.t.Fatal(err)
				}
			},
			wantErr: "interface eth1 does not exist in the Pod",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStage(t)
			spec := st.spec("eth1")
			spec.MTU = 9000
			spec.IPs = []net.IPNet{prefix(t, "10.90.0.5/24")}
			spec.Routes = []*types.Route{{Dst: prefix(t, "10.91.0.0/16"), GW: net.ParseIP("10.90.0.1")}}
			spec.DisableTXChecksum = true
			st.mustCreate(spec)

			tt.change(st, spec)
			err := st.check(spec)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Check() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Check() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// capture is a packet socket in one namespace that sees every frame of every interface there.
type capture struct {
	fd int
}

func newCapture(t *testing.T, netns ns.NetNS) *capture {
	t.Helper()
	var fd int
	err := netns.Do(func(ns.NetNS) (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		return err
	})
	if err != nil {
		t.Fatalf("open packet socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	// A bounded wait per read, so that a missing frame fails the test instead of hanging it.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1}); err != nil {
		t.Fatal(err)
	}
	return &capture{fd: fd}
}

// waitFor reads frames received on ifIndex until match has accepted one for every key in want,
// or fails the test after a generous bound.
func (c *capture) waitFor(t *testing.T, ifIndex int, want []string, match func(frame []byte) string) {
	t.Helper()
	missing := map[string]bool{}
	for _, w := range want {
		missing[w] = true
	}
	buf := make([]byte, 65536)
	deadline := time.Now().Add(20 * time.Second)
	for len(missing) > 0 && time.Now().Before(deadline) {
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("read packet socket: %v", err)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Ifindex != ifIndex || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		delete(missing, match(buf[:n]))
	}
	if len(missing) > 0 {
		t.Fatalf("no announcement seen on the host end for %v", slices.Sorted(maps.Keys(missing)))
	}
}

// announcedAddress returns the address a frame announces for mac, or "" when it is not a
// well-formed gratuitous ARP or unsolicited neighbour advertisement from mac.
func announcedAddress(frame []byte, mac net.HardwareAddr) string {
	if len(frame) < 14 || !bytes.Equal(frame[6:12], mac) {
		return ""
	}
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case 0x0806:
		arp := frame[14:]
		if len(arp) < 28 || binary.BigEndian.Uint16(arp[6:8]) != 1 || !bytes.Equal(arp[8:14], mac) ||
			!bytes.Equal(arp[14:18], arp[24:28]) || !bytes.Equal(frame[0:6], broadcastMAC) {
			return ""
		}
		return net.IP(arp[14:18]).String()
	case 0x86dd:
		ip6 := frame[14:]
		if len(ip6) < 40+32 || ip6[6] != 58 || ip6[7] != 255 {
			return ""
		}
		msg := ip6[40 : 40+int(binary.BigEndian.Uint16(ip6[4:6]))]
		if msg[0] != 136 || msg[4]&0x20 == 0 || msg[24] != 2 || !bytes.Equal(msg[26:32], mac) {
			return ""
		}
		if !checksumOK(ip6[8:24], ip6[24:40], msg) {
			return ""
		}
		return net.IP(msg[8:24]).String()
	}
	return ""
}

// checksumOK verifies an ICMPv6 checksum: the sum over pseudo-header and message folds to 0xffff.
func checksumOK(src, dst, msg []byte) bool {
	data := slices.Concat(src, dst, binary.BigEndian.AppendUint32(nil, uint32(len(msg))), []byte{0, 0, 0, 58}, msg)
	if len(data)%2 == 1 {
		data = append(data, 0)
	}
	var sum uint32
	for i := 0; i < len(data); i += 2 {
		sum += uint32(data[i])<<8 | uint32(data[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return sum == 0xffff
}

func TestCreateAnnouncesAddresses(t *testing.T) {
	st := newStage(t)
	spec := st.spec("eth1")
	spec.MAC = mustMAC(t, "02:50:76:00:00:03")
	spec.IPs = []net.IPNet{prefix(t, "10.95.0.5/24"), prefix(t, "fd95::5/64")}
	want := []string{"10.95.0.5", "fd95::5"}
	match := func(frame []byte) string { return announcedAddress(frame, spec.MAC) }

	// Opened before Create, so it sees the host end's first frames.
	c := newCapture(t, st.host)
	iface := st.mustCreate(spec)
	c.waitFor(t, iface.HostIfIndex, want, match)

	t.Run("Announce repeats them on demand", func(t *testing.T) {
		ips := []net.IP{spec.IPs[0].IP, spec.IPs[1].IP}
		if err := announce(t.Context(), spec.NetNSPath, "eth1", ips); err != nil {
			t.Fatalf("Announce() = %v", err)
		}
		c.waitFor(t, iface.HostIfIndex, want, match)
	})
}
