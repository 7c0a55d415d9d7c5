package benchharness

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Target is one goal of issue 9 and how a run fared against it. Value and Limit are in Unit; a
// target passes when Value <= Limit (AtLeast: Value >= Limit).
type Target struct {
	Benchmark string  `json:"benchmark"`
	Name      string  `json:"name"`
	Value     float64 `json:"value"`
	Limit     float64 `json:"limit"`
	Unit      string  `json:"unit"`
	AtLeast   bool    `json:"at_least,omitempty"`
	Pass      bool    `json:"pass"`
	// Detail gives the figures the value was computed from.
	Detail string `json:"detail,omitempty"`
}

// NewTarget returns a target that passes when value <= limit.
func NewTarget(benchmark, name string, value, limit float64, unit, detail string) Target {
	return Target{Benchmark: benchmark, Name: name, Value: round2(value), Limit: limit, Unit: unit, Pass: value <= limit, Detail: detail}
}

// NewMinimumTarget returns a target that passes when value >= limit.
func NewMinimumTarget(benchmark, name string, value, limit float64, unit, detail string) Target {
	return Target{Benchmark: benchmark, Name: name, Value: round2(value), Limit: limit, Unit: unit, AtLeast: true,
		Pass: value >= limit, Detail: detail}
}

// Verdict is PASS, or MISS with by how much: the factor by which the value exceeds its limit
// (falls short of it, for a minimum), or the excess over a limit of 0.
func (t Target) Verdict() string {
	switch {
	case t.Pass:
		return "PASS"
	case t.Limit == 0:
		return fmt.Sprintf("MISS by %g", t.Value)
	case t.AtLeast && t.Value <= 0:
		return "MISS (no value)"
	case t.AtLeast:
		return fmt.Sprintf("MISS by %.2fx", t.Limit/t.Value)
	default:
		return fmt.Sprintf("MISS by %.2fx", t.Value/t.Limit)
	}
}

// Want renders the limit: "<= 1.00 x floor", ">= 150 allocations/s".
func (t Target) Want() string {
	op := "<="
	if t.AtLeast {
		op = ">="
	}
	return fmt.Sprintf("%s %g %s", op, t.Limit, t.Unit)
}

// PrintTargets writes targets as an aligned table.
func PrintTargets(w io.Writer, targets []Target) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BENCHMARK\tTARGET\tVALUE\tWANT\tRESULT\tFROM")
	for _, t := range targets {
		fmt.Fprintf(tw, "%s\t%s\t%g %s\t%s\t%s\t%s\n", t.Benchmark, t.Name, t.Value, t.Unit, t.Want(), t.Verdict(), t.Detail)
	}
	tw.Flush()
}

// Machine describes where and when a benchmark ran; the load average tells how busy the machine
// was (other builds and tests share it).
type Machine struct {
	CPUs        int       `json:"cpus"`
	GoVersion   string    `json:"go_version"`
	Started     time.Time `json:"started"`
	LoadStart   string    `json:"loadavg_start"`
	LoadEnd     string    `json:"loadavg_end,omitempty"`
	DurationSec float64   `json:"duration_s,omitempty"`
}

// NewMachine records the start of a run.
func NewMachine() Machine {
	return Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Started: time.Now(), LoadStart: loadAvg()}
}

// Finish records the end of a run.
func (m *Machine) Finish() {
	m.LoadEnd = loadAvg()
	m.DurationSec = round2(time.Since(m.Started).Seconds())
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// OutputDir is where results go: <repo>/_output/bench.
func (c *Cluster) OutputDir() string { return filepath.Join(c.Root, "_output", "bench") }

// WriteJSON writes v, indented, to path (creating its directory).
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// ReadJSON reads path into v.
func ReadJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
