package cniinstall

import (
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// primaryList is laid out the way hack/cluster/cni-primary.conflist and most installers write it.
const primaryList = `{
  "cniVersion": "1.0.0",
  "name": "podvlan",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]]}
    }
  ]
}
`

const twoPluginList = `{"name":"k8s","cniVersion":"0.4.0","disableCheck":true,"plugins":[{"type":"ptp"},{"type":"portmap","capabilities":{"portMappings":true}}]}`

func TestEntry(t *testing.T) {
	cases := []struct {
		name   string
		socket string
		want   string
	}{
		{"default socket writes only the type", "", `{"type":"antrea","capabilities":{"io.kubernetes.cri.pod-annotations":true}}`},
		{"other socket is written", "/run/x/cni.sock", `{"type":"antrea","capabilities":{"io.kubernetes.cri.pod-annotations":true},"cniSocket":"/run/x/cni.sock"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(Entry(tc.socket)); got != tc.want {
				t.Errorf("Entry(%q) = %s, want %s", tc.socket, got, tc.want)
			}
		})
	}
}

func TestChain(t *testing.T) {
	entry := Entry("")
	cases := []struct {
		name        string
		in          string
		entry       []byte
		want        string
		wantChanged bool
	}{
		{
			name:  "appends the entry after the only plugin keeping the indentation",
			in:    primaryList,
			entry: entry,
			want: `{
  "cniVersion": "1.0.0",
  "name": "podvlan",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]]}
    },
    {"type":"antrea","capabilities":{"io.kubernetes.cri.pod-annotations":true}}
  ]
}
`,
			wantChanged: true,
		},
		{
			name:        "appends after the last of several plugins and keeps other keys",
			in:          twoPluginList,
			entry:       entry,
			want:        `{"name":"k8s","cniVersion":"0.4.0","disableCheck":true,"plugins":[{"type":"ptp"},{"type":"portmap","capabilities":{"portMappings":true}},{"type":"antrea","capabilities":{"io.kubernetes.cri.pod-annotations":true}}]}`,
			wantChanged: true,
		},
		{
			name:  "an equal entry is not added twice",
			in:    `{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"ptp"}, {"type": "antrea", "capabilities": {"io.kubernetes.cri.pod-annotations": true}}]}`,
			entry: entry,
			want:  `{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"ptp"}, {"type": "antrea", "capabilities": {"io.kubernetes.cri.pod-annotations": true}}]}`,
		},
		{
			name:        "an entry with another socket is replaced where it is",
			in:          `{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"ptp"},{"type":"antrea","cniSocket":"/old"},{"type":"portmap"}]}`,
			entry:       Entry("/new"),
			want:        `{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"ptp"},{"type":"antrea","capabilities":{"io.kubernetes.cri.pod-annotations":true},"cniSocket":"/new"},{"type":"portmap"}]}`,
			wantChanged: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, changed, err := Chain([]byte(tc.in), tc.entry)
			if err != nil {
				t.Fatalf("Chain: %v", err)
			}
			if string(out) != tc.want || changed != tc.wantChanged {
				t.Errorf("Chain = (changed %v)\n%s\nwant (changed %v)\n%s", changed, out, tc.wantChanged, tc.want)
			}
			list, err := libcni.ConfListFromBytes(out)
			if err != nil {
				t.Fatalf("the result does not load: %v", err)
			}
			if n := countType(list, PluginType); n != 1 {
				t.Errorf("the result has %d antrea entries, want 1", n)
			}
		})
	}
}

func TestChainRefusesWhatTheRuntimeCannotLoad(t *testing.T) {
	cases := []struct {
		name string
		in   string
	}{
		{"not JSON", `{"name": "x", "plugins": [`},
		{"unquoted value", `{"name": podvlan, "plugins": [{"type": "bridge"}]}`},
		{"no name", `{"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}`},
		{"no plugins", `{"cniVersion": "1.0.0", "name": "x"}`},
		{"empty plugins", `{"cniVersion": "1.0.0", "name": "x", "plugins": []}`},
		{"a plugin without a type", `{"cniVersion": "1.0.0", "name": "x", "plugins": [{"bridge": "cni0"}]}`},
		{"plugins twice", `{"name": "x", "plugins": [{"type": "a"}], "plugins": [{"type": "b"}]}`},
		{"trailing data", `{"name": "x", "plugins": [{"type": "a"}]} {}`},
		{"an array", `[{"type": "bridge"}]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if out, _, err := Chain([]byte(tc.in), Entry("")); err == nil {
				t.Errorf("Chain accepted it and returned\n%s", out)
			}
		})
	}
}

func TestUnchain(t *testing.T) {
	cases := []struct {
		name        string
		in          string
		want        string
		wantChanged bool
	}{
		{
			name:        "removes the last entry and restores the original bytes",
			in:          mustChain(t, primaryList),
			want:        primaryList,
			wantChanged: true,
		},
		{
			name:        "removes an entry in the middle keeping the neighbours' layout",
			in:          `{"name":"n","plugins":[{"type":"ptp"}, {"type":"antrea"}, {"type":"portmap"}]}`,
			want:        `{"name":"n","plugins":[{"type":"ptp"}, {"type":"portmap"}]}`,
			wantChanged: true,
		},
		{
			name:        "removes a first entry",
			in:          `{"name":"n","plugins":[ {"type":"antrea"}, {"type":"ptp"}]}`,
			want:        `{"name":"n","plugins":[ {"type":"ptp"}]}`,
			wantChanged: true,
		},
		{
			name:        "removes every entry of the type",
			in:          `{"name":"n","plugins":[{"type":"ptp"},{"type":"antrea"},{"type":"antrea","cniSocket":"/x"}]}`,
			want:        `{"name":"n","plugins":[{"type":"ptp"}]}`,
			wantChanged: true,
		},
		{
			name: "leaves a list without the entry unchanged",
			in:   twoPluginList,
			want: twoPluginList,
		},
		{
			name: "leaves a list of nothing but antrea alone",
			in:   `{"name":"n","plugins":[{"type":"antrea"}]}`,
			want: `{"name":"n","plugins":[{"type":"antrea"}]}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, changed, err := Unchain([]byte(tc.in))
			if err != nil {
				t.Fatalf("Unchain: %v", err)
			}
			if string(out) != tc.want || changed != tc.wantChanged {
				t.Errorf("Unchain = (changed %v)\n%s\nwant (changed %v)\n%s", changed, out, tc.wantChanged, tc.want)
			}
		})
	}
}

