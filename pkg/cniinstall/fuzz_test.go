package cniinstall

import (
	"bytes"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// FuzzChainUnchain: whatever configuration list Chain accepts, the result loads with libcni and
// ends with one antrea entry, chaining again changes nothing, and Unchain gives back every byte
// of a list that had no antrea entry.
func FuzzChainUnchain(f *testing.F) {
	for _, seed := range []string{primaryList, twoPluginList, `{"name":"n","plugins":[{"type":"antrea"}]}`,
		`{"name":"n","plugins":[ {"type":"a"} ,{"type":"antrea","cniSocket":"/x"}, {"type":"b"}]}`,
		`{"name":"n","plugins":[{"type":"antrea"},{"type":"a"},{"type":"antrea","cniSocket":"/x"}]}`} {
		f.Add([]byte(seed))
	}
	entry := Entry("")
	f.Fuzz(func(t *testing.T, data []byte) {
		had, err := HasEntry(data)
		out, _, err2 := Chain(data, entry)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("HasEntry error %v, Chain error %v: they parse differently", err, err2)
		}
		if err2 != nil {
			return
		}
		list, err := libcni.ConfListFromBytes(out)
		if err != nil {
			t.Fatalf("chained list does not load: %v\n%s", err, out)
		}
		if n := countType(list, PluginType); n != 1 {
			t.Fatalf("chained list has %d antrea entries, want exactly one:\n%s", n, out)
		}
		if !had && list.Plugins[len(list.Plugins)-1].Network.Type != PluginType {
			t.Fatalf("antrea is not last:\n%s", out)
		}
		again, changed, err := Chain(out, entry)
		if err != nil || changed || !bytes.Equal(again, out) {
			t.Fatalf("chaining twice changed the list (%v):\n%s\n->\n%s", err, out, again)
		}
		if had {
			return
		}
		back, changed, err := Unchain(out)
		if err != nil || !changed || !bytes.Equal(back, data) {
			t.Fatalf("Unchain(Chain(x)) != x (%v, changed %v):\n%q\n->\n%q", err, changed, data, back)
		}
	})
}
