// Command clusterenv writes the local cluster's env file: hack/local-cluster.sh pipes the KEY=value
// lines it knows into it, and it writes them only when they parse as the contract the tests read
// (teststack.Env), so that the file is written and read by the same code.
//
//	... | go run ./hack/clusterenv -o _output/local-cluster/env
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/podvlan/podvlan/internal/teststack"
)

func main() {
	out := flag.String("o", "", "the env file to write")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: clusterenv -o FILE < KEY=value lines")
		os.Exit(2)
	}
	env, err := teststack.ParseEnv(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "clusterenv: the local cluster's env does not match teststack.Env: %v\n", err)
		os.Exit(1)
	}
	if err := env.Write(*out); err != nil {
		fmt.Fprintf(os.Stderr, "clusterenv: %v\n", err)
		os.Exit(1)
	}
}
