package strictjson

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
)

// FuzzDecode checks that Decode never panics, that every value encoding/json refuses is found
// (so that its path is named rather than the document's), and that what Decode accepts without a
// remark is what encoding/json decodes.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"kind": "k", "flag": true, "count": -128, "ratio": 1.5, "items": [{"name": "a", "port": 65535}], "labels": {"a": "b"}}`,
		`{"items": [{"name": "a"}, {"name": "b", "port": "80"}]}`,
		`{"nested": {"k": [{"name": "a"}, {"name": 1}]}, "nested": {}}`,
		`{"labels": {"a": "1", "a": 2}, "FLAG": true, "zzz": [1, {"x": null}]}`,
		`[{"name": "a"}]`, `"x"`, `5e400`, `null`, `{"ip": 10, "custom": "no"}`, `{"count": 1e2, "ratio": 1e300}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out target
		r, err := Decode(data, &out, field.NewPath("root"))
		if err != nil {
			if isSyntax, _ := SyntaxOffset(err); !isSyntax {
				t.Fatalf("Decode() = %v, neither a syntax error nor a Result", err)
			}
			return
		}
		var typeErr *json.UnmarshalTypeError
		if _, err := sigsjson.UnmarshalStrict(data, &target{}); errors.As(err, &typeErr) {
			if _, _, found := locate(data, typeErr.Offset, cursor{path: field.NewPath("root"), t: reflect.TypeFor[*target]()}); !found {
				t.Fatalf("the value encoding/json refused at offset %d (%v) was not found", typeErr.Offset, typeErr)
			}
		}
		if len(r.Errors()) == 0 {
			var std target
			if err := json.Unmarshal(data, &std); err != nil {
				t.Fatalf("Decode() accepted what encoding/json refuses: %v", err)
			}
		}
	})
}
