package v1beta1_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
)

// TestCRDSchema creates IPPools on a real API server with the generated CRD manifest installed and
// checks which ones the schema admits.
func TestCRDSchema(t *testing.T) {
	cluster := teststack.LocalCluster(t)
	cluster.InstallCRDs(t)
	client := versioned.NewForConfigOrDie(cluster.RestConfig(t))

	valid := func() v1beta1.IPPoolSpec {
		return v1beta1.IPPoolSpec{
			IPRanges:   []v1beta1.IPRange{{CIDR: "10.10.1.0/26"}, {Start: "10.10.1.100", End: "10.10.1.120"}},
			SubnetInfo: v1beta1.SubnetInfo{Gateway: "10.10.1.1", PrefixLength: 24, VLAN: 100},
		}
	}
	tests := []struct {
		name    string
		mutate  func(*v1beta1.IPPoolSpec)
		wantErr string // substring of the rejection; empty means admitted
	}{
		{name: "a valid IPv4 pool is admitted", mutate: func(*v1beta1.IPPoolSpec) {}},
		{name: "a valid IPv6 pool is admitted", mutate: func(s *v1beta1.IPPoolSpec) {
			s.IPRanges = []v1beta1.IPRange{{CIDR: "fd00:10::/120"}, {Start: "fd00:10::200", End: "fd00:10::2ff"}}
			s.SubnetInfo = v1beta1.SubnetInfo{Gateway: "fd00:10::1", PrefixLength: 64}
		}},
		{name: "VLAN 4094 is admitted", mutate: func(s *v1beta1.IPPoolSpec) { s.SubnetInfo.VLAN = 4094 }},
		{name: "VLAN 4095 is rejected", wantErr: "spec.subnetInfo.vlan",
			mutate: func(s *v1beta1.IPPoolSpec) { s.SubnetInfo.VLAN = 4095 }},
		{name: "a negative VLAN is rejected", wantErr: "spec.subnetInfo.vlan",
			mutate: func(s *v1beta1.IPPoolSpec) { s.SubnetInfo.VLAN = -1 }},
		{name: "prefixLength 0 is rejected", wantErr: "spec.subnetInfo.prefixLength",
			mutate: func(s *v1beta1.IPPoolSpec) { s.SubnetInfo.PrefixLength = 0 }},
		{name: "prefixLength 129 is rejected", wantErr: "spec.subnetInfo.prefixLength",
			mutate: func(s *v1beta1.IPPoolSpec) { s.SubnetInfo.PrefixLength = 129 }},
		{name: "prefixLength 33 with an IPv4 gateway is rejected", wantErr: "prefixLength of an IPv4 subnet",
			mutate: func(s *v1beta1.IPPoolSpec) { s.SubnetInfo.PrefixLength = 33 }},
		{name: "a gateway that is not an IP is rejected", wantErr: "spec.subnetInfo.gateway",
			mutate: func(s *v1beta1.IPPoolSpec) { s.SubnetInfo.Gateway = "10.10.1.x" }},
		{name: "a malformed CIDR is rejected", wantErr: "spec.ipRanges[0].cidr",
			mutate: func(s *v1beta1.IPPoolSpec) { s.IPRanges[0].CIDR = "10.10.1.0/33" }},
		{name: "a CIDR with host bits is rejected", wantErr: "no host bits",
			mutate: func(s *v1beta1.IPPoolSpec) { s.IPRanges[0].CIDR = "10.10.1.5/26" }},
		{name: "a range with a CIDR and a start is rejected", wantErr: "either cidr or start and end",
			mutate: func(s *v1beta1.IPPoolSpec) { s.IPRanges[0].Start, s.IPRanges[0].End = "10.10.1.2", "10.10.1.3" }},
		{name: "a range with a start and no end is rejected", wantErr: "start and end go together",
			mutate: func(s *v1beta1.IPPoolSpec) { s.IPRanges[1].End = "" }},
		{name: "an empty range is rejected", wantErr: "either cidr or start and end",
			mutate: func(s *v1beta1.IPPoolSpec) { s.IPRanges[1] = v1beta1.IPRange{} }},
		{name: "a start that is not an IP is rejected", wantErr: "spec.ipRanges[1].start",
			mutate: func(s *v1beta1.IPPoolSpec) { s.IPRanges[1].Start = "10.10.1.300" }},
		{name: "start and end of different families are rejected", wantErr: "one address family",
			mutate: func(s *v1beta1.IPPoolSpec) { s.IPRanges[1].End = "fd00::1" }},
		{name: "a range of another family than the gateway is rejected", wantErr: "gateway's address family",
			mutate: func(s *v1beta1.IPPoolSpec) { s.IPRanges[0].CIDR = "fd00::/120" }},
		{name: "a pool without ranges is rejected", wantErr: "spec.ipRanges",
			mutate: func(s *v1beta1.IPPoolSpec) { s.IPRanges = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := valid()
			tc.mutate(&spec)
			name := fmt.Sprintf("crd-schema-%08x", rand.Uint32())
			_, err := client.CrdV1beta1().IPPools().Create(context.Background(),
				&v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{})
			if err == nil {
				t.Cleanup(func() {
					_ = client.CrdV1beta1().IPPools().Delete(context.Background(), name, metav1.DeleteOptions{})
				})
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("create: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("created; want a rejection mentioning %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("rejected with %v; want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

// TestCRDStatusSubresource checks that status is written only through the status subresource and
// that its phase is constrained.
func TestCRDStatusSubresource(t *testing.T) {
	cluster := teststack.LocalCluster(t)
	cluster.InstallCRDs(t)
	client := versioned.NewForConfigOrDie(cluster.RestConfig(t))
	ctx := context.Background()
	name := fmt.Sprintf("crd-status-%08x", rand.Uint32())
	pool := &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.IPPoolSpec{
		IPRanges:   []v1beta1.IPRange{{CIDR: "10.10.2.0/28"}},
		SubnetInfo: v1beta1.SubnetInfo{Gateway: "10.10.2.1", PrefixLength: 24},
	}}
	pool.Status.Usage.Used = 5
	created, err := client.CrdV1beta1().IPPools().Create(ctx, pool, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { _ = client.CrdV1beta1().IPPools().Delete(ctx, name, metav1.DeleteOptions{}) })
	if created.Status.Usage.Used != 0 {
		t.Errorf("create kept status.usage.used=%d; the status subresource must drop status on create", created.Status.Usage.Used)
	}

	created.Status.IPAddresses = []v1beta1.IPAddressState{{IPAddress: "10.10.2.2", Phase: "Leaked",
		Owner: v1beta1.IPAddressOwner{Pod: &v1beta1.PodOwner{Name: "p", Namespace: "ns", ContainerID: "c"}}}}
	if _, err := client.CrdV1beta1().IPPools().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err == nil ||
		!strings.Contains(err.Error(), "phase") {
		t.Fatalf("status with phase Leaked: got %v, want a rejection naming the phase", err)
	}
	created.Status.IPAddresses[0].Phase = v1beta1.IPAddressPhaseAllocated
	created.Status.Usage = v1beta1.IPPoolUsage{Total: 13, Used: 1}
	updated, err := client.CrdV1beta1().IPPools().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status: %v", err)
	}
	if len(updated.Status.IPAddresses) != 1 || updated.Status.Usage.Used != 1 {
		t.Fatalf("status after update: %+v", updated.Status)
	}
}
