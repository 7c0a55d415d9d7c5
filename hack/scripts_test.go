// Package hack holds the scripts that set up, build and release the project; these tests run the
// shell helpers the way the Makefile does.
package hack

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeOldGo puts a go first in PATH that says it is Debian 12's Go 1.19.
func fakeOldGo(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\ncase \"$*\" in\n  'env GOVERSION') echo go1.19.8 ;;\n  *) echo 'go version go1.19.8 linux/amd64' ;;\nesac\n"
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
}

func run(t *testing.T, env []string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: %v", name, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

func TestDoctorNamesAGoOlderThanGoMod(t *testing.T) {
	out, code := run(t, fakeOldGo(t), "./doctor.sh")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	for _, want := range []string{"go.mod needs Go 1.26", "is Go 1.19.8", "fix:", "thing(s) to fix first"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

func TestSetupStopsAtAGoOlderThanGoModWithAClearMessage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("hack/setup.sh checks for root first; run as root")
	}
	out, code := run(t, fakeOldGo(t), "./setup.sh")
	if code == 0 || !strings.Contains(out, "go.mod needs Go 1.26") || strings.Contains(out, "installing") {
		t.Errorf("setup.sh with Go 1.19: status %d, output:\n%s", code, out)
	}
}

func lib(t *testing.T, script string) (string, int) {
	t.Helper()
	return run(t, append(os.Environ(), "HEARTBEAT=1"), "bash", "-c", ". ./lib.sh && "+script)
}

func TestRunLoggedSendsOutputToTheLogWithAHeartbeatAndShowsItOnFailure(t *testing.T) {
	logfile := filepath.Join(t.TempDir(), "build.log")
	out, code := lib(t, "run_logged "+logfile+` "building things" sh -c 'echo "go: downloading example.com/m v1"; sleep 3.5; echo "compile error here"; exit 4'`)
	if code != 4 {
		t.Errorf("status %d, want the command's 4", code)
	}
	data, err := os.ReadFile(logfile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "go: downloading example.com/m v1") {
		t.Errorf("the log lacks the download line:\n%s", data)
	}
	if strings.Contains(out, "go: downloading") {
		t.Errorf("module downloads reached the terminal:\n%s", out)
	}
	// The heartbeat's seconds depend on the machine's load; that one came, and counts the download, does not.
	if !regexp.MustCompile(`building things: [0-9]+s, 1 modules downloaded so far`).MatchString(out) {
		t.Errorf("output lacks a heartbeat that counts the download:\n%s", out)
	}
	for _, want := range []string{"compile error here", "whole output is in " + logfile} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestKeepLogsSavesTheLogsOfATornDownCluster(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "local-cluster")
	for name, content := range map[string]string{
		"node-1/kubelet.log": "kubelet said", "pod-logs/ns_p_uid/c/0.log": "pod said", "etcd/member/snap": "not a log",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, code := lib(t, "REPO_ROOT="+root+" && keep_logs "+dir)
	if code != 0 {
		t.Fatalf("keep_logs: %d\n%s", code, out)
	}
	kept, _ := filepath.Glob(filepath.Join(root, "_output/logs/local-cluster-*"))
	if len(kept) != 1 || !strings.Contains(out, "logs kept in _output/logs/local-cluster-") {
		t.Fatalf("kept %v, output %s", kept, out)
	}
	for name, want := range map[string]bool{"node-1/kubelet.log": true, "pod-logs/ns_p_uid/c/0.log": true, "etcd/member/snap": false} {
		_, err := os.Stat(filepath.Join(kept[0], name))
		if (err == nil) != want {
			t.Errorf("%s kept: %v, want %v", name, err == nil, want)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	cases := []struct {
		a, b string
		ge   bool
	}{{"1.26.8", "1.26.8", true}, {"1.27.0", "1.26.8", true}, {"1.26.10", "1.26.8", true}, {"1.19.8", "1.26.8", false}, {"1.26", "1.26.8", false}}
	for _, tc := range cases {
		_, code := lib(t, "version_ge "+tc.a+" "+tc.b)
		if (code == 0) != tc.ge {
			t.Errorf("version_ge %s %s = %v, want %v", tc.a, tc.b, code == 0, tc.ge)
		}
	}
}
