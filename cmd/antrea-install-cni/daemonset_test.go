package main

import (
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestDecideStays(t *testing.T) {
	dsGR := schema.GroupResource{Group: "apps", Resource: "daemonsets"}
	now := metav1.Now()
	cases := []struct {
		name      string
		ds        *appsv1.DaemonSet
		err       error
		wantStays bool
	}{
		{"a DaemonSet that exists means a restart", &appsv1.DaemonSet{}, nil, true},
		{"a DaemonSet being deleted means an uninstall", &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}}, nil, false},
		{"a DaemonSet that is gone means an uninstall", nil, apierrors.NewNotFound(dsGR, "antrea-agent"), false},
		{"revoked credentials mean an uninstall", nil, apierrors.NewUnauthorized("token invalid"), false},
		{"a revoked role means an uninstall", nil, apierrors.NewForbidden(dsGR, "antrea-agent", errors.New("no")), false},
		{"an unreachable API server keeps the plugin", nil, errors.New("dial tcp: connection refused"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stays, why := decideStays(tc.ds, tc.err)
			if stays != tc.wantStays {
				t.Errorf("decideStays = %v (%s), want %v", stays, why, tc.wantStays)
			}
		})
	}
}

func TestRunRefusesOnlyWhenDeletedWithoutUninstall(t *testing.T) {
	o := options{onlyDeleted: "kube-system/antrea-agent"}
	if err := run(&o); err == nil {
		t.Error("run accepted --only-when-daemonset-deleted without --uninstall")
	}
}
