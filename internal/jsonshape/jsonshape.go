// Package jsonshape compares a decoded JSON value with the Go type it is about to be decoded
// into, so that loaders can name every unknown key and every mistyped value with its full field
// path. encoding/json stops at the first problem and names neither list indexes nor map keys.
package jsonshape

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
)

// Report is what Check found.
type Report struct {
	// Unknown lists the keys that the target type has no field for, sorted within one object.
	Unknown []UnknownKey
	// Invalid lists values of the wrong JSON kind, or values the field's own decoder refused.
	Invalid field.ErrorList
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

// Decode parses one JSON value, keeping numbers exact (as json.Number) so that Check can tell
// 100 from 100.5 and from 1e30.
func Decode(data []byte) (any, error) {
	if !json.Valid(data) {
		// json.Unmarshal reports the problem as a *json.SyntaxError carrying the byte offset.
		var probe any
		if err := json.Unmarshal(data, &probe); err != nil {
			return nil, err
		}
		return nil, errors.New("invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// DuplicateKeys returns the path of every key that appears twice in one object of data, which
// must be valid JSON. encoding/json silently keeps the last one, which hides typos and
// copy-paste mistakes.
func DuplicateKeys(data []byte, root *field.Path) []*field.Path {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var dups []*field.Path
	_ = scanDuplicates(dec, root, &dups)
	return dups
}

// scanDuplicates reads one value from dec and records duplicate keys below it.
func scanDuplicates(dec *json.Decoder, path *field.Path, dups *[]*field.Path) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch delim {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := keyTok.(string)
			child := childPath(path, key)
			if seen[key] {
				*dups = append(*dups, child)
			}
			seen[key] = true
			if err := scanDuplicates(dec, child, dups); err != nil {
				return err
			}
		}
	case '[':
		for i := 0; dec.More(); i++ {
			if err := scanDuplicates(dec, indexPath(path, i), dups); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

func childPath(p *field.Path, key string) *field.Path {
	if p == nil {
		return field.NewPath(key)
	}
	return p.Child(key)
}

func indexPath(p *field.Path, i int) *field.Path {
	if p == nil {
		return field.NewPath("").Index(i)
	}
	return p.Index(i)
}

// Check walks value (as produced by Decode or by a YAML-to-JSON conversion followed by Decode)
// against type t and reports what encoding/json would drop or refuse. A JSON null is always
// accepted: it decodes to the zero value.
func Check(value any, t reflect.Type, path *field.Path) Report {
	var r Report
	r.walk(value, t, path)
	return r
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (r *Report) walk(v any, t reflect.Type, p *field.Path) {
	if v == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Interface {
		return
	}
	// A type with its own decoder decides for itself; ask it.
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		raw, err := json.Marshal(v)
		if err != nil {
			r.Invalid = append(r.Invalid, field.Invalid(p, summary(v), err.Error()))
			return
		}
		target := reflect.New(t).Interface().(json.Unmarshaler)
		if err := target.UnmarshalJSON(raw); err != nil {
			r.Invalid = append(r.Invalid, field.Invalid(p, summary(v), err.Error()))
		}
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		s, ok := v.(string)
		if !ok {
			r.Invalid = append(r.Invalid, field.TypeInvalid(p, summary(v), "must be a string"))
			return
		}
		target := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := target.UnmarshalText([]byte(s)); err != nil {
			r.Invalid = append(r.Invalid, field.Invalid(p, s, err.Error()))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			r.Invalid = append(r.Invalid, field.TypeInvalid(p, summary(v), "must be a map of keys to values"))
			return
		}
		fields := Fields(t)
		var knownNames []string
		for _, key := range sortedKeys(obj) {
			ft, known := fields[key]
			if !known {
				if knownNames == nil {
					knownNames = slices.Sorted(maps.Keys(fields))
				}
				r.Unknown = append(r.Unknown, UnknownKey{Path: childPath(p, key), Key: key, Known: knownNames})
				continue
			}
			r.walk(obj[key], ft, childPath(p, key))
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			r.Invalid = append(r.Invalid, field.TypeInvalid(p, summary(v), "must be a map of keys to values"))
			return
		}
		for _, key := range sortedKeys(obj) {
			r.walk(obj[key], t.Elem(), keyPath(p, key))
		}
	case reflect.Slice, reflect.Array:
		if _, isString := v.(string); isString && t.Elem().Kind() == reflect.Uint8 {
			return // encoding/json reads []byte from a base64 string
		}
		list, ok := v.([]any)
		if !ok {
			r.Invalid = append(r.Invalid, field.TypeInvalid(p, summary(v), "must be a list"))
			return
		}
		for i, item := range list {
			r.walk(item, t.Elem(), indexPath(p, i))
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			r.Invalid = append(r.Invalid, field.TypeInvalid(p, summary(v), "must be a string"))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			r.Invalid = append(r.Invalid, field.TypeInvalid(p, summary(v), "must be true or false"))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			r.Invalid = append(r.Invalid, field.TypeInvalid(p, summary(v), "must be an integer"))
			return
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			r.Invalid = append(r.Invalid, field.Invalid(p, n, numberProblem(err)))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			r.Invalid = append(r.Invalid, field.TypeInvalid(p, summary(v), "must be a non-negative integer"))
			return
		}
		if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err != nil {
			detail := numberProblem(err)
			if strings.HasPrefix(n.String(), "-") {
				detail = "must not be negative"
			}
			r.Invalid = append(r.Invalid, field.Invalid(p, n, detail))
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			r.Invalid = append(r.Invalid, field.TypeInvalid(p, summary(v), "must be a number"))
			return
		}
		if _, err := strconv.ParseFloat(n.String(), t.Bits()); err != nil {
			r.Invalid = append(r.Invalid, field.Invalid(p, n, "is out of range"))
		}
	default:
		r.Invalid = append(r.Invalid, field.InternalError(p, fmt.Errorf("cannot check values of Go kind %s", t.Kind())))
	}
}

func numberProblem(err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return "is out of range"
	}
	return "must be an integer"
}

func keyPath(p *field.Path, key string) *field.Path {
	if p == nil {
		return field.NewPath("").Key(key)
	}
	return p.Key(key)
}

// Fields maps the JSON names of t's fields (following encoding/json's rules for tags and
// embedded structs, but matching names exactly rather than case-insensitively) to their types.
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
		ft := f.Type
		if f.Anonymous && name == "" {
			inner := ft
			if inner.Kind() == reflect.Pointer {
				inner = inner.Elem()
			}
			if inner.Kind() == reflect.Struct {
				collectFields(inner, out)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = ft
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// summary shortens composite values so that an error message does not repeat a whole document.
func summary(v any) any {
	switch v.(type) {
	case map[string]any:
		return "{...}"
	case []any:
		return "[...]"
	default:
		return v
	}
}
