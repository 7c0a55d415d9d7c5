// Package chain is the agent's chain keeper: it keeps the antrea CNI plugin chained, exactly once,
// in the Node's primary CNI configuration list while secondary networks are on, and out of it
// while they are off. Primary network plugins (Calico, Cilium, Flannel, ...) rewrite their
// configuration file when they restart, dropping the entry; the keeper watches the configuration
// directory (inotify, plus a periodic look) and chains antrea again within a moment, and says so
// in a Node Event and in metrics.
//
// Deciding is pure (Decide, from what the directory holds and what was last reported); acting is
// pkg/cniinstall's atomic, byte-preserving edits. The keeper never unchains when the agent merely
// stops: a restarting agent must leave the chain for the Pods created meanwhile. Uninstall is told
// apart by the agent's DaemonSet being gone or deleted (Uninstalling).
package chain

import (
	"fmt"
	"strings"

	"github.com/podvlan/podvlan/pkg/cniinstall"
)

// Action is what the keeper does to the configuration directory.
type Action int

const (
	// Nothing leaves the directory as it is.
	Nothing Action = iota
	// Chain writes the entry into the primary configuration (adds it, or repairs a duplicated or
	// outdated one), converting a single-plugin file into a list first.
	Chain
	// Unchain takes every antrea entry out of the directory's configuration lists.
	Unchain
)

func (a Action) String() string {
	switch a {
	case Chain:
		return "chain"
	case Unchain:
		return "unchain"
	default:
		return "nothing"
	}
}

// Want is what the agent asks of the keeper.
type Want struct {
	// Chained is true when antrea belongs in the chain: SecondaryNetwork is on, or the agent's
	// configuration is invalid (Pods that ask for networks must then get the configuration error
	// rather than start without their networks).
	Chained bool
	// Why explains Chained in messages, e.g. "feature gate SecondaryNetwork is off".
	Why string
}

// Status is what the keeper last reported. Decide compares the directory with it, so that each
// state is told once, and a repair is told as one.
type Status struct {
	// Chained is true when the primary held the current entry after the last look.
	Chained bool
	// File is the primary configuration file of the last look ("" when there was none).
	File string
	// Problem says why the wanted state cannot be had ("" when it is had, or by design cannot be,
	// as under a Multus primary).
	Problem string
	// Note is a state told once that is not a problem (not chained under a meta plugin).
	Note string
}

// Event is a Node Event to record.
type Event struct {
	Warning bool
	Reason  string
	Message string
}

// Event reasons.
const (
	ReasonChained    = "CNIChained"
	ReasonRestored   = "CNIChainRestored"
	ReasonRepaired   = "CNIChainRepaired"
	ReasonUpdated    = "CNIChainUpdated"
	ReasonUnchained  = "CNIUnchained"
	ReasonNotChained = "CNINotChained"
	ReasonFailed     = "CNIChainFailed"
)

// Decision is what to do, and what to report once it is done.
type Decision struct {
	Action Action
	// Restore is true when the action puts back an entry that the primary lost (its plugin
	// rewrote the file, or a new primary file took over) or held more than once.
	Restore bool
	// Status is the status once the action succeeded (at once for Nothing).
	Status Status
	// Event, when not nil, is recorded once the action succeeded.
	Event *Event
}

// Decide returns what to do about the configuration directory dir, which holds s, when want is
// wanted and last was reported after the previous look.
func Decide(want Want, dir string, s cniinstall.State, last Status) Decision {
	if !want.Chained {
		return decideUnchained(want, dir, s, last)
	}
	switch {
	case s.Primary == "":
		return problem(last, Status{}, fmt.Sprintf(
			"no CNI network configuration in %s yet: antrea is chained as soon as the primary network plugin writes one", dir))
	case s.Invalid != nil:
		return problem(last, Status{File: s.Primary}, s.Invalid.Error())
	case s.MetaPlugin != "":
		st := Status{File: s.Primary, Note: fmt.Sprintf(
			"the primary CNI configuration %s is %s, which calls antrea itself for networks of type antrea: antrea is not chained after it",
			s.Primary, s.MetaPlugin)}
		d := Decision{Status: st}
		if len(s.ChainedLists) > 0 {
			// Chained before Multus took over: every network of type antrea would attach twice.
			d.Action = Unchain
			d.Event = &Event{Reason: ReasonUnchained, Message: st.Note + "; took it out of " + strings.Join(s.ChainedLists, ", ")}
			return d
		}
		if last.Note != st.Note || last.File != st.File {
			d.Event = &Event{Reason: ReasonNotChained, Message: st.Note}
		}
		return d
	case s.Current:
		st := Status{Chained: true, File: s.Primary}
		d := Decision{Status: st}
		if last.Problem != "" || last.Note != "" {
			d.Event = &Event{Reason: ReasonChained, Message: fmt.Sprintf("antrea is chained in %s", s.Primary)}
		}
		return d
	}
	d := Decision{Action: Chain, Status: Status{Chained: true, File: s.Primary}}
	switch {
	case s.Entries > 1:
		d.Restore = true
		d.Event = &Event{Reason: ReasonRepaired, Message: fmt.Sprintf(
			"the primary CNI configuration %s held antrea %d times: kept one", s.Primary, s.Entries)}
	case s.Entries == 1:
		d.Event = &Event{Reason: ReasonUpdated, Message: fmt.Sprintf(
			"updated the antrea entry of the primary CNI configuration %s to the agent's socket", s.Primary)}
	case last.Chained && last.File != s.Primary:
		d.Restore = true
		d.Event = &Event{Reason: ReasonRestored, Message: fmt.Sprintf(
			"the primary CNI configuration is now %s (was %s): chained antrea into it", s.Primary, last.File)}
	case last.Chained:
		d.Restore = true
		d.Event = &Event{Reason: ReasonRestored, Message: fmt.Sprintf(
			"the primary CNI configuration %s was rewritten without antrea (by the primary network plugin): chained antrea again", s.Primary)}
	default:
		d.Event = &Event{Reason: ReasonChained, Message: fmt.Sprintf(
			"chained antrea into the primary CNI configuration %s (%s)", s.Primary, want.Why)}
	}
	return d
}

func decideUnchained(want Want, dir string, s cniinstall.State, last Status) Decision {
	if len(s.ChainedLists) == 0 {
		return Decision{Status: Status{File: s.Primary}}
	}
	if s.Invalid != nil {
		// Uninstall refuses to touch a primary the runtime cannot load; nothing else is edited.
		return problem(last, Status{File: s.Primary}, s.Invalid.Error())
	}
	return Decision{Action: Unchain, Status: Status{File: s.Primary}, Event: &Event{Reason: ReasonUnchained,
		Message: fmt.Sprintf("%s: took antrea out of %s in %s", want.Why, strings.Join(s.ChainedLists, ", "), dir)}}
}

// problem reports st with a problem, told in a Warning Event when it is new.
func problem(last, st Status, msg string) Decision {
	st.Problem = msg
	d := Decision{Status: st}
	if last.Problem != msg {
		d.Event = &Event{Warning: true, Reason: ReasonFailed, Message: msg}
	}
	return d
}

// Failed returns the status and Event after the action of d failed with err.
func Failed(last Status, d Decision, err error) (Status, *Event) {
	st := last
	st.Problem = err.Error()
	if d.Action != Nothing {
		st.Problem = fmt.Sprintf("%s antrea: %v", d.Action, err)
	}
	if last.Problem == st.Problem {
		return st, nil
	}
	return st, &Event{Warning: true, Reason: ReasonFailed, Message: st.Problem}
}
