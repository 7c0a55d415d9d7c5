package jsonshape

import (
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

type inner struct {
	Name string `json:"name"`
	Port uint16 `json:"port,omitempty"`
}

type embedded struct {
	Kind string `json:"kind,omitempty"`
}

type strictOnly struct{}

func (s *strictOnly) UnmarshalJSON(b []byte) error {
	if string(b) != `"ok"` {
		return errors.New(`only "ok" is accepted`)
	}
	return nil
}

type target struct {
	embedded
	Flag    bool               `json:"flag,omitempty"`
	Count   int8               `json:"count,omitempty"`
	Ratio   float32            `json:"ratio,omitempty"`
	Items   []inner            `json:"items,omitempty"`
	Labels  map[string]string  `json:"labels,omitempty"`
	Ptr     *inner             `json:"ptr,omitempty"`
	Custom  strictOnly         `json:"custom,omitempty"`
	IP      net.IP             `json:"ip,omitempty"`
	Any     any                `json:"any,omitempty"`
	Raw     json.RawMessage    `json:"raw,omitempty"`
	Bytes   []byte             `json:"bytes,omitempty"`
	Skipped string             `json:"-"`
	NoTag   string             // no tag: encoding/json uses the Go name
	Nested  map[string][]inner `json:"nested,omitempty"`
}

func check(t *testing.T, doc string) Report {
	t.Helper()
	v, err := Decode([]byte(doc))
	if err != nil {
		t.Fatalf("Decode(%s) = %v", doc, err)
	}
	return Check(v, reflect.TypeFor[target](), field.NewPath("root"))
}

func TestCheckAcceptsWhatDecodes(t *testing.T) {
	doc := `{"kind": "k", "flag": true, "count": -128, "ratio": 1.5, "items": [{"name": "a", "port": 65535}],
		"labels": {"a": "b"}, "ptr": null, "custom": "ok", "ip": "10.0.0.1", "any": {"x": [1]},
		"raw": [1, {"y": 2}], "bytes": "aGk=", "NoTag": "x", "nested": {"k": [{"name": "n"}]}}`
	r := check(t, doc)
	if len(r.Unknown) > 0 || len(r.Invalid) > 0 {
		t.Fatalf("Check() = unknown %v, invalid %v", r.Unknown, r.Invalid.ToAggregate())
	}
	var out target
	if err := json.Unmarshal([]byte(doc), &out); err != nil {
		t.Fatalf("encoding/json refuses what Check accepts: %v", err)
	}
}

func TestCheckReportsInvalidValues(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{name: "string for bool", doc: `{"flag": "true"}`, want: `root.flag: Invalid value: "true": must be true or false`},
		{name: "fraction for int", doc: `{"count": 1.5}`, want: `root.count: Invalid value: 1.5: must be an integer`},
		{name: "int out of range", doc: `{"count": 128}`, want: `root.count: Invalid value: 128: is out of range`},
		{name: "string for int", doc: `{"count": "1"}`, want: `root.count: Invalid value: "1": must be an integer`},
		{name: "negative for uint", doc: `{"items": [{"name": "a", "port": -1}]}`, want: `root.items[0].port: Invalid value: -1: must not be negative`},
		{name: "uint out of range", doc: `{"items": [{"name": "a", "port": 65536}]}`, want: `root.items[0].port: Invalid value: 65536: is out of range`},
		{name: "bool for uint", doc: `{"items": [{"port": true}]}`, want: `root.items[0].port: Invalid value: true: must be a non-negative integer`},
		{name: "string for float", doc: `{"ratio": "x"}`, want: `root.ratio: Invalid value: "x": must be a number`},
		{name: "float out of range", doc: `{"ratio": 1e300}`, want: `root.ratio: Invalid value: 1e300: is out of range`},
		{name: "object for list", doc: `{"items": {"name": "a"}}`, want: `root.items: Invalid value: "{...}": must be a list`},
		{name: "list for object", doc: `{"ptr": []}`, want: `root.ptr: Invalid value: "[...]": must be a map of keys to values`},
		{name: "number for map", doc: `{"labels": 3}`, want: `root.labels: Invalid value: 3: must be a map of keys to values`},
		{name: "number in map value", doc: `{"labels": {"a": 3}}`, want: `root.labels[a]: Invalid value: 3: must be a string`},
		{name: "custom decoder refuses", doc: `{"custom": "no"}`, want: `root.custom: Invalid value: "no": only "ok" is accepted`},
		{name: "text decoder refuses", doc: `{"ip": "10.0.0"}`, want: `root.ip: Invalid value: "10.0.0": invalid IP address: 10.0.0`},
		{name: "number for text decoder", doc: `{"ip": 10}`, want: `root.ip: Invalid value: 10: must be a string`},
		{name: "deep path", doc: `{"nested": {"k": [{"name": 1}]}}`, want: `root.nested[k][0].name: Invalid value: 1: must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := check(t, tt.doc)
			if len(r.Invalid) != 1 || r.Invalid[0].Error() != tt.want {
				t.Fatalf("Check().Invalid = %v, want %s", r.Invalid.ToAggregate(), tt.want)
			}
		})
	}
}

func TestCheckReportsUnknownKeys(t *testing.T) {
	tests := []struct {
		name        string
		doc         string
		wantPaths   []string
		wantSuggest string
	}{
		{name: "top-level unknown key", doc: `{"zzz": 1}`, wantPaths: []string{"root.zzz"}},
		{name: "nested unknown key in a list", doc: `{"items": [{"name": "a"}, {"nmae": "b"}]}`,
			wantPaths: []string{"root.items[1].nmae"}, wantSuggest: "name"},
		{name: "case differs", doc: `{"FLAG": true}`, wantPaths: []string{"root.FLAG"}, wantSuggest: "flag"},
		{name: "tag-less field needs its Go name exactly", doc: `{"notag": "x"}`, wantPaths: []string{"root.notag"}, wantSuggest: "NoTag"},
		{name: "skipped field is unknown", doc: `{"Skipped": "x"}`, wantPaths: []string{"root.Skipped"}},
		{name: "keys are reported sorted", doc: `{"b1": 1, "a1": 2}`, wantPaths: []string{"root.a1", "root.b1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := check(t, tt.doc)
			var paths []string
			for _, u := range r.Unknown {
				paths = append(paths, u.Path.String())
			}
			if !reflect.DeepEqual(paths, tt.wantPaths) {
				t.Fatalf("Unknown = %v, want %v", paths, tt.wantPaths)
			}
			if got := r.Unknown[0].Suggest(); got != tt.wantSuggest {
				t.Fatalf("Suggest() = %q, want %q", got, tt.wantSuggest)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"interface", "ips", "mac", "name", "namespace"}
	tests := []struct {
		key, want string
	}{
		{"Interface", "interface"},
		{"interfce", "interface"},
		{"nam", "name"},
		{"macc", "mac"},
		{"zzzzzzzz", ""},
		{"x", ""}, // one letter is too short to guess from
		{"nme", "name"},
		{"ip", "ips"},
	}
	for _, tt := range tests {
		if got := (UnknownKey{Key: tt.key, Known: known}).Suggest(); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	if got := (UnknownKey{Key: "ab", Known: []string{"ac", "ad"}}).Suggest(); got != "" {
		t.Errorf("Suggest with a tie = %q, want none", got)
	}
}

func TestCheckAcceptsNull(t *testing.T) {
	r := Check(nil, reflect.TypeFor[target](), nil)
	if len(r.Unknown) > 0 || len(r.Invalid) > 0 {
		t.Fatalf("Check(nil) = %+v", r)
	}
}

func TestCheckWithoutRootPath(t *testing.T) {
	v, _ := Decode([]byte(`{"zzz": 1, "labels": {"k": 1}, "items": [1]}`))
	r := Check(v, reflect.TypeFor[target](), nil)
	if len(r.Unknown) != 1 || r.Unknown[0].Path.String() != "zzz" {
		t.Fatalf("Unknown = %+v", r.Unknown)
	}
	got := r.Invalid.ToAggregate().Error()
	want := `[items[0]: Invalid value: 1: must be a map of keys to values, labels[k]: Invalid value: 1: must be a string]`
	if got != want {
		t.Fatalf("Invalid = %s, want %s", got, want)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr string
	}{
		{name: "object", doc: `{"a": 1}`},
		{name: "syntax error carries its offset", doc: `{"a": x}`, wantErr: "invalid character 'x' looking for beginning of value"},
		{name: "trailing data", doc: `{} {}`, wantErr: "invalid character '{' after top-level value"},
		{name: "truncated", doc: `{"a": `, wantErr: "unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.doc))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode() = %v", err)
				}
				return
			}
			var syntaxErr *json.SyntaxError
			if !errors.As(err, &syntaxErr) || err.Error() != tt.wantErr {
				t.Fatalf("Decode() = %v (%T), want SyntaxError %q", err, err, tt.wantErr)
			}
		})
	}
	v, err := Decode([]byte(`{"n": 12345678901234567890}`))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := v.(map[string]any)["n"].(json.Number); !ok || n.String() != "12345678901234567890" {
		t.Fatalf("Decode() lost the exact number: %#v", v)
	}
}

func TestDuplicateKeys(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{name: "no duplicates", doc: `{"a": 1, "b": {"a": 2}}`},
		{name: "top-level duplicate", doc: `{"a": 1, "a": 2}`, want: []string{"root.a"}},
		{name: "duplicate inside a list element", doc: `[{"x": 1}, {"y": 1, "y": 2}]`, want: []string{"root[1].y"}},
		{name: "duplicates at several depths", doc: `{"a": {"b": 1, "b": 2}, "a": 3}`, want: []string{"root.a.b", "root.a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range DuplicateKeys([]byte(tt.doc), field.NewPath("root")) {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DuplicateKeys() = %v, want %v", got, tt.want)
			}
		})
	}
	if got := DuplicateKeys([]byte(`{"a": 1, "a": 2}`), nil); len(got) != 1 || got[0].String() != "a" {
		t.Fatalf("DuplicateKeys without root = %v", got)
	}
	if got := DuplicateKeys([]byte(`[{"a": 1, "a": 2}]`), nil); len(got) != 1 || !strings.HasSuffix(got[0].String(), "[0].a") {
		t.Fatalf("DuplicateKeys without root in a list = %v", got)
	}
}
