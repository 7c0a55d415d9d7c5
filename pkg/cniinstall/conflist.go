package cniinstall

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// PluginType is the CNI type of the chained entry this package adds.
const PluginType = "antrea"

// Entry returns the chained entry for the primary list: {"type":"antrea"} declaring the runtime
// capability io.kubernetes.cri.pod-annotations (so the shim answers Pods without networks without
// the agent), plus "cniSocket" when the agent serves CNI somewhere else than where the shim looks
// by default (empty means default).
func Entry(cniSocket string) []byte {
	data, err := json.Marshal(struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
		CNISocket    string          `json:"cniSocket,omitempty"`
	}{PluginType, map[string]bool{"io.kubernetes.cri.pod-annotations": true}, cniSocket})
	if err != nil {
		panic(fmt.Sprintf("marshal chained entry: %v", err)) // two strings always marshal
	}
	return data
}

// span is where one element of the "plugins" array sits in the file's bytes.
type span struct {
	start, end int
	pluginType string
}

// list is a parsed configuration list that remembers where its plugins are, so that edits splice
// bytes in and out and leave everything else (other keys, other plugins, their layout) as it was.
type list struct {
	data []byte
	// open is the offset just after the '[' of "plugins".
	open    int
	plugins []span
}

// parseList parses a configuration list the way the container runtime does (libcni), and also
// records the position of every plugin. Anything libcni would not load is an error.
func parseList(data []byte) (*list, error) {
	if _, err := libcni.NetworkConfFromBytes(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	l := &list{data: data, open: -1}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		if key != "plugins" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("value of %q: %w", key, err)
			}
			continue
		}
		if l.open >= 0 {
			return nil, errors.New(`"plugins" appears twice`)
		}
		if err := expectDelim(dec, '['); err != nil {
			return nil, fmt.Errorf(`"plugins": %w`, err)
		}
		l.open = int(dec.InputOffset())
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, fmt.Errorf("plugins[%d]: %w", len(l.plugins), err)
			}
			var p struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(raw, &p); err != nil || p.Type == "" {
				return nil, fmt.Errorf("plugins[%d]: not a plugin configuration with a type", len(l.plugins))
			}
			end := int(dec.InputOffset())
			l.plugins = append(l.plugins, span{start: end - len(raw), end: end, pluginType: p.Type})
		}
		if err := expectDelim(dec, ']'); err != nil {
			return nil, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the configuration list")
	}
	if len(l.plugins) == 0 {
		return nil, errors.New(`no "plugins" in the configuration list`)
	}
	return l, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %v", want, tok)
	}
	return nil
}

// ours returns the indexes of the chained entries of this package's type.
func (l *list) ours() []int {
	var idx []int
	for i, p := range l.plugins {
		if p.pluginType == PluginType {
			idx = append(idx, i)
		}
	}
	return idx
}

func (l *list) element(i int) []byte { return l.data[l.plugins[i].start:l.plugins[i].end] }

// rebuild writes the list with the given plugin elements, in order. Each kept original element
// keeps the separator that preceded it; new elements (nil index) reuse the layout of the last
// separator, so an indented file stays indented the same way.
func (l *list) rebuild(elements [][]byte, separators []string) []byte {
	last := l.plugins[len(l.plugins)-1]
	var b bytes.Buffer
	b.Write(l.data[:l.open])
	for i, e := range elements {
		b.WriteString(separators[i])
		b.Write(e)
	}
	b.Write(l.data[last.end:])
	return b.Bytes()
}

// leading is the whitespace between '[' and the first plugin; sepBefore(i) is what precedes plugin
// i (i > 0): a comma and whitespace.
func (l *list) leading() string { return string(l.data[l.open:l.plugins[0].start]) }
func (l *list) sepBefore(i int) string {
	return string(l.data[l.plugins[i-1].end:l.plugins[i].start])
}

// newSeparator is the separator for an element appended after the last one.
func (l *list) newSeparator() string {
	if len(l.plugins) > 1 {
		return l.sepBefore(len(l.plugins) - 1)
	}
	return "," + l.leading()
}

