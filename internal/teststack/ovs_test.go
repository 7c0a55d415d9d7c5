package teststack_test

import (
	"strings"
	"testing"

	"github.com/podvlan/podvlan/internal/teststack"
)

func TestStartOVS(t *testing.T) {
	o := teststack.StartOVS(t)
	o.Vsctl(t, "add-br", "brq", "--", "set", "bridge", "brq", "datapath_type=netdev")
	if out := o.Exec(t, "ip", "link", "show", "brq"); !strings.Contains(out, "brq") {
		t.Fatal(out)
	}
	o.RestartSwitch(t)
	o.RestartDB(t)
	t.Log(o.Vsctl(t, "show"))
}
