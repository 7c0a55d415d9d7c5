package cniinstall

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// node is a throwaway Node file system: a CNI configuration directory, a CNI bin directory and the
// shim binary the install step copies.
type node struct {
	confDir, binDir, shim string
}

func newNode(t *testing.T, files map[string]string) *node {
	t.Helper()
	root := t.TempDir()
	n := &node{confDir: filepath.Join(root, "net.d"), binDir: filepath.Join(root, "bin"), shim: filepath.Join(root, "antrea-shim")}
	for _, d := range []string{n.confDir, n.binDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(n.shim, []byte("#!/bin/sh\necho shim\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(n.confDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func (n *node) options() Options {
	return Options{ConfDir: n.confDir, BinDir: n.binDir, PluginBinary: n.shim}
}

// snapshot returns every file of the configuration directory and the bin directory with its content.
func (n *node) snapshot(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range []string{n.confDir, n.binDir} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Join(filepath.Base(dir), e.Name())] = string(data)
		}
	}
	return out
}

// runtimeView loads the configuration the way containerd's CRI plugin does (go-cni over libcni:
// the lexically first file; a .conflist as a list, anything else as one plugin) and returns the
// file and its plugin types in order.
func (n *node) runtimeView(t *testing.T) (string, []string) {
	t.Helper()
	files, err := libcni.ConfFiles(n.confDir, []string{".conf", ".conflist", ".json"})
	if err != nil || len(files) == 0 {
		t.Fatalf("no configuration files (%v)", err)
	}
	slices.Sort(files)
	var list *libcni.NetworkConfigList
	if strings.HasSuffix(files[0], ".conflist") {
		list, err = libcni.ConfListFromFile(files[0])
	} else {
		var conf *libcni.NetworkConfig
		if conf, err = libcni.ConfFromFile(files[0]); err == nil { //nolint:staticcheck // SA1019: a single .conf is what a runtime still converts, as containerd does
			list, err = libcni.ConfListFromConf(conf) //nolint:staticcheck // SA1019: a single .conf is what a runtime still converts, as containerd does
		}
	}
	if err != nil {
		t.Fatalf("the runtime could not load %s: %v", files[0], err)
	}
	var types []string
	for _, p := range list.Plugins {
		types = append(types, p.Network.Type)
	}
	return filepath.Base(files[0]), types
}