func TestUnchainRefusesWhatTheRuntimeCannotLoad(t *testing.T) {
	if _, _, err := Unchain([]byte(`{"name": "x", "plugins": [{"type": "antrea"},`)); err == nil {
		t.Error("Unchain accepted a truncated list")
	}
}

func TestConfToList(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{
			name: "carries cniVersion and name to the list and keeps the plugin whole",
			in:   `{"cniVersion": "0.3.1", "name": "net", "type": "bridge", "ipam": {"type": "host-local"}}`,
			want: `{
  "cniVersion": "0.3.1",
  "name": "net",
  "plugins": [
    {
      "cniVersion": "0.3.1",
      "name": "net",
      "type": "bridge",
      "ipam": {
        "type": "host-local"
      }
    }
  ]
}
`,
		},
		{
			name: "a configuration without cniVersion gives a list without one",
			in:   `{"name": "net", "type": "ptp"}`,
			want: "{\n  \"name\": \"net\",\n  \"plugins\": [\n    {\n      \"name\": \"net\",\n      \"type\": \"ptp\"\n    }\n  ]\n}\n",
		},
		{name: "no name is refused", in: `{"cniVersion": "1.0.0", "type": "ptp"}`, wantErr: `no "name"`},
		{name: "no type is refused", in: `{"cniVersion": "1.0.0", "name": "n"}`, wantErr: "missing 'type'"},
		{name: "a list in a .conf is refused", in: `{"name": "n", "plugins": [{"type": "ptp"}]}`, wantErr: "missing 'type'"},
		{name: "garbage is refused", in: `{"name": "n", "type": ptp}`, wantErr: "invalid character"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ConfToList([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ConfToList error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ConfToList: %v", err)
			}
			if string(out) != tc.want {
				t.Errorf("ConfToList =\n%s\nwant\n%s", out, tc.want)
			}
		})
	}
}

func TestPrimaryConfig(t *testing.T) {
	cases := []struct {
		name   string
		names  []string
		want   string
		wantOK bool
	}{
		{"the lexically first configuration file", []string{"20-b.conflist", "10-a.conflist"}, "10-a.conflist", true},
		{"a .conf before a .conflist of the same stem", []string{"10-a.conflist", "10-a.conf"}, "10-a.conf", true},
		{".json counts as the runtime reads it", []string{"99-x.conflist", "05-y.json"}, "05-y.json", true},
		{"other files are ignored", []string{"00-readme.txt", ".10-a.conflist.tmp-1", "10-a.conf.antrea-backup", "50-z.conflist"}, "50-z.conflist", true},
		{"no configuration", []string{"README"}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := PrimaryConfig(tc.names)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("PrimaryConfig(%v) = %q, %v; want %q, %v", tc.names, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func mustChain(t *testing.T, in string) string {
	t.Helper()
	out, _, err := Chain([]byte(in), Entry(""))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func countType(list *libcni.NetworkConfigList, typ string) int {
	n := 0
	for _, p := range list.Plugins {
		if p.Network.Type == typ {
			n++
		}
	}
	return n
}
