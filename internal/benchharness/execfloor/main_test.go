package main

import (
	"strings"
	"testing"
)

func TestRunPrintsPrevResultOnAddOnly(t *testing.T) {
	prev := `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/x"}]}`
	tests := []struct {
		command, stdin, want string
	}{
		{"ADD", `{"cniVersion":"1.0.0","name":"n","type":"execfloor","prevResult":` + prev + `}`, prev},
		{"ADD", `{"cniVersion":"1.0.0","name":"n","type":"execfloor"}`, `{"cniVersion":"1.0.0"}`},
		{"DEL", `{"cniVersion":"1.0.0","name":"n","type":"execfloor","prevResult":` + prev + `}`, ""},
		{"CHECK", `{}`, ""},
	}
	for _, tt := range tests {
		var out strings.Builder
		if err := run(tt.command, strings.NewReader(tt.stdin), &out); err != nil {
			t.Fatalf("%s: %v", tt.command, err)
		}
		if out.String() != tt.want {
			t.Errorf("%s printed %q, want %q", tt.command, out.String(), tt.want)
		}
	}
	var out strings.Builder
	if err := run("ADD", strings.NewReader("{"), &out); err == nil {
		t.Error("ADD of a malformed configuration succeeded")
	}
}
