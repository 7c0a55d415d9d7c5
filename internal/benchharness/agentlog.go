package benchharness

import (
	"bufio"
	"os"
	"regexp"
	"time"
)

// Breakdown is where the agent spent one ADD's time, as its log at verbosity 2 tells: the CNI
// server's duration of the request and the attach engine's phases (of the slowest network when
// there are several). What the server spent outside the engine is the handler's: finding the
// Pod and its networks, and writing the network-status annotation.
type Breakdown struct {
	// Received is when the agent received the ADD, Attached when the engine had attached its
	// last network (the log lines' times).
	Received  time.Time
	Attached  time.Time
	Server    time.Duration
	Engine    time.Duration
	Allocate  time.Duration
	Veth      time.Duration
	Configure time.Duration
	OVS       time.Duration
}

var (
	logContainer = regexp.MustCompile(`container(?:ID)?="([^"]+)"`)
	logKey       = func(key string) *regexp.Regexp {
		return regexp.MustCompile(`\b` + key + `="?([0-9.]+(?:ns|µs|ms|s))"?`)
	}
	logDuration = logKey("duration")
	logPhases   = map[string]*regexp.Regexp{"took": logKey("took"), "allocate": logKey("allocate"),
		"veth": logKey("veth"), "configure": logKey("configure"), "ovs": logKey("ovs")}
	logAttached = regexp.MustCompile(`"Attached network"`)
	logAddDone  = regexp.MustCompile(`"CNI command succeeded" command="ADD"`)
	logAddStart = regexp.MustCompile(`"CNI command received" command="ADD"`)
)

// ReadBreakdowns reads an agent log and returns the breakdown of every successful ADD, by
// container ID.
func ReadBreakdowns(path string) (map[string]Breakdown, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]Breakdown{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		m := logContainer.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		b := out[m[1]]
		switch {
		case logAttached.MatchString(line):
			phase := func(key string) time.Duration {
				if v := logPhases[key].FindStringSubmatch(line); v != nil {
					d, _ := time.ParseDuration(v[1])
					return d
				}
				return 0
			}
			if at, ok := logTime(line); ok && at.After(b.Attached) {
				b.Attached = at
			}
			if took := phase("took"); took >= b.Engine {
				b.Engine, b.Allocate, b.Veth, b.Configure, b.OVS = took, phase("allocate"), phase("veth"), phase("configure"), phase("ovs")
			}
		case logAddStart.MatchString(line):
			if at, ok := logTime(line); ok {
				b.Received = at
			}
		case logAddDone.MatchString(line):
			if v := logDuration.FindStringSubmatch(line); v != nil {
				b.Server, _ = time.ParseDuration(v[1])
			}
		default:
			continue
		}
		out[m[1]] = b
	}
	return out, sc.Err()
}

var logHeader = regexp.MustCompile(`^[IWE]\d{4} (\d{2}:\d{2}:\d{2}\.\d{6})`)

// logTime reads the time of a klog line, which has no date: today's, in local time (klog's).
func logTime(line string) (time.Time, bool) {
	m := logHeader.FindStringSubmatch(line)
	if m == nil {
		return time.Time{}, false
	}
	clock, err := time.ParseInLocation("15:04:05.000000", m[1], time.Local)
	if err != nil {
		return time.Time{}, false
	}
	y, mo, d := time.Now().Date()
	return time.Date(y, mo, d, clock.Hour(), clock.Minute(), clock.Second(), clock.Nanosecond(), time.Local), true
}
