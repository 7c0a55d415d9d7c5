package podvlanctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Output formats.
const (
	OutputTable = "table"
	OutputJSON  = "json"
)

// WriteJSON writes v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes tab-separated rows aligned in columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table { return &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)} }

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// eventText is an Event in one line: "Type Reason (age): message".
func eventText(e *EventSummary, now time.Time) string {
	if e == nil {
		return ""
	}
	return fmt.Sprintf("%s %s (%s ago): %s", e.Type, e.Reason, age(now.Sub(e.Last)), e.Message)
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

func joinOr(list []string, empty string) string {
	if len(list) == 0 {
		return empty
	}
	return strings.Join(list, ",")
}

// WritePodReport writes the Pod view as text.
func WritePodReport(w io.Writer, r PodReport, now time.Time) error {
	fmt.Fprintf(w, "Pod %s/%s on %s, %s\n", r.Namespace, r.Name, orDash(r.Node), r.Phase)
	if r.Annotation == "" {
		fmt.Fprintln(w, "It asks for no secondary network (no k8s.v1.cni.cncf.io/networks annotation).")
		return nil
	}
	if r.Condition != nil {
		fmt.Fprintf(w, "Condition %s=%s %s %s\n", r.Condition.Type, r.Condition.Status, r.Condition.Reason, r.Condition.Message)
	}
	if r.Problem != "" {
		fmt.Fprintf(w, "Problem: %s\n", r.Problem)
	}
	t := newTable(w)
	t.row("INTERFACE", "NETWORK", "VLAN", "ADDRESSES", "MAC", "OVS PORT", "ATTACHED")
	for _, i := range r.Interfaces {
		vlan := ""
		if i.VLAN != nil {
			vlan = strconv.Itoa(*i.VLAN)
		}
		t.row(i.Interface, i.Network, vlan, joinOr(i.Addresses, ""), i.MAC, i.OVSPort, strconv.FormatBool(i.Attached))
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, i := range r.Interfaces {
		for _, p := range i.Problems {
			fmt.Fprintf(w, "%s: problem: %s\n", i.Interface, p)
		}
		if i.LastEvent != nil {
			fmt.Fprintf(w, "%s: last event: %s\n", i.Interface, eventText(i.LastEvent, now))
		}
	}
	return nil
}

// WritePoolReports writes the summary of several pools, one line each.
func WritePoolReports(w io.Writer, reports []PoolReport) error {
	t := newTable(w)
	t.row("NAME", "VLAN", "SUBNET", "USED", "TOTAL", "USE%", "NODES", "LEAKS")
	for _, r := range reports {
		t.row(r.Name, strconv.Itoa(int(r.VLAN)), r.Subnet, strconv.Itoa(r.Used), strconv.Itoa(r.Total),
			strconv.Itoa(int(r.UsedFraction*100)), strconv.Itoa(len(r.PerNode)), leaks(r))
	}
	return t.flush()
}

func leaks(r PoolReport) string {
	if r.LeaksUnknown {
		return "unknown"
	}
	return strconv.Itoa(r.Leaks)
}

// WritePoolReport writes one pool's view as text.
func WritePoolReport(w io.Writer, r PoolReport) error {
	fmt.Fprintf(w, "IPPool %s: VLAN %d, subnet %s, ranges %s\n", r.Name, r.VLAN, r.Subnet, joinOr(r.Ranges, "none"))
	fmt.Fprintf(w, "Usage: %d of %d (%d%%), leaks found: %s\n", r.Used, r.Total, int(r.UsedFraction*100), leaks(r))
	if r.LeaksUnknown {
		fmt.Fprintln(w, "(the Pods of the holding namespaces could not be listed, so leaks cannot be told)")
	}
	if len(r.PerNode) > 0 {
		t := newTable(w)
		t.row("NODE", "ADDRESSES")
		for _, s := range r.PerNode {
			node := s.Node
			if node == "" {
				node = "(unknown)"
			}
			t.row(node, strconv.Itoa(s.Count))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(r.Holders) == 0 {
		fmt.Fprintln(w, "No address is held.")
		return nil
	}
	t := newTable(w)
	t.row("ADDRESS", "POD", "INTERFACE", "NODE", "CONTAINER", "LEAK")
	for _, h := range r.Holders {
		pod := ""
		if h.Pod != "" {
			pod = h.Namespace + "/" + h.Pod
		}
		t.row(h.IP, pod, h.IfName, h.Node, shortID(h.ContainerID), h.Leak)
	}
	return t.flush()
}

func shortID(id string) string { return id[:min(len(id), 12)] }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteNodeReport writes one Node's view as text.
func WriteNodeReport(w io.Writer, r NodeReport, now time.Time) error {
	fmt.Fprintf(w, "Node %s\n", r.Node)
	fmt.Fprintf(w, "Bridge: %s (%s), datapath %s\n", orDash(r.Bridge), r.BridgeState, orDash(r.Datapath))
	fmt.Fprintf(w, "CNI chain: %s\n", r.Chain)
	a := r.Agent
	if a.Pod == "" {
		fmt.Fprintf(w, "Agent: none: %s\n", a.Problem)
	} else {
		fmt.Fprintf(w, "Agent: %s %s, ready=%t, restarts=%d, image %s\n", a.Pod, a.Phase, a.Ready, a.Restarts, orDash(a.Image))
		if a.Problem != "" {
			fmt.Fprintf(w, "Agent problem: %s\n", a.Problem)
		}
	}
	if len(r.Uplinks) > 0 {
		t := newTable(w)
		t.row("UPLINK", "STATE", "FROM")
		for _, u := range r.Uplinks {
			t.row(u.Name, u.State, u.From)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(r.Ports) == 0 {
		fmt.Fprintln(w, "Ports: no Pod on this Node has a secondary interface.")
	} else {
		t := newTable(w)
		t.row("POD", "INTERFACE", "NETWORK", "ADDRESSES", "OVS PORT")
		for _, p := range r.Ports {
			t.row(p.Pod, p.Interface, p.Network, joinOr(p.Addresses, ""), p.OVSPort)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	for i := range r.Events {
		fmt.Fprintf(w, "Event: %s\n", eventText(&r.Events[i], now))
	}
	for _, l := range r.Limits {
		fmt.Fprintf(w, "Not known: %s\n", l)
	}
	return nil
}

// WriteChecks writes doctor's checks, then what to fix.
func WriteChecks(w io.Writer, checks []Check) error {
	t := newTable(w)
	t.row("CHECK", "STATUS", "DETAIL")
	for _, c := range checks {
		t.row(c.Name, strings.ToUpper(c.Status), c.Detail)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, c := range checks {
		if c.Status != CheckOK && c.Fix != "" {
			fmt.Fprintf(w, "To fix %q: %s\n", c.Name, c.Fix)
		}
	}
	return nil
}

// Healthy reports whether no check failed.
func Healthy(checks []Check) bool {
	for _, c := range checks {
		if c.Status == CheckFail {
			return false
		}
	}
	return true
}
