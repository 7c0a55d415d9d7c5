package podvlanctl

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// Sample is one line of the Prometheus text exposition format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// ParseMetrics reads the samples of a Prometheus text exposition; comment lines are skipped.
// It is small on purpose: the views need a handful of gauges, not the whole format.
func ParseMetrics(text string) ([]Sample, error) {
	var samples []Sample
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		sample, err := parseSample(s)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", line, err)
		}
		samples = append(samples, sample)
	}
	return samples, sc.Err()
}

func parseSample(s string) (Sample, error) {
	var sample Sample
	end := strings.IndexAny(s, "{ ")
	if end <= 0 {
		return sample, fmt.Errorf("no value in %q", s)
	}
	sample.Name, s = s[:end], s[end:]
	if s[0] == '{' {
		labels, rest, err := parseLabels(s[1:])
		if err != nil {
			return sample, fmt.Errorf("%s: %w", sample.Name, err)
		}
		sample.Labels, s = labels, rest
	}
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return sample, fmt.Errorf("%s: no value", sample.Name)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return sample, fmt.Errorf("%s: value %q: %w", sample.Name, fields[0], err)
	}
	sample.Value = v
	return sample, nil
}

// parseLabels reads `a="x",b="y"}` and returns the labels and what follows the brace.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return labels, s[1:], nil
		}
		eq := strings.Index(s, `="`)
		if eq <= 0 {
			return nil, "", fmt.Errorf("malformed labels at %q", s)
		}
		name := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var b strings.Builder
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		if i == len(s) {
			return nil, "", fmt.Errorf("unterminated value of label %s", name)
		}
		labels[name] = b.String()
		s = s[i+1:]
	}
}

// metricNamed returns the samples whose name ends in suffix, so that the views keep working
// when a prefix is added or changed (antrea_agent_..., podvlan_agent_...).
func metricNamed(samples []Sample, suffix string) []Sample {
	var out []Sample
	for _, s := range samples {
		if s.Name == suffix || strings.HasSuffix(s.Name, "_"+suffix) {
			out = append(out, s)
		}
	}
	return out
}
