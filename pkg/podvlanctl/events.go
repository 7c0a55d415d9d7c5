package podvlanctl

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// AgentComponent is the source component of the agent's Events.
const AgentComponent = "antrea-agent"

// EventSummary is one Event as the views show it.
type EventSummary struct {
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int32     `json:"count,omitempty"`
	Last    time.Time `json:"last"`
	Source  string    `json:"source,omitempty"`
}

// eventTime is when an Event last happened, whichever of its time fields the writer filled.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.FirstTimestamp.Time
	}
}

// summarize converts an Event.
func summarize(e *corev1.Event) EventSummary {
	source := e.Source.Component
	if source == "" {
		source = e.ReportingController
	}
	return EventSummary{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: e.Count, Last: eventTime(e), Source: source}
}

// isAgentEvent tells the agent's Events from other components' (kubelet, scheduler).
func isAgentEvent(e *corev1.Event) bool {
	return e.Source.Component == AgentComponent || e.ReportingController == AgentComponent
}

// sortedEvents returns the Events that keep pass, newest first.
func sortedEvents(events []corev1.Event, keep func(*corev1.Event) bool) []EventSummary {
	var out []EventSummary
	for i := range events {
		if keep(&events[i]) {
			out = append(out, summarize(&events[i]))
		}
	}
	slices.SortStableFunc(out, func(a, b EventSummary) int { return b.Last.Compare(a.Last) })
	return out
}

// mentions reports whether message names word as a whole token (eth1 but not eth10).
func mentions(message, word string) bool {
	for rest := message; ; {
		i := strings.Index(rest, word)
		if i < 0 {
			return false
		}
		before := i == 0 || !isNameByte(rest[i-1])
		end := i + len(word)
		after := end == len(rest) || !isNameByte(rest[end])
		if before && after {
			return true
		}
		rest = rest[i+1:]
	}
}

func isNameByte(c byte) bool {
	return c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