// Chain returns the configuration list data with entry appended as its last plugin. When an entry
// of PluginType is already there it is not added again: it is left alone when equal to entry
// (changed is false) and replaced in place otherwise (a changed socket). Everything else stays
// byte for byte. data must be a configuration list libcni loads.
func Chain(data, entry []byte) (out []byte, changed bool, err error) {
	l, err := parseList(data)
	if err != nil {
		return nil, false, err
	}
	idx := l.ours()
	elements := make([][]byte, len(l.plugins))
	separators := make([]string, len(l.plugins))
	for i := range l.plugins {
		elements[i] = l.element(i)
		if i == 0 {
			separators[i] = l.leading()
		} else {
			separators[i] = l.sepBefore(i)
		}
	}
	if len(idx) > 0 {
		if sameJSON(l.element(idx[0]), entry) {
			return data, false, nil
		}
		elements[idx[0]] = entry
		return l.rebuild(elements, separators), true, nil
	}
	elements = append(elements, entry)
	separators = append(separators, l.newSeparator())
	return l.rebuild(elements, separators), true, nil
}

// Unchain returns the configuration list data without any plugin of PluginType; changed is false
// when there was none. A list made of nothing but such entries is not one this package chained
// into, and is left alone. Everything else stays byte for byte, so Unchain(Chain(x)) is x.
func Unchain(data []byte) (out []byte, changed bool, err error) {
	l, err := parseList(data)
	if err != nil {
		return nil, false, err
	}
	idx := l.ours()
	if len(idx) == 0 || len(idx) == len(l.plugins) {
		return data, false, nil
	}
	drop := map[int]bool{}
	for _, i := range idx {
		drop[i] = true
	}
	var elements [][]byte
	var separators []string
	for i := range l.plugins {
		if drop[i] {
			continue
		}
		sep := l.leading()
		if len(elements) > 0 {
			sep = l.sepBefore(i)
		}
		elements = append(elements, l.element(i))
		separators = append(separators, sep)
	}
	return l.rebuild(elements, separators), true, nil
}

// HasEntry reports whether the configuration list has an entry of PluginType.
func HasEntry(data []byte) (bool, error) {
	l, err := parseList(data)
	if err != nil {
		return false, err
	}
	return len(l.ours()) > 0, nil
}

// ConfToList turns a single-plugin configuration (a .conf file) into a configuration list with that
// plugin as its only element, carrying the plugin's cniVersion and name to the list, as libcni's
// ConfListFromConf does. The plugin itself is kept whole (re-indented only).
func ConfToList(conf []byte) ([]byte, error) {
	if _, err := libcni.NetworkPluginConfFromBytes(conf); err != nil {
		return nil, err
	}
	var head struct {
		CNIVersion json.RawMessage `json:"cniVersion"`
		Name       json.RawMessage `json:"name"`
	}
	if err := json.Unmarshal(conf, &head); err != nil {
		return nil, err
	}
	var name string
	if err := json.Unmarshal(head.Name, &name); err != nil || name == "" {
		return nil, errors.New(`the configuration has no "name", which a configuration list needs`)
	}
	var plugin bytes.Buffer
	if err := json.Indent(&plugin, bytes.TrimSpace(conf), "    ", "  "); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("{\n")
	if len(head.CNIVersion) > 0 {
		fmt.Fprintf(&b, "  \"cniVersion\": %s,\n", head.CNIVersion)
	}
	fmt.Fprintf(&b, "  \"name\": %s,\n", head.Name)
	fmt.Fprintf(&b, "  \"plugins\": [\n    %s\n  ]\n}\n", plugin.String())
	out := []byte(b.String())
	if _, err := parseList(out); err != nil {
		return nil, fmt.Errorf("converted list does not load: %w", err)
	}
	return out, nil
}

// sameJSON reports whether a and b are the same JSON value, whatever their layout.
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
