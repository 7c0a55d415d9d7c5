package chain

import (
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/podvlan/podvlan/pkg/cniinstall"
)

const dir = "/etc/cni/net.d"

var (
	on  = Want{Chained: true, Why: "feature gate SecondaryNetwork is on"}
	off = Want{Chained: false, Why: "feature gate SecondaryNetwork is off"}
)

func TestDecide(t *testing.T) {
	chainedIn := func(f string) Status { return Status{Chained: true, File: f} }
	cases := []struct {
		name        string
		want        Want
		state       cniinstall.State
		last        Status
		wantAction  Action
		wantRestore bool
		wantStatus  Status
		// wantEvent is the Event reason ("" for none); wantWarning its type.
		wantEvent   string
		wantWarning bool
		// wantMessage is a part of the Event's message.
		wantMessage string
	}{
		{
			name:       "a primary holding the current entry once is left alone, silently",
			want:       on,
			state:      cniinstall.State{Primary: "10-calico.conflist", Entries: 1, Current: true, ChainedLists: []string{"10-calico.conflist"}},
			last:       chainedIn("10-calico.conflist"),
			wantAction: Nothing, wantStatus: chainedIn("10-calico.conflist"),
		},
		{
			name:       "an agent that starts and finds the entry says nothing (a restart)",
			want:       on,
			state:      cniinstall.State{Primary: "10-calico.conflist", Entries: 1, Current: true},
			wantAction: Nothing, wantStatus: chainedIn("10-calico.conflist"),
		},
		{
			name:       "first chaining is told as chained, not as a restore",
			want:       on,
			state:      cniinstall.State{Primary: "10-calico.conflist"},
			wantAction: Chain, wantStatus: chainedIn("10-calico.conflist"),
			wantEvent: ReasonChained, wantMessage: "chained antrea into the primary CNI configuration 10-calico.conflist",
		},
		{
			name:       "the primary plugin rewrote its file without antrea: chained again, told as a restore",
			want:       on,
			state:      cniinstall.State{Primary: "10-calico.conflist"},
			last:       chainedIn("10-calico.conflist"),
			wantAction: Chain, wantRestore: true, wantStatus: chainedIn("10-calico.conflist"),
			wantEvent: ReasonRestored, wantMessage: "rewritten without antrea",
		},
		{
			name:       "a new primary file took over: chained into it, told as a restore naming both",
			want:       on,
			state:      cniinstall.State{Primary: "05-cilium.conflist", ChainedLists: []string{"10-calico.conflist"}},
			last:       chainedIn("10-calico.conflist"),
			wantAction: Chain, wantRestore: true, wantStatus: chainedIn("05-cilium.conflist"),
			wantEvent: ReasonRestored, wantMessage: "now 05-cilium.conflist (was 10-calico.conflist)",
		},
		{
			name:       "antrea twice is never left: repaired to once",
			want:       on,
			state:      cniinstall.State{Primary: "10-flannel.conflist", Entries: 2, ChainedLists: []string{"10-flannel.conflist"}},
			last:       chainedIn("10-flannel.conflist"),
			wantAction: Chain, wantRestore: true, wantStatus: chainedIn("10-flannel.conflist"),
			wantEvent: ReasonRepaired, wantMessage: "held antrea 2 times",
		},
		{
			name:       "an entry with another socket is updated, not counted as a restore",
			want:       on,
			state:      cniinstall.State{Primary: "10-flannel.conflist", Entries: 1, ChainedLists: []string{"10-flannel.conflist"}},
			wantAction: Chain, wantStatus: chainedIn("10-flannel.conflist"),
			wantEvent: ReasonUpdated,
		},
		{
			name:       "a single-plugin primary is chained (Install converts it)",
			want:       on,
			state:      cniinstall.State{Primary: "10-bridge.conf"},
			wantAction: Chain, wantStatus: chainedIn("10-bridge.conf"),
			wantEvent: ReasonChained,
		},
		{
			name:       "never under a Multus primary: not chained, told once",
			want:       on,
			state:      cniinstall.State{Primary: "00-multus.conf", MetaPlugin: "multus"},
			wantAction: Nothing,
			wantStatus: Status{File: "00-multus.conf", Note: "the primary CNI configuration 00-multus.conf is multus, which calls antrea itself for networks of type antrea: antrea is not chained after it"},
			wantEvent:  ReasonNotChained, wantMessage: "not chained",
		},
		{
			name:       "under a Multus primary the note is not repeated",
			want:       on,
			state:      cniinstall.State{Primary: "00-multus.conf", MetaPlugin: "multus"},
			last:       Status{File: "00-multus.conf", Note: "the primary CNI configuration 00-multus.conf is multus, which calls antrea itself for networks of type antrea: antrea is not chained after it"},
			wantAction: Nothing,
			wantStatus: Status{File: "00-multus.conf", Note: "the primary CNI configuration 00-multus.conf is multus, which calls antrea itself for networks of type antrea: antrea is not chained after it"},
		},
		{
			name:       "an entry left from before Multus took over is taken out",
			want:       on,
			state:      cniinstall.State{Primary: "00-multus.conflist", MetaPlugin: "multus", Entries: 1, ChainedLists: []string{"00-multus.conflist"}},
			last:       chainedIn("10-calico.conflist"),
			wantAction: Unchain,
			wantStatus: Status{File: "00-multus.conflist", Note: "the primary CNI configuration 00-multus.conflist is multus, which calls antrea itself for networks of type antrea: antrea is not chained after it"},
			wantEvent:  ReasonUnchained, wantMessage: "took it out of 00-multus.conflist",
		},
		{
			name:       "no configuration yet is a problem told once, with a warning",
			want:       on,
			state:      cniinstall.State{},
			wantAction: Nothing,
			wantStatus: Status{Problem: "no CNI network configuration in /etc/cni/net.d yet: antrea is chained as soon as the primary network plugin writes one"},
			wantEvent:  ReasonFailed, wantWarning: true, wantMessage: "no CNI network configuration",
		},
		{
			name:       "the same problem again is not told again",
			want:       on,
			state:      cniinstall.State{},
			last:       Status{Problem: "no CNI network configuration in /etc/cni/net.d yet: antrea is chained as soon as the primary network plugin writes one"},
			wantAction: Nothing,
			wantStatus: Status{Problem: "no CNI network configuration in /etc/cni/net.d yet: antrea is chained as soon as the primary network plugin writes one"},
		},
		{
			name:       "a primary the runtime cannot load is left untouched, with a warning",
			want:       on,
			state:      cniinstall.State{Primary: "10-x.conflist", Invalid: errors.New("refusing to change 10-x.conflist")},
			last:       chainedIn("10-x.conflist"),
			wantAction: Nothing,
			wantStatus: Status{File: "10-x.conflist", Problem: "refusing to change 10-x.conflist"},
			wantEvent:  ReasonFailed, wantWarning: true, wantMessage: "refusing",
		},
		{
			name:       "chained again after a problem is told",
			want:       on,
			state:      cniinstall.State{Primary: "10-x.conflist", Entries: 1, Current: true},
			last:       Status{File: "10-x.conflist", Problem: "refusing to change 10-x.conflist"},
			wantAction: Nothing, wantStatus: chainedIn("10-x.conflist"),
			wantEvent: ReasonChained,
		},
		{
			name:       "SecondaryNetwork off: an entry is taken out of every list that has one",
			want:       off,
			state:      cniinstall.State{Primary: "10-calico.conflist", Entries: 1, Current: true, ChainedLists: []string{"10-calico.conflist", "99-old.conflist"}},
			wantAction: Unchain, wantStatus: Status{File: "10-calico.conflist"},
			wantEvent: ReasonUnchained, wantMessage: "feature gate SecondaryNetwork is off: took antrea out of 10-calico.conflist, 99-old.conflist",
		},
		{
			name:       "SecondaryNetwork off and nothing chained: nothing, silently",
			want:       off,
			state:      cniinstall.State{Primary: "10-calico.conflist"},
			wantAction: Nothing, wantStatus: Status{File: "10-calico.conflist"},
		},
		{
			name:       "SecondaryNetwork off and a primary that does not load: nothing edited, a warning",
			want:       off,
			state:      cniinstall.State{Primary: "10-x.conflist", Invalid: errors.New("refusing"), ChainedLists: []string{"20-y.conflist"}},
			wantAction: Nothing, wantStatus: Status{File: "10-x.conflist", Problem: "refusing"},
			wantEvent: ReasonFailed, wantWarning: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.want, dir, tc.state, tc.last)
			if d.Action != tc.wantAction || d.Restore != tc.wantRestore || d.Status != tc.wantStatus {
				t.Errorf("Decide = %v restore %v status %+v; want %v restore %v status %+v",
					d.Action, d.Restore, d.Status, tc.wantAction, tc.wantRestore, tc.wantStatus)
			}
			switch {
			case tc.wantEvent == "" && d.Event != nil:
				t.Errorf("Event %+v, want none", *d.Event)
			case tc.wantEvent != "" && d.Event == nil:
				t.Errorf("no Event, want %s", tc.wantEvent)
			case d.Event != nil:
				if d.Event.Reason != tc.wantEvent || d.Event.Warning != tc.wantWarning || !strings.Contains(d.Event.Message, tc.wantMessage) {
					t.Errorf("Event %+v, want %s (warning %v) saying %q", *d.Event, tc.wantEvent, tc.wantWarning, tc.wantMessage)
				}
			}
		})
	}
}

