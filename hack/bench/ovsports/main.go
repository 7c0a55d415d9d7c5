// Command ovsports measures how long pkg/ovs takes to create a Pod access port and see it ready
// (vswitchd assigned its OpenFlow port), and to delete it, against private OVS daemons with the
// userspace datapath. It starts the daemons with hack/ovs.sh in a network namespace of its own,
// prints p50/p99/max, writes _output/bench/ovsports.json, and removes everything it made.
//
//	go run ./hack/bench/ovsports [-ports 200] [-out _output/bench/ovsports.json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/ovs"
)

type stats struct {
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

type report struct {
	Benchmark   string    `json:"benchmark"`
	Ports       int       `json:"ports"`
	Datapath    string    `json:"datapath"`
	CreateReady stats     `json:"create_ready"`
	Delete      stats     `json:"delete"`
	VethCreate  stats     `json:"veth_create"`
	TotalCreate float64   `json:"total_create_s"`
	GoVersion   string    `json:"go_version"`
	CPUs        int       `json:"cpus"`
	Time        time.Time `json:"time"`
}

func main() {
	ports := flag.Int("ports", 200, "number of access ports to create")
	out := flag.String("out", "", "JSON output file (default <repo>/_output/bench/ovsports.json)")
	flag.Parse()
	if err := run(*ports, *out); err != nil {
		fmt.Fprintln(os.Stderr, "ovsports:", err)
		os.Exit(1)
	}
}

func run(nPorts int, out string) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespace, veths, Open vSwitch)")
	}
	root, err := teststack.FindRepoRoot()
	if err != nil {
		return err
	}
	if out == "" {
		out = filepath.Join(root, "_output", "bench", "ovsports.json")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env, err := startOVS(root)
	if env != nil {
		defer env.teardown()
	}
	if err != nil {
		return err
	}

	connectCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	client, err := ovs.Connect(connectCtx, env.socket, ovs.WithHostNetNS(env.netnsPath()))
	cancel()
	if err != nil {
		return err
	}
	defer client.Close()
	const bridge = "pvbench"
	if err := client.EnsureBridge(ctx, ovs.BridgeConfig{Name: bridge, DatapathType: ovs.DatapathNetdev}); err != nil {
		return err
	}

	links, err := env.netlink()
	if err != nil {
		return err
	}
	defer links.Close()

	var vethTimes, createTimes, deleteTimes []time.Duration
	names := make([]string, 0, nPorts)
	defer func() {
		for _, name := range names {
			if l, err := links.LinkByName(name); err == nil {
				_ = links.LinkDel(l)
			}
		}
	}()
	start := time.Now()
	for i := range nPorts {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := fmt.Sprintf("pvb%d", i)
		t0 := time.Now()
		if err := addVeth(links, name); err != nil {
			return err
		}
		names = append(names, name)
		t1 := time.Now()
		_, err := client.CreateAccessPort(ctx, ovs.PortSpec{
			Bridge: bridge, Name: name, VLAN: uint16(1 + i%4094),
			Owner: ovs.PortOwner{
				PodNamespace: "bench", PodName: fmt.Sprintf("pod-%d", i), PodUID: fmt.Sprintf("uid-%d", i),
				ContainerID: fmt.Sprintf("ctr-%d", i), IfName: "eth1", Network: "bench/vlan",
				Addresses: []string{fmt.Sprintf("10.%d.%d.%d/16", 100+i/65536, i/256%256, i%256)},
			},
		})
		if err != nil {
			return fmt.Errorf("port %d: %w", i, err)
		}
		vethTimes = append(vethTimes, t1.Sub(t0))
		createTimes = append(createTimes, time.Since(t1))
	}
	totalCreate := time.Since(start)

	listed, err := client.ListPodPorts(ctx, bridge)
	if err != nil {
		return err
	}
	if len(listed) != nPorts {
		return fmt.Errorf("ListPodPorts found %d ports, want %d", len(listed), nPorts)
	}
	for _, name := range names {
		t0 := time.Now()
		if err := client.DeletePort(ctx, name); err != nil {
			return fmt.Errorf("delete %s: %w", name, err)
		}
		deleteTimes = append(deleteTimes, time.Since(t0))
	}

	r := report{
		Benchmark:   "ovsports",
		Ports:       nPorts,
		Datapath:    ovs.DatapathNetdev,
		CreateReady: summarize(createTimes),
		Delete:      summarize(deleteTimes),
		VethCreate:  summarize(vethTimes),
		TotalCreate: totalCreate.Seconds(),
		GoVersion:   runtime.Version(),
		CPUs:        runtime.NumCPU(),
		Time:        time.Now().UTC(),
	}
	fmt.Printf("ovsports: %d access ports on a netdev bridge (%d CPUs)\n", nPorts, r.CPUs)
	fmt.Printf("  create+ready: p50 %.2f ms  p99 %.2f ms  max %.2f ms  mean %.2f ms  (total %.2f s)\n",
		r.CreateReady.P50, r.CreateReady.P99, r.CreateReady.Max, r.CreateReady.Mean, r.TotalCreate)
	fmt.Printf("  delete:       p50 %.2f ms  p99 %.2f ms  max %.2f ms  mean %.2f ms\n",
		r.Delete.P50, r.Delete.P99, r.Delete.Max, r.Delete.Mean)
	fmt.Printf("  (veth create, not included above: p50 %.2f ms  p99 %.2f ms)\n", r.VethCreate.P50, r.VethCreate.P99)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Println("  wrote", out)
	return nil
}

