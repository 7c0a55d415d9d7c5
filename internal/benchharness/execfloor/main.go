// Command execfloor is the exec floor of the benchmarks: the least a chained CNI plugin can cost.
// It reads the network configuration from stdin and, on ADD, prints the previous plugin's result
// unchanged; every other command succeeds with no output (VERSION prints the versions it
// accepts). It links nothing but encoding/json and os, and is built static, so that its time is
// the exec of a Go binary and nothing else.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Getenv("CNI_COMMAND"), os.Stdin, os.Stdout); err != nil {
		// The CNI error format, so that libcni reports it as a plugin error.
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"cniVersion": "1.0.0", "code": 999, "msg": err.Error()})
		os.Exit(1)
	}
}

func run(command string, in io.Reader, out io.Writer) error {
	switch command {
	case "VERSION":
		_, err := io.WriteString(out, `{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}`)
		return err
	case "ADD":
	default:
		return nil
	}
	var conf struct {
		CNIVersion string          `json:"cniVersion"`
		PrevResult json.RawMessage `json:"prevResult"`
	}
	if err := json.NewDecoder(in).Decode(&conf); err != nil {
		return fmt.Errorf("decode the network configuration: %w", err)
	}
	if len(conf.PrevResult) == 0 {
		_, err := fmt.Fprintf(out, `{"cniVersion":%q}`, conf.CNIVersion)
		return err
	}
	_, err := out.Write(conf.PrevResult)
	return err
}
