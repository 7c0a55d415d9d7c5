// Package strictjson decodes JSON in one strict pass of sigs.k8s.io/json (keys matched with
// their case; unknown and duplicate keys reported) and turns what that library reports into our
// field errors: full paths with list indexes and map keys, the value of the wrong type with what
// it must be, and for an unknown key the accepted key it was most likely meant to be, taken from
// the json tags of the target struct.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
)

// Result is what Decode found in a document that is valid JSON.
type Result struct {
	// Duplicates are the keys given twice in one object, in document order.
	Duplicates []*field.Path
	// Unknown are the keys the target has no field for, in document order.
	Unknown []UnknownKey
	// WrongType is the first value of the wrong JSON kind, nil when there is none; the target is
	// then only partly decoded. sigs.k8s.io/json reports unknown and duplicate keys only when
	// every value decoded, so Duplicates and Unknown are empty when WrongType is set.
	WrongType *field.Error
	// RootKind is set when the document itself is of the wrong kind (an array where an object
	// is wanted): its JSON kind, "array", "string", "number", "bool" or "object".
	RootKind string
}

// Errors returns every problem as field errors: duplicates, unknown keys (with a hint when one
// is close), then the value of the wrong type.
func (r Result) Errors() field.ErrorList {
	var errs field.ErrorList
	for _, p := range r.Duplicates {
		errs = append(errs, field.Forbidden(p, "key given twice"))
	}
	for _, u := range r.Unknown {
		errs = append(errs, field.Forbidden(u.Path, u.Detail()))
	}
	if r.WrongType != nil {
		errs = append(errs, r.WrongType)
	}
	return errs
}

// UnknownKey is one key that the target type has no field for.
type UnknownKey struct {
	// Path is the full path of the key.
	Path *field.Path
	// Key is the key as written.
	Key string
	// Known lists the keys the enclosing object accepts, sorted, for "did you mean" hints.
	Known []string
}

// Detail is "unknown field", with the key most likely meant when one is close.
func (u UnknownKey) Detail() string {
	if s := u.Suggest(); s != "" {
		return fmt.Sprintf("unknown field; did you mean %q?", s)
	}
	return "unknown field"
}

