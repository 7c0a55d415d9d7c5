package ipam

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

func TestBlockBitsCutsTheSubnetIntoAtLeast64BlocksOfAtMostTheMaximum(t *testing.T) {
	for _, tc := range []struct {
		subnet  string
		maxSize int
		want    int
	}{
		{"10.0.0.0/16", 64, 26},
		{"10.0.0.0/15", 64, 26},
		{"10.0.0.0/16", 16, 28},
		{"10.0.0.0/20", 64, 26},  // 4096 addresses: 64 blocks of 64
		{"10.0.0.0/22", 64, 28},  // 1024: 64 blocks of 16
		{"10.0.0.0/24", 64, 30},  // 256: blocks of 4
		{"10.0.0.0/28", 64, 32},  // 16: single addresses
		{"10.0.0.0/16", 100, 26}, // rounded down to 64
		{"10.0.0.0/16", 0, 32},
		{"fd00::/64", 64, 122},
		{"fd00::/120", 64, 126},
		{"fd00::/126", 64, 128},
	} {
		got := blockBits(netip.MustParsePrefix(tc.subnet), tc.maxSize)
		if got != tc.want {
			t.Errorf("blockBits(%s, %d) = %d, want %d", tc.subnet, tc.maxSize, got, tc.want)
		}
	}
}

func TestBlockNameIsAValidObjectNameNamingPoolAndCIDR(t *testing.T) {
	for _, tc := range []struct{ pool, cidr, want string }{
		{"vlan100-ipv4", "10.10.1.64/26", "vlan100-ipv4.10-10-1-64-26"},
		{"v6", "fd00:10::40/122", "v6.fd00-10--40-122"},
		{"v6", "::/122", "v6.0-122"},
	} {
		if got := BlockName(tc.pool, netip.MustParsePrefix(tc.cidr)); got != tc.want {
			t.Errorf("BlockName(%s, %s) = %q, want %q", tc.pool, tc.cidr, got, tc.want)
		}
	}
	long := string(make([]byte, 0, 253))
	for len(long) < 250 {
		long += "a"
	}
	if got := BlockName(long, netip.MustParsePrefix("10.0.0.0/26")); len(got) > 253 {
		t.Errorf("BlockName of a long pool name is %d characters long", len(got))
	}
}

func TestLastOf(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.64/26": "10.0.0.127", "10.0.0.0/16": "10.0.255.255", "10.0.0.7/32": "10.0.0.7",
		"fd00::40/122": "fd00::7f", "fd00::/64": "fd00::ffff:ffff:ffff:ffff",
	} {
		if got := lastOf(netip.MustParsePrefix(in)); got != netip.MustParseAddr(want) {
			t.Errorf("lastOf(%s) = %s, want %s", in, got, want)
		}
	}
}