func TestInstallChainsIntoThePrimaryList(t *testing.T) {
	n := newNode(t, map[string]string{"10-podvlan.conflist": primaryList, "20-other.conflist": twoPluginList})
	res, err := Install(n.options())
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	if !res.ConfigChanged || !res.BinaryChanged || res.ConvertedFrom != "" {
		t.Errorf("Install result = %+v, want config and binary changed, nothing converted", res)
	}
	file, types := n.runtimeView(t)
	if file != "10-podvlan.conflist" || !slices.Equal(types, []string{"bridge", "antrea"}) {
		t.Errorf("the runtime uses %s with plugins %v, want 10-podvlan.conflist with [bridge antrea]", file, types)
	}
	other, _ := os.ReadFile(filepath.Join(n.confDir, "20-other.conflist"))
	if string(other) != twoPluginList {
		t.Errorf("a configuration other than the primary one changed:\n%s", other)
	}
	st, err := os.Stat(filepath.Join(n.binDir, "antrea"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("binary not installed with mode 0755: %v %v", st, err)
	}
	got, _ := os.ReadFile(filepath.Join(n.binDir, "antrea"))
	want, _ := os.ReadFile(n.shim)
	if string(got) != string(want) {
		t.Errorf("installed binary differs from the shim")
	}
}

func TestInstallTwiceChangesNothing(t *testing.T) {
	n := newNode(t, map[string]string{"10-podvlan.conflist": primaryList})
	if _, err := Install(n.options()); err != nil {
		t.Fatal(err)
	}
	before := n.snapshot(t)
	res, err := Install(n.options())
	if err != nil {
		t.Fatalf("second Install: %v", err)
	}
	if res.ConfigChanged || res.BinaryChanged {
		t.Errorf("second Install changed something: %+v", res)
	}
	if after := n.snapshot(t); !equalMaps(before, after) {
		t.Errorf("second Install changed the files:\nbefore %v\nafter  %v", before, after)
	}
}

func TestInstallThenUninstallRestoresEveryByte(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
	}{
		{"an indented list", map[string]string{"10-podvlan.conflist": primaryList}},
		{"a compact list of two plugins", map[string]string{"05-k8s.conflist": twoPluginList}},
		{"a single-plugin .conf", map[string]string{"10-bridge.conf": `{"cniVersion": "0.4.0", "name": "br", "type": "bridge"}` + "\n"}},
		{"a single-plugin .json", map[string]string{"10-bridge.json": `{"cniVersion": "1.0.0", "name": "br", "type": "ptp"}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, tc.files)
			before := n.snapshot(t)
			if _, err := Install(n.options()); err != nil {
				t.Fatalf("Install: %v", err)
			}
			if _, types := n.runtimeView(t); types[len(types)-1] != PluginType {
				t.Fatalf("after Install the runtime's plugins are %v, want antrea last", types)
			}
			res, err := Uninstall(n.options())
			if err != nil {
				t.Fatalf("Uninstall: %v", err)
			}
			if !res.ConfigChanged || !res.BinaryChanged {
				t.Errorf("Uninstall result = %+v, want config changed and binary removed", res)
			}
			if after := n.snapshot(t); !equalMaps(before, after) {
				t.Errorf("files after install and uninstall:\n%v\nwant\n%v", after, before)
			}
		})
	}
}

func TestInstallConvertsASinglePluginConf(t *testing.T) {
	conf := `{"cniVersion": "0.3.1", "name": "br", "type": "bridge", "bridge": "cni0"}`
	n := newNode(t, map[string]string{"10-bridge.conf": conf, "99-last.conflist": twoPluginList})
	res, err := Install(n.options())
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	if res.ConvertedFrom != filepath.Join(n.confDir, "10-bridge.conf") || res.ConfigFile != filepath.Join(n.confDir, "10-bridge.conflist") {
		t.Errorf("Install result = %+v, want 10-bridge.conf converted into 10-bridge.conflist", res)
	}
	file, types := n.runtimeView(t)
	if file != "10-bridge.conflist" || !slices.Equal(types, []string{"bridge", "antrea"}) {
		t.Errorf("the runtime uses %s with plugins %v, want 10-bridge.conflist with [bridge antrea]", file, types)
	}
	backup, err := os.ReadFile(filepath.Join(n.confDir, "10-bridge.conf.antrea-backup"))
	if err != nil || string(backup) != conf {
		t.Errorf("the original is not kept as 10-bridge.conf.antrea-backup: %q %v", backup, err)
	}
	if res, err := Install(n.options()); err != nil || res.ConfigChanged {
		t.Errorf("a second Install after the conversion = %+v, %v; want nothing changed", res, err)
	}
}

func TestUninstallKeepsAConvertedListThatChangedSince(t *testing.T) {
	n := newNode(t, map[string]string{"10-bridge.conf": `{"cniVersion": "0.3.1", "name": "br", "type": "bridge"}`})
	if _, err := Install(n.options()); err != nil {
		t.Fatal(err)
	}
	// Someone (the primary network's installer) adds portmap to the converted list.
	path := filepath.Join(n.confDir, "10-bridge.conflist")
	data, _ := os.ReadFile(path)
	edited := strings.Replace(string(data), string(Entry("")), `{"type":"portmap"},`+string(Entry("")), 1)
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Uninstall(n.options())
	if err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	if res.ConvertedFrom != "" {
		t.Errorf("Uninstall restored %s although the list changed since", res.ConvertedFrom)
	}
	file, types := n.runtimeView(t)
	if file != "10-bridge.conflist" || !slices.Equal(types, []string{"bridge", "portmap"}) {
		t.Errorf("the runtime uses %s with plugins %v, want 10-bridge.conflist with [bridge portmap]", file, types)
	}
	if _, err := os.Stat(filepath.Join(n.confDir, "10-bridge.conf.antrea-backup")); !os.IsNotExist(err) {
		t.Errorf("the stale backup is still there: %v", err)
	}
}

func TestInstallRefusesAndChangesNothing(t *testing.T) {
	cases := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{"an unparsable primary list", map[string]string{"10-x.conflist": `{"name": "x", "plugins": [{"type": "bridge"}`, "20-y.conflist": twoPluginList}, "refusing to change"},
		{"a primary list without a name", map[string]string{"10-x.conflist": `{"plugins": [{"type": "bridge"}]}`}, "no name"},
		{"a .conf holding a list", map[string]string{"10-x.conf": twoPluginList}, "missing 'type'"},
		{"a .conf whose list name is taken", map[string]string{"10-x.conf": `{"name": "a", "type": "ptp"}`, "10-x.conflist": twoPluginList}, "exists already"},
		{"a .conf whose list would not be the primary", map[string]string{"10-x.conf": `{"name": "a", "type": "ptp"}`, "10-x.conf.json": `{"name": "b", "type": "ptp"}`}, "would not be the primary"},
		{"no configuration at all", map[string]string{"README": "nothing"}, "no CNI network configuration yet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, tc.files)
			before := n.snapshot(t)
			_, err := Install(n.options())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Install error = %v, want one containing %q", err, tc.wantErr)
			}
			if after := n.snapshot(t); !equalMaps(before, after) {
				t.Errorf("Install changed files although it refused:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func TestInstallWithoutConfigurationIsRetryable(t *testing.T) {
	n := newNode(t, nil)
	if _, err := Install(n.options()); !errors.Is(err, ErrNoConfig) {
		t.Errorf("Install error = %v, want ErrNoConfig", err)
	}
}

func TestInstallWritesANonDefaultSocket(t *testing.T) {
	n := newNode(t, map[string]string{"10-podvlan.conflist": primaryList})
	o := n.options()
	o.CNISocket = "/run/other/cni.sock"
	if _, err := Install(o); err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromFile(filepath.Join(n.confDir, "10-podvlan.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	last := list.Plugins[len(list.Plugins)-1]
	if !strings.Contains(string(last.Bytes), `"cniSocket":"/run/other/cni.sock"`) {
		t.Errorf("last plugin = %s, want the socket in it", last.Bytes)
	}
}

func TestInstallKeepsTheFileMode(t *testing.T) {
	n := newNode(t, map[string]string{"10-podvlan.conflist": primaryList})
	path := filepath.Join(n.confDir, "10-podvlan.conflist")
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(n.options()); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode after Install = %v (%v), want 0600", st.Mode().Perm(), err)
	}
}

func TestUninstall(t *testing.T) {
	cases := []struct {
		name        string
		files       map[string]string
		wantChanged bool
		wantErr     string
	}{
		{"nothing installed changes nothing", map[string]string{"10-x.conflist": primaryList}, false, ""},
		{"an empty directory is fine", nil, false, ""},
		{"an unparsable primary list is refused", map[string]string{"10-x.conflist": `{"name": "x", "plugins": [{"type": "antrea"},`}, false, "refusing to change"},
		{"an unparsable other list is skipped", map[string]string{"10-x.conflist": mustChainString(primaryList), "20-y.conflist": `{`}, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, tc.files)
			res, err := Uninstall(n.options())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Uninstall error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Uninstall: %v", err)
			}
			if res.ConfigChanged != tc.wantChanged {
				t.Errorf("Uninstall changed the configuration = %v, want %v", res.ConfigChanged, tc.wantChanged)
			}
		})
	}
}

func TestInstallLeavesNoTemporaryFiles(t *testing.T) {
	n := newNode(t, map[string]string{"10-bridge.conf": `{"name": "br", "type": "bridge"}`})
	if _, err := Install(n.options()); err != nil {
		t.Fatal(err)
	}
	if _, err := Uninstall(n.options()); err != nil {
		t.Fatal(err)
	}
	for name := range n.snapshot(t) {
		if strings.Contains(name, ".tmp-") {
			t.Errorf("temporary file %s left behind", name)
		}
	}
}

func mustChainString(in string) string {
	out, _, err := Chain([]byte(in), Entry(""))
	if err != nil {
		panic(err)
	}
	return string(out)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestInstallDoesNotChainAfterMultus(t *testing.T) {
	for name, conf := range map[string]string{
		"00-multus.conflist": `{"cniVersion": "1.0.0", "name": "multus-cni-network", "plugins": [{"type": "multus-shim", "socketDir": "/run/multus"}]}`,
		"00-multus.conf":     `{"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus", "kubeconfig": "/etc/cni/net.d/multus.d/multus.kubeconfig"}`,
	} {
		t.Run(name, func(t *testing.T) {
			n := newNode(t, map[string]string{name: conf, "10-bridge.conflist": `{"cniVersion": "1.0.0", "name": "b", "plugins": [{"type": "bridge"}]}`})
			res, err := Install(n.options())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.NotChained, "twice") || res.ConfigChanged {
				t.Errorf("result %+v, want not chained and no configuration change", res)
			}
			if got, _ := os.ReadFile(filepath.Join(n.confDir, name)); string(got) != conf {
				t.Errorf("%s changed:\n%s", name, got)
			}
			if _, err := os.Stat(filepath.Join(n.binDir, PluginType)); err != nil {
				t.Errorf("the binary was not installed (Multus still needs it for delegate calls): %v", err)
			}
		})
	}
}

func TestInstallBinaryLeavesTheConfigurationAlone(t *testing.T) {
	confDir, binDir := t.TempDir(), t.TempDir()
	conf := filepath.Join(confDir, "10-x.conflist")
	if err := os.WriteFile(conf, []byte(primaryList), 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "antrea")
	if err := os.WriteFile(src, []byte("binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := InstallBinary(Options{ConfDir: confDir, BinDir: binDir, PluginBinary: src})
	if err != nil || !res.BinaryChanged || res.ConfigChanged {
		t.Fatalf("InstallBinary = %+v, %v", res, err)
	}
	if st, err := os.Stat(filepath.Join(binDir, PluginType)); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("binary: %v %v", st, err)
	}
	if data, _ := os.ReadFile(conf); string(data) != primaryList {
		t.Errorf("the configuration changed:\n%s", data)
	}
	if res, err := InstallBinary(Options{BinDir: binDir, PluginBinary: src}); err != nil || res.BinaryChanged {
		t.Errorf("second InstallBinary = %+v, %v; want no change", res, err)
	}
}
