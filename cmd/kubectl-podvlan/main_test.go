package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	kubefake "k8s.io/client-go/kubernetes/fake"

	ippoolfake "github.com/podvlan/podvlan/pkg/client/clientset/versioned/fake"
	"github.com/podvlan/podvlan/pkg/podvlanctl"
)

func TestRunRejectsBadInvocations(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-o", "yaml", "pool"}, "must be table or json"},
		{nil, "no command given"},
	}
	for _, tc := range cases {
		err := run(context.Background(), tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

func TestDispatch(t *testing.T) {
	c := &podvlanctl.Client{Kube: kubefake.NewSimpleClientset(), Pools: ippoolfake.NewSimpleClientset()}
	cases := []struct {
		args    []string
		output  string
		wantOut string
		wantErr string
	}{
		{[]string{"pool"}, podvlanctl.OutputJSON, "[]", ""},
		{[]string{"pool"}, podvlanctl.OutputTable, "NAME", ""},
		{[]string{"pool", "absent"}, podvlanctl.OutputTable, "", `ippools.crd.antrea.io "absent" not found`},
		{[]string{"pod"}, podvlanctl.OutputTable, "", "usage: kubectl podvlan pod NAME"},
		{[]string{"frobnicate"}, podvlanctl.OutputTable, "", `unknown command "frobnicate"`},
		// Nothing installed: doctor prints its checks and fails.
		{[]string{"doctor"}, podvlanctl.OutputTable, "To fix", errUnhealthy.Error()},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		err := dispatch(context.Background(), c, tc.args, "default", tc.output, &out)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.wantErr)
		}
		if !strings.Contains(out.String(), tc.wantOut) {
			t.Errorf("%q: output %q, want %q in it", tc.args, out.String(), tc.wantOut)
		}
	}
}
