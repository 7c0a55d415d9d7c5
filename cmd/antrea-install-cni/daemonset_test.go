package main

import "testing"

func TestRunRefusesOnlyWhenDeletedWithoutUninstall(t *testing.T) {
	o := options{onlyDeleted: "kube-system/antrea-agent"}
	if err := run(&o); err == nil {
		t.Error("run accepted --only-when-daemonset-deleted without --uninstall")
	}
}

func TestRunRefusesBinaryOnlyWithUninstall(t *testing.T) {
	o := options{binaryOnly: true, uninstall: true}
	if err := run(&o); err == nil {
		t.Error("run accepted --binary-only with --uninstall")
	}
}
