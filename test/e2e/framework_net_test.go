package e2e

// The network side of the e2e helpers: commands in network namespaces, throwaway OVS bridges on a
// node's private OVS, hand-made "pods" (a netns with one veth on such a bridge) and packet captures
// on the fabric. Everything made here is removed when the test ends.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const cmdTimeout = 30 * time.Second

// netnsCommand returns the argv that runs args inside netns, or in the root namespace when netns is "".
func netnsCommand(netns string, args ...string) []string {
	if netns == "" {
		return args
	}
	return append([]string{"ip", "netns", "exec", netns}, args...)
}

// tryRun runs a command and returns its combined output.
func tryRun(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// mustRun runs a command and fails the test when it fails.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tryRun(args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// vsctl runs ovs-vsctl against a node's OVS (for setting up test fixtures and assertions only).
func vsctl(t *testing.T, ovsdb string, args ...string) string {
	t.Helper()
	return strings.TrimSpace(mustRun(t, append([]string{"ovs-vsctl", "--db=" + ovsdb, "--timeout=30"}, args...)...))
}

// addThrowawayBridge creates a userspace (netdev) bridge on the node's OVS, optionally with the
// node's uplink as a trunk port, and deletes it when the test ends. Only one bridge of a node can
// hold the uplink.
func addThrowawayBridge(t *testing.T, node clusterNode, withUplink bool) string {
	t.Helper()
	name := uniqueName("brt")
	vsctl(t, node.OVSDB, "add-br", name, "--", "set", "bridge", name, "datapath_type=netdev")
	t.Cleanup(func() {
		if _, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "--timeout=30", "--if-exists", "del-br", name); err != nil {
			t.Errorf("delete bridge %s on %s: %v", name, node.Name, err)
		}
	})
	if withUplink {
		vsctl(t, node.OVSDB, "add-port", name, node.Uplink)
		requirePortWorks(t, node, node.Uplink)
	}
	return name
}

// requirePortWorks fails the test unless vswitchd opened the interface: ovs-vsctl exits 0 even when
// it could not.
func requirePortWorks(t *testing.T, node clusterNode, iface string) {
	t.Helper()
	ofport := vsctl(t, node.OVSDB, "get", "interface", iface, "ofport")
	errCol := vsctl(t, node.OVSDB, "get", "interface", iface, "error")
	if ofport == "-1" || ofport == "[]" || (errCol != "[]" && errCol != `""`) {
		t.Fatalf("interface %s on %s: ofport %s, error %s", iface, node.Name, ofport, errCol)
	}
}

// vethPod is a hand-made stand-in for a Pod's secondary interface: a network namespace whose eth0
// is a veth whose other end is an access port of a bridge on a node's OVS.
type vethPod struct {
	NetNS    string
	HostPort string
	Node     clusterNode
}

// addVethPod creates a netns with eth0 holding the given addresses (CIDR notation), and plugs the
// veth's host end into bridge on the node's OVS as an access port of vlan. IPv6 is off on both ends so
// that no stray frames show up on the trunk.
func addVethPod(t *testing.T, node clusterNode, bridge string, vlan int, cidrs ...string) *vethPod {
	t.Helper()
	p := &vethPod{NetNS: uniqueName("pv-e2e-"), HostPort: uniqueName("vpe"), Node: node}
	mustRun(t, "ip", "netns", "add", p.NetNS)
	t.Cleanup(func() {
		if _, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "--timeout=30", "--if-exists", "del-port", p.HostPort); err != nil {
			t.Errorf("delete port %s: %v", p.HostPort, err)
		}
		// Deleting the namespace destroys eth0 and, with it, the host end.
		if _, err := tryRun("ip", "netns", "del", p.NetNS); err != nil {
			t.Errorf("delete netns %s: %v", p.NetNS, err)
		}
	})
	mustRun(t, netnsCommand(p.NetNS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")...)
	add := []string{"ip", "link", "add", p.HostPort}
	if node.NetNS != "" {
		add = append(add, "netns", node.NetNS)
	}
	mustRun(t, append(add, "type", "veth", "peer", "name", "eth0", "netns", p.NetNS)...)
	mustRun(t, netnsCommand(node.NetNS, "sysctl", "-qw", "net.ipv6.conf."+p.HostPort+".disable_ipv6=1")...)
	for _, cidr := range cidrs {
		mustRun(t, "ip", "-n", p.NetNS, "addr", "add", cidr, "dev", "eth0")
	}
	mustRun(t, "ip", "-n", p.NetNS, "link", "set", "lo", "up")
	mustRun(t, "ip", "-n", p.NetNS, "link", "set", "eth0", "up")
	mustRun(t, netnsCommand(node.NetNS, "ip", "link", "set", p.HostPort, "up")...)
	vsctl(t, node.OVSDB, "add-port", bridge, p.HostPort, fmt.Sprintf("tag=%d", vlan))
	requirePortWorks(t, node, p.HostPort)
	return p
}

// ping reports whether the namespace gets at least one echo reply from ip within a few seconds.
func ping(netns, ip string) error {
	_, err := tryRun(netnsCommand(netns, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", ip)...)
	return err
}

// capture is a running tcpdump.
type capture struct {
	cmd        *exec.Cmd
	mu         sync.Mutex
	out        bytes.Buffer
	stderr     bytes.Buffer
	stdoutDone chan struct{}
	stderrDone chan struct{}
}

// startCapture starts `tcpdump -e -n -Q in` on iface inside netns (frames the interface receives,
// with their link-level headers, so 802.1Q tags show) and returns once tcpdump is listening.
func startCapture(t *testing.T, netns, iface string) *capture {
	t.Helper()
	argv := netnsCommand(netns, "tcpdump", "-l", "-n", "-e", "-Q", "in", "-i", iface)
	c := &capture{cmd: exec.Command(argv[0], argv[1:]...), stdoutDone: make(chan struct{}), stderrDone: make(chan struct{})}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("tcpdump stdout: %v", err)
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatalf("tcpdump stderr: %v", err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start tcpdump on %s: %v", iface, err)
	}
	t.Cleanup(func() { c.stop() })
	go func() {
		defer close(c.stdoutDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.out.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
		}
	}()
	// tcpdump captures nothing until it says it is listening.
	listening := make(chan struct{})
	go func() {
		defer close(c.stderrDone)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			c.mu.Lock()
			c.stderr.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if strings.Contains(sc.Text(), "listening on") {
				once.Do(func() { close(listening) })
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case <-listening:
		return c
	case <-c.stderrDone:
		select {
		case <-listening:
			return c
		default:
		}
	case <-time.After(cmdTimeout):
	}
	c.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("tcpdump on %s never started listening: %s", iface, c.stderr.String())
	return nil
}

// stop ends the capture and returns the frames it printed, one per line.
func (c *capture) stop() []string {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.stdoutDone:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.stdoutDone
		}
		<-c.stderrDone // Wait closes the pipes: only once both readers are done
		_ = c.cmd.Wait()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Split(strings.TrimSpace(c.out.String()), "\n")
}
