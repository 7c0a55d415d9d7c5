package benchharness

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadBreakdownsTakesTheSlowestNetworkOfEachADD(t *testing.T) {
	log := `I1127 02:44:44.805757    2309 server.go:184] "CNI command received" command="ADD" pod="ns/p-003" network="bench-primary" containerID="c1" interface="eth0"
I1127 02:44:44.840229    2309 engine.go:206] "Attached network" pod="ns/p-003" container="c1" network="ns/a" interface="eth1" port="pvlf0e24561f5f2" vlan=100 ips=["10.0.0.2/24"] took="12.5ms" allocate="8ms" veth="2ms" configure="1ms" ovs="4ms"
I1127 02:44:44.850229    2309 engine.go:206] "Attached network" pod="ns/p-003" container="c1" network="ns/b" interface="eth2" port="pvl000000000000" vlan=101 ips=["10.0.1.2/24"] took="20ms" allocate="9ms" veth="3ms" configure="900µs" ovs="10ms"
I1127 02:44:44.872123    2309 server.go:237] "CNI command succeeded" command="ADD" pod="ns/p-003" network="bench-primary" containerID="c1" interface="eth0" duration="66.372386ms"
I1127 02:44:45.000000    2309 server.go:237] "CNI command succeeded" command="DEL" pod="ns/p-003" network="bench-primary" containerID="c1" interface="eth0" duration="5ms"
`
	path := filepath.Join(t.TempDir(), "agent.log")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBreakdowns(path)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := got["c1"]
	if !ok || len(got) != 1 {
		t.Fatalf("ReadBreakdowns() = %+v, want one entry for c1", got)
	}
	// The ADD arrived at .805757 and its last network was attached at .850229.
	if d := b.Attached.Sub(b.Received); d != 44472*time.Microsecond {
		t.Errorf("attached %v after it was received, want 44.472ms", d)
	}
	want := Breakdown{Server: 66372386 * time.Nanosecond, Engine: 20 * time.Millisecond, Allocate: 9 * time.Millisecond,
		Veth: 3 * time.Millisecond, Configure: 900 * time.Microsecond, OVS: 10 * time.Millisecond}
	b.Received, b.Attached = time.Time{}, time.Time{}
	if b != want {
		t.Errorf("breakdown = %+v, want %+v", b, want)
	}
}
