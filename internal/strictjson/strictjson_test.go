package strictjson

import (
	"encoding/json"
	"errors"
	"net"
	"reflect"
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
	NoTag   string             // no tag: the Go name, matched with its case
	Nested  map[string][]inner `json:"nested,omitempty"`
}

func decode(t *testing.T, doc string) (target, Result) {
	t.Helper()
	var out target
	r, err := Decode([]byte(doc), &out, field.NewPath("root"))
	if err != nil {
		t.Fatalf("Decode(%s) = %v", doc, err)
	}
	return out, r
}

func TestDecodeAcceptsWhatEncodingJSONDecodes(t *testing.T) {
	doc := `{"kind": "k", "flag": true, "count": -128, "ratio": 1.5, "items": [{"name": "a", "port": 65535}],
		"labels": {"a": "b"}, "ptr": null, "custom": "ok", "ip": "10.0.0.1", "any": {"x": [1]},
		"raw": [1, {"y": 2}], "bytes": "aGk=", "NoTag": "x", "nested": {"k": [{"name": "n"}]}}`
	got, r := decode(t, doc)
	if errs := r.Errors(); len(errs) > 0 {
		t.Fatalf("Decode() = %v", errs.ToAggregate())
	}
	var want target
	if err := json.Unmarshal([]byte(doc), &want); err != nil {
		t.Fatal(err)
	}
	// Unlike encoding/json, an integer in an untyped value stays an integer.
	if n := got.Any.(map[string]any)["x"].([]any)[0]; n != int64(1) {
		t.Fatalf("Any holds %T %v, want int64 1", n, n)
	}
	got.Any, want.Any = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode() = %+v, encoding/json %+v", got, want)
	}
}

func TestDecodeReportsTheValueOfTheWrongType(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{name: "string for bool", doc: `{"flag": "true"}`, want: `root.flag: Invalid value: "true": must be true or false`},
		{name: "fraction for int", doc: `{"count": 1.5}`, want: `root.count: Invalid value: 1.5: must be an integer`},
		{name: "exponent for int", doc: `{"count": 1e2}`, want: `root.count: Invalid value: 1e2: must be an integer`},
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
		{name: "number in map value", doc: `{"labels": {"a": "x", "b": 3}}`, want: `root.labels[b]: Invalid value: 3: must be a string`},
		{name: "number for text decoder", doc: `{"ip": 10}`, want: `root.ip: Invalid value: 10: must be a string`},
		{name: "deep path", doc: `{"nested": {"k": [{"name": "a"}, {"name": 1}]}}`, want: `root.nested[k][1].name: Invalid value: 1: must be a string`},
		{name: "the second element of the same shape", doc: `{"items": [{"name": "a"}, {"name": "b", "port": "80"}]}`,
			want: `root.items[1].port: Invalid value: "80": must be a non-negative integer`},
		{name: "white space does not move the value", doc: "{ \"items\" :\n [ { \"name\" : \"a\" } , { \"name\" :  7  } ] }",
			want: `root.items[1].name: Invalid value: 7: must be a string`},
		{name: "a type's own decoder is not told its path", doc: `{"custom": "no"}`, want: `root: Invalid value: "{...}": only "ok" is accepted`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := decode(t, tt.doc)
			if errs := r.Errors(); len(errs) != 1 || errs[0].Error() != tt.want {
				t.Fatalf("Decode() = %v, want %s", errs.ToAggregate(), tt.want)
			}
			if r.RootKind != "" {
				t.Fatalf("RootKind = %q for a nested value", r.RootKind)
			}
		})
	}
}

