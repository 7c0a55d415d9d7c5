package yamls

import (
	"bytes"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const agentDaemonSetKey = "DaemonSet/kube-system/antrea-agent"

// TestWithOVSVariant checks antrea-with-ovs.yml against antrea.yml: the same objects, the same
// except for the agent DaemonSet, whose Pod runs Open vSwitch next to the agent with its database
// on the Node and the sockets shared.
func TestWithOVSVariant(t *testing.T) {
	host, withOVS := loadManifest(t), loadManifestFile(t, "antrea-with-ovs.yml")
	for key, doc := range host {
		other, ok := withOVS[key]
		switch {
		case !ok:
			t.Errorf("antrea-with-ovs.yml lacks %s", key)
		case key != agentDaemonSetKey && !bytes.Equal(doc, other):
			t.Errorf("%s differs between the variants; only the agent DaemonSet may", key)
		}
	}
	if len(withOVS) != len(host) {
		t.Errorf("antrea-with-ovs.yml has %d objects, antrea.yml %d", len(withOVS), len(host))
	}

	var hostDS, ds appsv1.DaemonSet
	host.decode(t, agentDaemonSetKey, &hostDS)
	withOVS.decode(t, agentDaemonSetKey, &ds)
	spec := ds.Spec.Template.Spec
	idx := slices.IndexFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == "openvswitch" })
	if idx < 0 {
		t.Fatal("the agent Pod has no openvswitch container")
	}
	ovs := spec.Containers[idx]
	if ovs.SecurityContext == nil || ovs.SecurityContext.Privileged == nil || !*ovs.SecurityContext.Privileged {
		t.Error("the openvswitch container is not privileged (ovs-vswitchd creates taps and moves ports)")
	}
	if ovs.ReadinessProbe == nil || ovs.LivenessProbe == nil {
		t.Error("the openvswitch container has no readiness or liveness probe")
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	mountOf := func(c corev1.Container, path string) string {
		for _, m := range c.VolumeMounts {
			if m.MountPath == path {
				return m.Name
			}
		}
		return ""
	}
	agent := spec.Containers[slices.IndexFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == "antrea-agent" })]
	if a, o := mountOf(agent, "/var/run/openvswitch"), mountOf(ovs, "/var/run/openvswitch"); a == "" || a != o {
		t.Errorf("the agent mounts %q and openvswitch %q at /var/run/openvswitch: db.sock is not shared", a, o)
	}
	cases := []struct{ mount, hostPath, why string }{
		{"/var/lib/openvswitch", "/var/lib/podvlan/openvswitch", "the database survives restarts, apart from a host installation's"},
		{"/var/run/openvswitch", "/var/run/podvlan/openvswitch", "the sockets never replace those of an Open vSwitch on the Node"},
	}
	for _, tc := range cases {
		v, ok := volumes[mountOf(ovs, tc.mount)]
		if !ok || v.HostPath == nil || v.HostPath.Path != tc.hostPath {
			t.Errorf("%s of the openvswitch container is %+v, want hostPath %s: %s", tc.mount, v.VolumeSource, tc.hostPath, tc.why)
		}
	}
	if len(spec.Containers) != len(hostDS.Spec.Template.Spec.Containers)+1 || len(spec.Volumes) != len(hostDS.Spec.Template.Spec.Volumes)+1 {
		t.Errorf("the variant should add one container and one volume to the agent Pod")
	}
}