// ovsEnv is the private OVS this benchmark runs against.
type ovsEnv struct {
	script, dir, netns, socket string
	nsCreated, started         bool
}

func (e *ovsEnv) netnsPath() string { return "/var/run/netns/" + e.netns }

func startOVS(root string) (*ovsEnv, error) {
	dir, err := os.MkdirTemp("", "ovsports-")
	if err != nil {
		return nil, err
	}
	e := &ovsEnv{
		script: filepath.Join(root, "hack", "ovs.sh"),
		dir:    dir,
		netns:  fmt.Sprintf("pvbench-%d", os.Getpid()),
		socket: "unix:" + filepath.Join(dir, "run", "db.sock"),
	}
	if err := command("ip", "netns", "add", e.netns); err != nil {
		return e, err
	}
	e.nsCreated = true
	// Keep IPv6 chatter of the veths out of the switch.
	if err := command("ip", "netns", "exec", e.netns, "sysctl", "-qw",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		return e, err
	}
	e.started = true // a failed "up" may still have started a daemon
	if err := command("bash", e.script, "up", e.dir, e.netns); err != nil {
		return e, err
	}
	return e, nil
}

func (e *ovsEnv) netlink() (*netlink.Handle, error) {
	ns, err := netns.GetFromName(e.netns)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", e.netns, err)
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}

// teardown stops the daemons (bridges first, so no tap device survives), then removes the
// namespace with every veth left in it, and the directory.
func (e *ovsEnv) teardown() {
	if e.started {
		if err := command("bash", e.script, "down", e.dir); err != nil {
			fmt.Fprintln(os.Stderr, "ovsports: teardown:", err)
		}
	}
	if e.nsCreated {
		if err := command("ip", "netns", "del", e.netns); err != nil {
			fmt.Fprintln(os.Stderr, "ovsports: teardown:", err)
		}
	}
	_ = os.RemoveAll(e.dir)
}

func addVeth(h *netlink.Handle, name string) error {
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s: %w", name, err)
	}
	for _, n := range []string{name, name + "p"} {
		l, err := h.LinkByName(n)
		if err != nil {
			return fmt.Errorf("find %s: %w", n, err)
		}
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("set %s up: %w", n, err)
		}
	}
	return nil
}

func summarize(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }
	pct := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(sorted)))) - 1
		return sorted[max(0, min(i, len(sorted)-1))]
	}
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	return stats{P50: ms(pct(0.50)), P99: ms(pct(0.99)), Max: ms(sorted[len(sorted)-1]), Mean: ms(sum / time.Duration(len(sorted)))}
}

func command(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
