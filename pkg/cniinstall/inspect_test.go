package cniinstall

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestInspect(t *testing.T) {
	chained := func(entries ...string) string {
		s := `{"cniVersion":"1.0.0","name":"k8s","plugins":[{"type":"calico"}`
		for _, e := range entries {
			s += "," + e
		}
		return s + "]}"
	}
	current := string(Entry(""))
	cases := []struct {
		name   string
		files  map[string]string
		socket string
		want   State
		// wantInvalid says the primary is reported as not editable.
		wantInvalid bool
	}{
		{name: "an empty directory has no primary", files: map[string]string{}, want: State{}},
		{
			name:  "an entry of an older version (without the capability) is not current",
			files: map[string]string{"10-calico.conflist": chained(`{"type":"antrea"}`)},
			want:  State{Primary: "10-calico.conflist", Entries: 1, ChainedLists: []string{"10-calico.conflist"}},
		},
		{
			name:  "a list without antrea",
			files: map[string]string{"10-calico.conflist": chained()},
			want:  State{Primary: "10-calico.conflist"},
		},
		{
			name:  "a list with the current entry once",
			files: map[string]string{"10-calico.conflist": chained(current)},
			want:  State{Primary: "10-calico.conflist", Entries: 1, Current: true, ChainedLists: []string{"10-calico.conflist"}},
		},
		{
			name:  "a list with antrea twice is not current",
			files: map[string]string{"10-calico.conflist": chained(current, current)},
			want:  State{Primary: "10-calico.conflist", Entries: 2, ChainedLists: []string{"10-calico.conflist"}},
		},
		{
			name:   "an entry for another socket is not current",
			files:  map[string]string{"10-calico.conflist": chained(current)},
			socket: "/run/x/cni.sock",
			want:   State{Primary: "10-calico.conflist", Entries: 1, ChainedLists: []string{"10-calico.conflist"}},
		},
		{
			name: "only the lexically first file is the primary; other lists holding antrea are listed",
			files: map[string]string{
				"05-cilium.conflist":           `{"cniVersion":"1.0.0","name":"cilium","plugins":[{"type":"cilium-cni"}]}`,
				"10-calico.conflist":           chained(`{"type":"antrea"}`),
				"10-calico.conf.antrea-backup": `{"type":"calico"}`,
			},
			want: State{Primary: "05-cilium.conflist", ChainedLists: []string{"10-calico.conflist"}},
		},
		{
			name:  "a single-plugin primary",
			files: map[string]string{"10-bridge.conf": `{"cniVersion":"1.0.0","name":"b","type":"bridge"}`},
			want:  State{Primary: "10-bridge.conf"},
		},
		{
			name:  "a Multus primary is named",
			files: map[string]string{"00-multus.conf": `{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus"}`},
			want:  State{Primary: "00-multus.conf", MetaPlugin: "multus"},
		},
		{
			name:        "a primary the runtime cannot load is reported, not an error",
			files:       map[string]string{"10-calico.conflist": `{"name": "x", "plugins": [`},
			want:        State{Primary: "10-calico.conflist"},
			wantInvalid: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Inspect(Options{ConfDir: dir, CNISocket: tc.socket})
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if (got.Invalid != nil) != tc.wantInvalid {
				t.Errorf("Invalid = %v, want invalid %v", got.Invalid, tc.wantInvalid)
			}
			got.Invalid = nil
			if got.Primary != tc.want.Primary || got.MetaPlugin != tc.want.MetaPlugin || got.Entries != tc.want.Entries ||
				got.Current != tc.want.Current || !slices.Equal(got.ChainedLists, tc.want.ChainedLists) {
				t.Errorf("Inspect = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestInspectOfAMissingDirectoryIsNoPrimary(t *testing.T) {
	got, err := Inspect(Options{ConfDir: filepath.Join(t.TempDir(), "absent")})
	if err != nil || got.Primary != "" {
		t.Errorf("Inspect = %+v, %v; want no primary and no error (the primary plugin has not written it yet)", got, err)
	}
}