// Suggest returns the accepted key the unknown one was most likely meant to be: one that differs
// only in letter case, or else the single closest one within two edits; "" when none is close.
func (u UnknownKey) Suggest() string {
	for _, k := range u.Known {
		if strings.EqualFold(k, u.Key) {
			return k
		}
	}
	best, bestDistance, ties := "", 3, 0
	for _, k := range u.Known {
		d := editDistance(strings.ToLower(u.Key), strings.ToLower(k))
		switch {
		case d < bestDistance:
			best, bestDistance, ties = k, d, 0
		case d == bestDistance:
			ties++
		}
	}
	if ties > 0 || len(u.Key) <= bestDistance {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Decode reads data into v (a non-nil pointer) with sigs.k8s.io/json's UnmarshalStrict and
// reports what it found with paths below root (nil for none). A JSON null leaves v untouched.
// The error is a syntax error (see SyntaxOffset) or a misuse; shape problems are in the Result.
// Only when a value has the wrong type is data read again, to name that value and its path.
func Decode(data []byte, v any, root *field.Path) (Result, error) {
	top := cursor{path: root, t: reflect.TypeOf(v)}
	strictErrs, err := sigsjson.UnmarshalStrict(data, v)
	if err != nil {
		if isSyntax, _ := SyntaxOffset(err); isSyntax {
			return Result{}, err
		}
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			var invalid *json.InvalidUnmarshalError
			if errors.As(err, &invalid) {
				return Result{}, err
			}
			// A type's own decoder refused its value; encoding/json does not say where.
			return Result{WrongType: field.Invalid(top.at(), "{...}", err.Error())}, nil
		}
		return wrongType(data, typeErr, top), nil
	}
	var r Result
	for _, strictErr := range strictErrs {
		var fieldErr sigsjson.FieldError
		if !errors.As(strictErr, &fieldErr) {
			return Result{}, fmt.Errorf("unexpected strict decoding error: %w", strictErr)
		}
		key, owner, name := top.follow(fieldErr.FieldPath())
		if strings.HasPrefix(strictErr.Error(), "duplicate field") {
			r.Duplicates = append(r.Duplicates, key.at())
			continue
		}
		u := UnknownKey{Path: key.at(), Key: name}
		if t := deref(owner.t); t != nil && t.Kind() == reflect.Struct {
			u.Known = slices.Sorted(maps.Keys(Fields(t)))
		}
		r.Unknown = append(r.Unknown, u)
	}
	return r, nil
}

// SyntaxOffset reports whether err is a JSON syntax error, and the byte offset it names.
func SyntaxOffset(err error) (bool, int64) {
	return sigsjson.SyntaxErrorOffset(err)
}

// wrongType finds the value encoding/json refused (by the offset it names: the error's own field
// path leaves out list indexes and map keys) and says what it must be.
func wrongType(data []byte, typeErr *json.UnmarshalTypeError, top cursor) Result {
	c, value, found := locate(data, typeErr.Offset, top)
	if !found {
		c, value = top, typeErr.Value
	}
	detail := mustBe(typeErr.Type)
	t := deref(typeErr.Type)
	if number, ok := strings.CutPrefix(typeErr.Value, "number "); ok {
		value = json.Number(number)
		detail = numberProblem(number, t)
	}
	r := Result{WrongType: field.Invalid(c.at(), summary(value), detail)}
	if found && c.path == top.path {
		r.RootKind = jsonKind(value)
	}
	return r
}

// numberProblem says why a number does not fit Go type t.
func numberProblem(number string, t reflect.Type) string {
	fraction := strings.ContainsAny(number, ".eE")
	switch k := t.Kind(); {
	case k >= reflect.Uint && k <= reflect.Uintptr && strings.HasPrefix(number, "-"):
		return "must not be negative"
	case k >= reflect.Int && k <= reflect.Uintptr && fraction:
		return "must be an integer"
	case k >= reflect.Int && k <= reflect.Float64:
		return "is out of range"
	default:
		return mustBe(t)
	}
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// mustBe says which JSON kind a value of Go type t is written as.
func mustBe(t reflect.Type) string {
	t = deref(t)
	if t == nil {
		return "has the wrong type"
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "must be a string"
	}
	switch k := t.Kind(); {
	case k == reflect.String:
		return "must be a string"
	case k == reflect.Bool:
		return "must be true or false"
	case k >= reflect.Int && k <= reflect.Int64:
		return "must be an integer"
	case k >= reflect.Uint && k <= reflect.Uintptr:
		return "must be a non-negative integer"
	case k == reflect.Float32 || k == reflect.Float64:
		return "must be a number"
	case k == reflect.Slice || k == reflect.Array:
		return "must be a list"
	default:
		return "must be a map of keys to values"
	}
}

// locate reads data token by token, following top's type, to the value that ends (a scalar) or
// begins (an object or a list) at offset, where encoding/json stopped; it returns that value's
// cursor and the value (its opening delimiter for an object or a list).
func locate(data []byte, offset int64, top cursor) (cursor, any, bool) {
	type frame struct {
		c         cursor
		object    bool
		expectKey bool
		key       string
		n         int
	}
	var stack []frame
	advance := func() {
		if len(stack) > 0 {
			f := &stack[len(stack)-1]
			f.expectKey = f.object
			f.n++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return cursor{}, nil, false
		}
		if tok == json.Delim('}') || tok == json.Delim(']') {
			stack = stack[:len(stack)-1]
			advance()
			continue
		}
		c := top
		if len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.expectKey {
				f.key, _ = tok.(string)
				f.expectKey = false
				continue
			}
			if f.object {
				c = f.c.key(f.key)
			} else {
				c = f.c.index(f.n)
			}
		}
		if d, isDelim := tok.(json.Delim); isDelim { // '{' or '['
			if dec.InputOffset() == offset {
				return c, d, true
			}
			stack = append(stack, frame{c: c, object: d == '{', expectKey: d == '{'})
			continue
		}
		if dec.InputOffset() == offset {
			return c, tok, true
		}
		advance()
	}
}

// summary turns what locate returned into the value shown in a message.
func summary(v any) any {
	switch v {
	case json.Delim('{'):
		return "{...}"
	case json.Delim('['):
		return "[...]"
	}
	return v
}

func jsonKind(v any) string {
	switch v.(type) {
	case json.Delim:
		return map[any]string{json.Delim('{'): "object", json.Delim('['): "array"}[v]
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "bool"
	default:
		return ""
	}
}

// cursor is a place in a document: its path and the Go type decoded there (nil when unknown,
// below an interface or an unknown key).
type cursor struct {
	path *field.Path
	t    reflect.Type
}

// at is the cursor's path; the document itself, without a root, is "<document>".
func (c cursor) at() *field.Path {
	if c.path == nil {
		return field.NewPath("<document>")
	}
	return c.path
}

// key steps into the value of key k: a struct field, or a map entry.
func (c cursor) key(k string) cursor {
	t := deref(c.t)
	switch {
	case t != nil && t.Kind() == reflect.Map:
		if c.path == nil {
			return cursor{field.NewPath("").Key(k), t.Elem()}
		}
		return cursor{c.path.Key(k), t.Elem()}
	case t != nil && t.Kind() == reflect.Struct:
		return cursor{childPath(c.path, k), Fields(t)[k]}
	default:
		return cursor{childPath(c.path, k), nil}
	}
}

// index steps into element i of a list.
func (c cursor) index(i int) cursor {
	var elem reflect.Type
	if t := deref(c.t); t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	if c.path == nil {
		return cursor{field.NewPath("").Index(i), elem}
	}
	return cursor{c.path.Index(i), elem}
}

// follow walks a sigs.k8s.io/json field path such as "[0].portMappings[1].hostPort" and returns
// the cursor it leads to, the cursor of the object holding its last key, and that key. A map key
// that contains '.' or '[' is read as several keys; the path then only approximates.
func (c cursor) follow(s string) (at, owner cursor, key string) {
	at, owner = c, c
	for s != "" {
		switch s[0] {
		case '.':
			s = s[1:]
		case '[':
			end := strings.IndexByte(s, ']')
			if i, err := strconv.Atoi(s[1:max(end, 1)]); end > 0 && err == nil {
				owner, at, key, s = at, at.index(i), "", s[end+1:]
				continue
			}
			owner, at, key, s = at, at.key(s), s, ""
		default:
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			key = s[:end]
			owner, at, s = at, at.key(key), s[end:]
		}
	}
	return at, owner, key
}

func childPath(p *field.Path, key string) *field.Path {
	if p == nil {
		return field.NewPath(key)
	}
	return p.Child(key)
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// Fields maps the JSON names of t's fields (following encoding/json's rules for tags and
// embedded structs, matching names exactly as sigs.k8s.io/json does) to their types.
func Fields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	collectFields(t, out)
	return out
}

func collectFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if inner := deref(f.Type); f.Anonymous && name == "" && inner.Kind() == reflect.Struct {
			collectFields(inner, out)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
}
