package e2e

import "testing"

func TestApplyLineEdits(t *testing.T) {
	const conf = "featureGates:\n  # SecondaryNetwork: false is the default\n  SecondaryNetwork: false\nsecondaryNetwork:\n  ovsBridges: []\n"
	cases := []struct {
		name    string
		edits   []lineEdit
		want    string
		wantErr bool
	}{
		{
			name:  "replaces a line keeping its indentation and the comments",
			edits: []lineEdit{{"SecondaryNetwork: false", "SecondaryNetwork: true"}},
			want:  "featureGates:\n  # SecondaryNetwork: false is the default\n  SecondaryNetwork: true\nsecondaryNetwork:\n  ovsBridges: []\n",
		},
		{
			name:  "indents every line of a multi-line replacement",
			edits: []lineEdit{{"ovsBridges: []", "ovsBridges:\n- bridgeName: br"}},
			want:  "featureGates:\n  # SecondaryNetwork: false is the default\n  SecondaryNetwork: false\nsecondaryNetwork:\n  ovsBridges:\n  - bridgeName: br\n",
		},
		{name: "a missing line is an error", edits: []lineEdit{{"AntreaIPAM: false", "AntreaIPAM: true"}}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := applyLineEdits(conf, tc.edits)
			if tc.wantErr {
				if err == nil {
					t.Errorf("applyLineEdits = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("applyLineEdits = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
