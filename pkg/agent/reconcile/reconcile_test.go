package reconcile

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/podvlan/podvlan/pkg/agent/engine"
	"github.com/podvlan/podvlan/pkg/ovs"
)

type fakePorts []ovs.PodPort

func (f fakePorts) ListPodPorts(context.Context, string) ([]ovs.PodPort, error) { return f, nil }

type fakeDetacher struct{ detached []string }

func (f *fakeDetacher) Detach(_ context.Context, sb engine.Sandbox) error {
	f.detached = append(f.detached, sb.ContainerID)
	return nil
}

type fakePods map[string]string // "ns/name" -> uid

func (f fakePods) Exists(_ context.Context, ns, name, uid string) (bool, error) {
	got, ok := f[ns+"/"+name]
	if name == "api-down" {
		return false, errors.New("connection refused")
	}
	return ok && (uid == "" || got == uid), nil
}

func port(name, ns, pod, uid, container string) ovs.PodPort {
	return ovs.PodPort{Name: name, Owner: ovs.PortOwner{PodNamespace: ns, PodName: pod, PodUID: uid, ContainerID: container, IfName: "eth1"}}
}

func TestOnce(t *testing.T) {
	ports := fakePorts{
		port("pvl-live", "ns", "live", "u1", "c-live"),
		port("pvl-gone", "ns", "deleted", "u2", "c-deleted"),
		port("pvl-recreated", "ns", "recreated", "old-uid", "c-recreated"),
		port("pvl-nons", "ns", "live", "u1", "c-old-sandbox"),
		port("pvl-api-down", "ns", "api-down", "u9", "c-unsure"),
		port("pvl-multi-a", "ns", "multi", "u5", "c-multi"),
		port("pvl-multi-b", "ns", "multi", "u5", "c-multi"),
	}
	links := map[string]bool{"pvl-live": true, "pvl-gone": true, "pvl-recreated": true, "pvl-api-down": true, "pvl-multi-b": true}
	pods := fakePods{"ns/live": "u1", "ns/recreated": "new-uid", "ns/multi": "u5"}
	det := &fakeDetacher{}
	r := New("br", ports, det, pods, func(name string) (bool, error) { return links[name], nil })
	cleaned, err := r.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "api-down") {
		t.Errorf("error %v, want the failed Pod lookup reported", err)
	}
	sort.Strings(det.detached)
	want := []string{"c-deleted", "c-old-sandbox", "c-recreated"}
	if strings.Join(det.detached, ",") != strings.Join(want, ",") {
		t.Errorf("detached %v, want %v (kept: live Pod, unsure lookup, a container with one live veth)", det.detached, want)
	}
	reasons := map[string]string{}
	for _, s := range cleaned {
		reasons[s.Sandbox.ContainerID] = s.Reason
	}
	if !strings.Contains(reasons["c-old-sandbox"], "network namespace") || !strings.Contains(reasons["c-deleted"], "no longer exists") {
		t.Errorf("reasons %v", reasons)
	}
}
