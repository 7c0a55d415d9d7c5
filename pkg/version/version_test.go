package version

import (
	"testing"
)

func TestRevision(t *testing.T) {
	cases := []struct {
		name     string
		stamped  string
		settings map[string]string
		want     string
	}{
		{"a stamped revision wins over the toolchain's", "abc123", map[string]string{"vcs.revision": "def"}, "abc123"},
		{"the toolchain's revision is shortened to 12 characters", "", map[string]string{"vcs.revision": "0123456789abcdef0123"}, "0123456789ab"},
		{"a modified tree is marked dirty", "", map[string]string{"vcs.revision": "0123abc", "vcs.modified": "true"}, "0123abc-dirty"},
		{"a clean tree is not", "", map[string]string{"vcs.revision": "0123abc", "vcs.modified": "false"}, "0123abc"},
		{"no revision at all is unknown", "", nil, "unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := revision(tc.stamped, tc.settings); got != tc.want {
				t.Errorf("revision = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStringNamesComponentVersionAndRevision(t *testing.T) {
	got := Info{Version: "1.2.0", Revision: "0123abc", GoVersion: "go1.26.8"}.String("antrea-agent")
	if want := "antrea-agent version 1.2.0 (revision 0123abc, go1.26.8)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