func TestDecodeReportsUnknownKeys(t *testing.T) {
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
		{name: "a field of an embedded struct is known", doc: `{"kind": "k", "knd": "x"}`, wantPaths: []string{"root.knd"}, wantSuggest: "kind"},
		{name: "below a map of lists", doc: `{"nested": {"k": [{"nam": "x"}]}}`, wantPaths: []string{"root.nested[k][0].nam"}, wantSuggest: "name"},
		{name: "keys are reported in document order", doc: `{"b1": 1, "a1": 2}`, wantPaths: []string{"root.b1", "root.a1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := decode(t, tt.doc)
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

func TestDecodeReportsDuplicateKeys(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{name: "no duplicates", doc: `{"flag": true, "ptr": {"name": "a"}}`},
		{name: "top-level duplicate", doc: `{"flag": true, "flag": false}`, want: []string{"root.flag"}},
		{name: "duplicate inside a list element", doc: `{"items": [{"name": "x"}, {"name": "y", "name": "z"}]}`, want: []string{"root.items[1].name"}},
		{name: "duplicate map key", doc: `{"labels": {"a": "1", "a": "2"}}`, want: []string{"root.labels[a]"}},
		{name: "duplicate in a value of unknown shape", doc: `{"any": {"x": 1, "x": 2}}`, want: []string{"root.any.x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := decode(t, tt.doc)
			var got []string
			for _, p := range r.Duplicates {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Duplicates = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResultErrorsOrder(t *testing.T) {
	_, r := decode(t, `{"zzz": 1, "flag": true, "flag": true, "FLAG": false}`)
	got := r.Errors().ToAggregate().Error()
	want := `[root.flag: Forbidden: key given twice, root.zzz: Forbidden: unknown field, root.FLAG: Forbidden: unknown field; did you mean "flag"?]`
	if got != want {
		t.Fatalf("Errors() = %s, want %s", got, want)
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

func TestDecodeNullLeavesTheTargetAlone(t *testing.T) {
	out := target{Flag: true}
	r, err := Decode([]byte(" null "), &out, nil)
	if err != nil || len(r.Errors()) > 0 || !out.Flag {
		t.Fatalf("Decode(null) = %+v, %v; target %+v", r, err, out)
	}
}

func TestDecodeWithoutRootPath(t *testing.T) {
	var out target
	r, err := Decode([]byte(`{"zzz": 1, "labels": {"k": "v"}, "items": [{"nme": "a"}]}`), &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := r.Errors().ToAggregate().Error()
	want := `[zzz: Forbidden: unknown field, items[0].nme: Forbidden: unknown field; did you mean "name"?]`
	if got != want {
		t.Fatalf("Errors() = %s, want %s", got, want)
	}
	r, _ = Decode([]byte(`{"labels": {"k": 1}}`), &out, nil)
	if got, want := r.WrongType.Error(), `labels[k]: Invalid value: 1: must be a string`; got != want {
		t.Fatalf("WrongType = %s, want %s", got, want)
	}
}

func TestDecodeNamesTheKindOfAWrongDocument(t *testing.T) {
	for doc, want := range map[string]string{`[1]`: "array", `"x"`: "string", `5`: "number", `true`: "bool"} {
		var out target
		r, err := Decode([]byte(doc), &out, nil)
		if err != nil || r.RootKind != want || r.WrongType == nil {
			t.Errorf("Decode(%s) = %+v, %v; want RootKind %q", doc, r, err, want)
		}
	}
	var list []inner
	r, err := Decode([]byte(`{"name": "a"}`), &list, nil)
	if err != nil || r.RootKind != "object" {
		t.Errorf("Decode(object into list) = %+v, %v", r, err)
	}
}

func TestDecodeSyntaxErrors(t *testing.T) {
	tests := []struct {
		doc        string
		wantErr    string
		wantOffset int64
	}{
		{doc: `{"a": x}`, wantErr: "invalid character 'x' looking for beginning of value", wantOffset: 7},
		{doc: `{} {}`, wantErr: "invalid character '{' after top-level value", wantOffset: 4},
		{doc: `{"a": `, wantErr: "unexpected end of JSON input", wantOffset: 6},
	}
	for _, tt := range tests {
		var out target
		_, err := Decode([]byte(tt.doc), &out, nil)
		isSyntax, offset := SyntaxOffset(err)
		if !isSyntax || err.Error() != tt.wantErr || offset != tt.wantOffset {
			t.Errorf("Decode(%s) = %v (syntax %v at %d), want %q at %d", tt.doc, err, isSyntax, offset, tt.wantErr, tt.wantOffset)
		}
	}
	if _, err := Decode([]byte(`{}`), target{}, nil); err == nil {
		t.Errorf("Decode into a non-pointer succeeded")
	}
}