func space(t *testing.T, gateway string, prefix int32, ranges ...v1beta1.IPRange) *poolSpace {
	t.Helper()
	s, err := newPoolSpace(&v1beta1.IPPool{Spec: v1beta1.IPPoolSpec{IPRanges: ranges,
		SubnetInfo: v1beta1.SubnetInfo{Gateway: gateway, PrefixLength: prefix}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBlockAddrsSkipsReservedAndOutOfRangeAddresses(t *testing.T) {
	s := space(t, "10.0.0.1", 24, v1beta1.IPRange{CIDR: "10.0.0.0/25"}, v1beta1.IPRange{Start: "10.0.0.130", End: "10.0.0.131"})
	var got []string
	s.blockAddrs(netip.MustParsePrefix("10.0.0.0/30"), func(a netip.Addr) bool { got = append(got, a.String()); return true })
	if want := []string{"10.0.0.2", "10.0.0.3"}; !equal(got, want) {
		t.Errorf("block 10.0.0.0/30: %v, want %v (network and gateway reserved)", got, want)
	}
	got = nil
	s.blockAddrs(netip.MustParsePrefix("10.0.0.128/30"), func(a netip.Addr) bool { got = append(got, a.String()); return true })
	if want := []string{"10.0.0.130", "10.0.0.131"}; !equal(got, want) {
		t.Errorf("block 10.0.0.128/30: %v, want %v", got, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNextBlockVisitsEveryBlockOnceFromAnyStart(t *testing.T) {
	s := space(t, "10.0.0.1", 16, v1beta1.IPRange{CIDR: "10.0.0.0/24"}, v1beta1.IPRange{Start: "10.0.8.0", End: "10.0.8.255"})
	for _, start := range []string{"", "10.0.0.77", "10.0.8.200", "10.0.5.1", "10.0.9.0"} {
		var from netip.Addr
		if start != "" {
			from = netip.MustParseAddr(start)
		}
		seen := map[netip.Prefix]int{}
		for {
			b, ok := s.nextBlock(from, 26, func(b netip.Prefix) bool { return seen[b] > 0 })
			if !ok {
				break
			}
			seen[b]++
			if len(seen) > 8 {
				t.Fatalf("start %s: more blocks than exist: %v", start, seen)
			}
		}
		if len(seen) != 8 {
			t.Errorf("start %s: visited %d blocks, want 8: %v", start, len(seen), seen)
		}
	}
}

func TestNextBlockIsLazyOnHugeIPv6Ranges(t *testing.T) {
	s := space(t, "fd00::1", 64, v1beta1.IPRange{CIDR: "fd00::/64"})
	b, ok := s.nextBlock(s.addrAt(12345678901), 122, func(netip.Prefix) bool { return false })
	if !ok || !s.contains(b.Addr()) || b.Bits() != 122 {
		t.Fatalf("got %v %v", b, ok)
	}
}

func TestRecordStoreRoundTripsAndDropsTornWrites(t *testing.T) {
	dir := t.TempDir()
	st := &recordStore{dir: dir}
	o := v1beta1.PodOwner{Name: "p", Namespace: "ns", ContainerID: "c1", IFName: "eth1"}
	r := &blockRecord{Block: "pool.10-0-0-0-26", Pool: "pool", CIDR: "10.0.0.0/26", Node: "n1",
		Holders: holderStates(map[netip.Addr]v1beta1.PodOwner{netip.MustParseAddr("10.0.0.5"): o})}
	if err := st.save(r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".tmp-pool.10-0-0-0-26-123"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := st.load()
	if err != nil || len(got) != 1 || got[0].Holders[0].Owner.Pod.ContainerID != "c1" {
		t.Fatalf("load: %v %+v", err, got)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-pool.10-0-0-0-26-123")); !os.IsNotExist(err) {
		t.Errorf("a leftover temporary file survived load: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.load(); err == nil {
		t.Error("a record that does not parse was accepted")
	}
}

// A kill between a save's rename and its removal of the previous file leaves two files of a
// block; the newest wins. A previous version's file (<block>.json) loads and is replaced by the
// next save.
func TestRecordStoreKeepsTheNewestFileOfABlock(t *testing.T) {
	dir := t.TempDir()
	record := func(container string) []byte {
		o := v1beta1.PodOwner{Name: "p", Namespace: "ns", ContainerID: container, IFName: "eth1"}
		data, err := json.Marshal(&blockRecord{Block: "pool.10-0-0-0-26", Pool: "pool", CIDR: "10.0.0.0/26", Node: "n1",
			Holders: holderStates(map[netip.Addr]v1beta1.PodOwner{netip.MustParseAddr("10.0.0.5"): o})})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for name, container := range map[string]string{"pool.10-0-0-0-26.json": "legacy", "pool.10-0-0-0-26@7.json": "c7",
		"pool.10-0-0-0-26@12.json": "c12", "pool.10-0-0-0-26@9.json": "c9"} {
		if err := os.WriteFile(filepath.Join(dir, name), record(container), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files := func() []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	st := &recordStore{dir: dir}
	got, err := st.load()
	if err != nil || len(got) != 1 || got[0].Holders[0].Owner.Pod.ContainerID != "c12" {
		t.Fatalf("load: %v %+v, want the record of sequence 12", err, got)
	}
	if f := files(); !slices.Equal(f, []string{"pool.10-0-0-0-26@12.json"}) {
		t.Errorf("after load: %v, want only the newest file", f)
	}
	got[0].Holders = nil
	if err := st.save(got[0]); err != nil {
		t.Fatal(err)
	}
	if f := files(); !slices.Equal(f, []string{"pool.10-0-0-0-26@13.json"}) {
		t.Errorf("after a save: %v, want the next sequence only", f)
	}
	if err := st.remove("pool.10-0-0-0-26"); err != nil {
		t.Fatal(err)
	}
	if f := files(); len(f) != 0 {
		t.Errorf("after remove: %v", f)
	}

	legacy := t.TempDir()
	if err := os.WriteFile(filepath.Join(legacy, "pool.10-0-0-0-26.json"), record("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	st = &recordStore{dir: legacy}
	if got, err = st.load(); err != nil || len(got) != 1 || got[0].Holders[0].Owner.Pod.ContainerID != "old" {
		t.Fatalf("load a previous version's record: %v %+v", err, got)
	}
	if err := st.save(got[0]); err != nil {
		t.Fatal(err)
	}
	dir = legacy
	if f := files(); !slices.Equal(f, []string{"pool.10-0-0-0-26@1.json"}) {
		t.Errorf("after saving over a previous version's record: %v", f)
	}
}