func TestFailedTellsAProblemOnce(t *testing.T) {
	d := Decision{Action: Chain}
	st, ev := Failed(Status{Chained: true, File: "f"}, d, errors.New("disk full"))
	if st.Problem != "chain antrea: disk full" || ev == nil || !ev.Warning || ev.Reason != ReasonFailed {
		t.Fatalf("Failed = %+v, %+v", st, ev)
	}
	if _, again := Failed(st, d, errors.New("disk full")); again != nil {
		t.Errorf("the same failure was told again: %+v", *again)
	}
}

func TestDecideUninstalling(t *testing.T) {
	dsGR := schema.GroupResource{Group: "apps", Resource: "daemonsets"}
	now := metav1.Now()
	cases := []struct {
		name string
		ds   *appsv1.DaemonSet
		err  error
		want bool
	}{
		{"a DaemonSet that exists means a restart", &appsv1.DaemonSet{}, nil, false},
		{"a DaemonSet being deleted means an uninstall", &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}}, nil, true},
		{"a DaemonSet that is gone means an uninstall", nil, apierrors.NewNotFound(dsGR, "antrea-agent"), true},
		{"revoked credentials mean an uninstall", nil, apierrors.NewUnauthorized("token invalid"), true},
		{"a revoked role means an uninstall", nil, apierrors.NewForbidden(dsGR, "antrea-agent", errors.New("no")), true},
		{"an unreachable API server keeps the plugin", nil, errors.New("dial tcp: connection refused"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := DecideUninstalling(tc.ds, tc.err)
			if got != tc.want {
				t.Errorf("DecideUninstalling = %v (%s), want %v", got, why, tc.want)
			}
		})
	}
}

func TestParseDaemonSetRef(t *testing.T) {
	for _, ref := range []string{"", "antrea-agent", "/x", "x/", "a/b/c"} {
		if _, _, err := ParseDaemonSetRef(ref); err == nil {
			t.Errorf("ParseDaemonSetRef(%q) accepted it", ref)
		}
	}
	if ns, n, err := ParseDaemonSetRef("kube-system/antrea-agent"); err != nil || ns != "kube-system" || n != "antrea-agent" {
		t.Errorf("ParseDaemonSetRef = %q %q %v", ns, n, err)
	}
}
