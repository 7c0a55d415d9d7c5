package ippoolgc

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned/fake"
)

var ippoolsResource = schema.GroupResource{Group: v1beta1.GroupName, Resource: "ippools"}

func TestReleaseEntries(t *testing.T) {
	orphan := entry("10.0.0.2", "uid-1", "c1")
	orphanKey, _ := KeyOf("pool", &orphan)
	agentEntry := entry("10.0.0.9", "uid-7", "c7")
	cached := &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "pool", ResourceVersion: "1"}}
	cached.Status.IPAddresses = []v1beta1.IPAddressState{orphan}
	// The API server's copy is newer: an agent allocated meanwhile.
	stored := cached.DeepCopy()
	stored.Status.IPAddresses = append(stored.Status.IPAddresses, agentEntry)

	releaseBackoff.base, releaseBackoff.max = time.Millisecond, time.Millisecond
	t.Cleanup(func() { releaseBackoff.base, releaseBackoff.max = 20*time.Millisecond, 2*time.Second })

	tests := []struct {
		name        string
		store       *v1beta1.IPPool // the API server's copy; nil when the pool is gone
		conflicts   int             // status writes answered with a conflict before one goes through
		failWith    error
		wantRemoved int
		wantStored  []string
		wantErr     string
	}{
		{name: "a write without conflict removes the orphan", store: cached, wantRemoved: 1},
		{name: "after a conflict the pool is re-read and an entry added meanwhile survives", store: stored, conflicts: 1,
			wantRemoved: 1, wantStored: []string{"10.0.0.9"}},
		{name: "endless conflicts give up with an error", store: stored, conflicts: maxReleaseAttempts, wantErr: "still conflicting after"},
		{name: "another error is returned naming the pool", store: stored, failWith: apierrors.NewForbidden(ippoolsResource, "pool", nil),
			wantErr: "update status of IPPool pool"},
		{name: "a pool that is gone has nothing left to release"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewSimpleClientset()
			if tt.store != nil {
				client = fake.NewSimpleClientset(tt.store.DeepCopy())
			}
			conflicts := tt.conflicts
			client.PrependReactor("update", "ippools", func(action k8stesting.Action) (bool, runtime.Object, error) {
				if action.GetSubresource() != "status" {
					return false, nil, nil
				}
				if tt.failWith != nil {
					return true, nil, tt.failWith
				}
				if conflicts > 0 {
					conflicts--
					return true, nil, apierrors.NewConflict(ippoolsResource, "pool", nil)
				}
				return false, nil, nil
			})
			removed, err := releaseEntries(context.Background(), client, cached, map[Key]bool{orphanKey: true})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(removed) != tt.wantRemoved {
				t.Fatalf("removed %v, want %d entries", removed, tt.wantRemoved)
			}
			if tt.store == nil {
				return
			}
			got, err := client.CrdV1beta1().IPPools().Get(context.Background(), "pool", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(ips(got.Status.IPAddresses), ",") != strings.Join(tt.wantStored, ",") || got.Status.Usage.Used != len(tt.wantStored) {
				t.Errorf("stored %v (used %d), want %v", ips(got.Status.IPAddresses), got.Status.Usage.Used, tt.wantStored)
			}
		})
	}
}
